"""``spanmeter doctor``: the first-ingest checklist and the tracking quality score."""

from __future__ import annotations

import os

import click

from ..analysis.quality import quality_report, render_quality
from ..analysis.window_range import resolve_window
from ..environment_variables import SPANMETER_PRICING_FILE
from ..pricing import PriceBook
from .common import api_get, data_mode_value, format_option, open_store, source_options

__all__ = ["doctor"]


@click.command()
@click.option("--window", "window_text", help="Window FROM..TO (ISO 8601 UTC or Unix seconds).")
@click.option("--since", help="Or: the window ending now, e.g. 24h [default 24h].")
@click.option("--environment", help="Only this environment.")
@click.option("--data-mode", default="all", show_default=True, help="real, test, demo or all.")
@format_option("table", "json")
@source_options
def doctor(
    window_text: str | None,
    since: str | None,
    environment: str | None,
    data_mode: str,
    fmt: str,
    db: str | None,
    url: str | None,
) -> None:
    """Check tracking before trusting cost numbers: coverage, unknown models, usage, test
    traffic, PII in ids, clock skew, rollup reconciliation; prints the quality score."""
    try:
        window = resolve_window(window_text, since)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    preamble: list[str] = []
    if url:
        params = [
            ("window", window_text),
            ("since", since),
            ("environment", environment),
            ("data_mode", data_mode),
        ]
        report = api_get(url, "/api/v1/quality", params)
    else:
        with open_store(db) as store:
            stats = store.stats()
            in_window = store.count_requests(window.start_ns, window.end_ns)
            preamble.append(
                f"store {store.path}: {stats.requests} attempts, {stats.logical_requests} logical request ids,"
                f" {stats.size_bytes / 1e6:.1f} MB; {in_window} attempts in the window"
            )
            if not in_window:
                preamble.append(
                    "  [FAIL] no spans in the window: is the OTLP exporter pointed at the receiver?"
                )
            report = quality_report(
                store, window, environment=environment, data_mode=data_mode_value(data_mode)
            )
    pricing_file = os.environ.get(SPANMETER_PRICING_FILE, "").strip()
    if pricing_file:
        problem = PriceBook.from_env().overrides_error
        preamble.append(
            f"price overrides {pricing_file}: "
            + (f"[FAIL] not used: {problem}" if problem else "[ok] loaded")
        )
    else:
        preamble.append(f"price overrides: none ({SPANMETER_PRICING_FILE} unset; list prices only)")
    click.echo(render_quality(report, fmt, preamble=preamble if fmt == "table" else None), nl=False)
