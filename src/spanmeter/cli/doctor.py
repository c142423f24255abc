"""``spanmeter doctor``: the first-ingest checklist and the tracking quality score."""

from __future__ import annotations

import os

import click

from ..analysis.parameters import QUALITY, ViewArgs
from ..analysis.quality import quality_report, render_quality
from ..environment_variables import SPANMETER_PRICING_FILE
from ..pricing import PriceBook
from .common import api_get, open_store, receiver_url, source_options, spec_options

__all__ = ["doctor"]


@click.command()
@spec_options(QUALITY)
@source_options
def doctor(args: ViewArgs, db: str | None, url: str | None) -> None:
    """Check tracking before trusting cost numbers: coverage, unknown models, usage, test
    traffic, PII in ids, clock skew, rollup reconciliation; prints the quality score."""
    window = args.window
    assert window is not None  # QUALITY is windowed
    preamble: list[str] = []
    base = receiver_url(url, local=bool(db))
    if base:
        report = api_get(base, QUALITY.route, [*args.query, ("format", "json")])
    else:
        with open_store(db) as store:
            stats = store.stats()
            in_window = store.count_requests(window.start_ns, window.end_ns)
            preamble.append(
                f"store {store.location}: {stats.requests} attempts, {stats.logical_requests} logical request ids,"
                f" {stats.size_bytes / 1e6:.1f} MB; {in_window} attempts in the window"
            )
            if not in_window:
                preamble.append(
                    "  [FAIL] no spans in the window: is the OTLP exporter pointed at the receiver?"
                )
            report = quality_report(store, window, environment=args.environment, data_mode=args.data_mode)
    pricing_file = os.environ.get(SPANMETER_PRICING_FILE, "").strip()
    if pricing_file:
        problem = PriceBook.from_env().overrides_error
        preamble.append(
            f"price overrides {pricing_file}: "
            + (f"[FAIL] not used: {problem}" if problem else "[ok] loaded")
        )
    else:
        preamble.append(f"price overrides: none ({SPANMETER_PRICING_FILE} unset; list prices only)")
    fmt = args.fmt
    click.echo(render_quality(report, fmt, preamble=preamble if fmt == "table" else None), nl=False)
