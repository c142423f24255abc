"""``spanmeter prices``: which price applies and why, whether the overlay is still needed,
and which models went unpriced."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime, timezone
from typing import Any

import click

from ..analysis.unknown_models import override_snippet, unknown_models
from ..money import usd
from ..pricing import PriceBook
from ..pricing.explain import PriceExplanation, check_overlay, explain, parse_usage
from ..pricing.overlay import PriceOverlay
from .common import data_mode_value, format_option, open_store, parse_scope, store_option, window_options

__all__ = ["prices"]


@click.group()
def prices() -> None:
    """Explain prices: which layer (genai-prices, spanmeter's overlay, your override file)
    prices a model, check the overlay against genai-prices, list unpriced models."""


def _day(text: str | None) -> datetime:
    if text is None:
        return datetime.now(timezone.utc)
    try:
        if len(text) == 10:
            return datetime.combine(
                date.fromisoformat(text), datetime.min.time().replace(hour=12), tzinfo=timezone.utc
            )
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a date (2026-12-01) or an ISO 8601 time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _usd(nano: int | None) -> str:
    return "-" if nano is None else usd(nano)


def _document(found: PriceExplanation) -> dict[str, Any]:
    result = found.result
    entry = found.overlay_entry
    return {
        "provider": found.provider,
        "model": found.model,
        "at": found.at.isoformat(),
        "usage": asdict(found.usage),
        "layer": found.layer,
        "source_version": found.source_version,
        "matched_provider": found.matched_provider,
        "matched_model": found.matched_model,
        "effective_date": found.effective_date.isoformat() if found.effective_date else None,
        "overlay_entry": None
        if entry is None
        else {
            "source": entry.source,
            "checked": entry.checked.isoformat(),
            "effective_from": entry.effective_from.isoformat(),
            "upstream": entry.upstream,
            "note": entry.note,
        },
        "tier_start": found.tier_start,
        "rates_usd_per_mtok": {name: str(rate) for name, rate in found.rates_mtok.items()},
        "discount": found.discount,
        "status": result.status.value if result else None,
        "cost_usd": {
            "total": _usd(result.total_nano_usd if result else None),
            "input": _usd(result.input_nano_usd if result else None),
            "cache_read": _usd(result.cache_read_nano_usd if result else None),
            "cache_write": _usd(result.cache_write_nano_usd if result else None),
            "output": _usd(result.output_nano_usd if result else None),
            "reasoning": _usd(result.reasoning_nano_usd if result else None),
        },
    }


@prices.command()
@click.argument("model")
@click.option("--provider", help="gen_ai.provider.name of the span (openai, anthropic, aws.bedrock...).")
@click.option("--at", "at_text", help="When the call ended: a date or ISO 8601 time [default: now].")
@click.option(
    "--usage",
    "usage_text",
    default="in=1000000,out=1000000",
    show_default=True,
    help="Tokens: in=,cache_read=,cache_write=,out=,reasoning= (input includes cache reads and writes).",
)
@format_option("table", "json")
def show(model: str, provider: str | None, at_text: str | None, usage_text: str, fmt: str) -> None:
    """Which entry prices MODEL, from which source and tier, and what USAGE costs."""
    try:
        usage = parse_usage(usage_text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--usage") from None
    try:
        book = PriceBook.from_env(strict=True)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    found = explain(book, provider, model, _day(at_text), usage)
    document = _document(found)
    if fmt == "json":
        click.echo(json.dumps(document, indent=2))
        return
    lines = [f"{provider or '(any provider)'} / {model} at {found.at.isoformat()}"]
    if found.layer == "none":
        result = found.result
        lines.append(f"  not priced: {result.status.value if result else 'unknown_model'}")
        lines.append(
            "  add it to your override file (SPANMETER_PRICING_FILE); see `spanmeter prices unknown`"
        )
        click.echo("\n".join(lines))
        raise SystemExit(1)
    lines.append(f"  priced by:   {found.layer} {found.source_version or ''}".rstrip())
    lines.append(f"  matched:     {found.matched_provider}/{found.matched_model}")
    lines.append(f"  in force:    since {found.effective_date or '(no start date in the source)'}")
    entry = found.overlay_entry
    if entry is not None:
        lines.append(f"  overlay:     {entry.note}" if entry.note else "  overlay:")
        lines.append(f"               source {entry.source} (checked {entry.checked})")
    lines.append(
        f"  tier:        {'above ' + format(found.tier_start, ',') + ' input tokens' if found.tier_start else 'base'}"
    )
    if found.discount:
        lines.append(f"  discount:    {found.discount}")
    rates = ", ".join(f"{name.removesuffix('_mtok')} ${rate}" for name, rate in found.rates_mtok.items())
    lines.append(f"  rates/MTok:  {rates}")
    cost = document["cost_usd"]
    lines.append(
        f"  cost:        {cost['total']} USD (input {cost['input']}, cache read {cost['cache_read']},"
        f" cache write {cost['cache_write']}, output {cost['output']}, reasoning {cost['reasoning']})"
    )
    click.echo("\n".join(lines))


@prices.command()
@click.option("--at", "at_text", help="Compare as of this date [default: today].")
@click.option("--strict", is_flag=True, help="Also fail on redundant and conflicting entries.")
@format_option("table", "json")
def check(at_text: str | None, strict: bool, fmt: str) -> None:
    """Compare spanmeter's price overlay with the installed genai-prices.

    Exits 1 when an entry no longer parses or resolves (and, with --strict, when one is
    redundant or in conflict)."""
    try:
        checks = check_overlay(PriceOverlay.bundled(), _day(at_text))
    except ValueError as error:
        raise click.ClickException(f"price overlay: {error}") from None
    failing = {"broken", "redundant", "conflict"} if strict else {"broken"}
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "provider": c.entry.provider,
                        "model": c.entry.model,
                        "verdict": c.verdict,
                        "detail": c.detail,
                    }
                    for c in checks
                ],
                indent=2,
            )
        )
    else:
        for item in checks:
            click.echo(f"{item.verdict:<10} {item.entry.provider}/{item.entry.model}: {item.detail}")
        counts = {
            verdict: sum(c.verdict == verdict for c in checks)
            for verdict in ("needed", "redundant", "conflict", "broken")
        }
        click.echo(", ".join(f"{count} {verdict}" for verdict, count in counts.items()))
    if any(item.verdict in failing for item in checks):
        raise SystemExit(1)


@prices.command()
@window_options("7d")
@click.option("--environment", help="Only this environment.")
@click.option("--data-mode", default="real", show_default=True, help="real, test, demo or all.")
@store_option()
@format_option("table", "json", "yaml")
def unknown(
    window_text: str | None,
    since: str | None,
    start: str | None,
    end: str | None,
    environment: str | None,
    data_mode: str,
    db: str | None,
    fmt: str,
) -> None:
    """Models seen without a price, with attempts and tokens; ``--format yaml`` prints the
    override-file entries to fill in."""
    window, _ = parse_scope(window_text, since, start, end, (), default_since="7d")
    with open_store(db) as store:
        found = unknown_models(store, window, environment=environment, data_mode=data_mode_value(data_mode))
    if fmt == "json":
        click.echo(json.dumps([asdict(item) for item in found], indent=2))
    elif fmt == "yaml":
        click.echo(override_snippet((item.provider, item.model) for item in found), nl=False)
    elif not found:
        click.echo("every attempt in the window was priced")
    else:
        click.echo(
            f"{'provider':<16} {'model':<40} {'attempts':>9} {'input tokens':>13} {'output tokens':>13}"
        )
        for item in found:
            click.echo(
                f"{item.provider:<16} {item.model:<40} {item.attempts:>9} {item.input_tokens:>13} {item.output_tokens:>13}"
            )
        click.echo(
            "\nadd them to your override file (SPANMETER_PRICING_FILE): spanmeter prices unknown --format yaml"
        )
