"""Questions answered from the store: top-N, investigate, compare, unit economics, data
quality, re-pricing, reports and exports. Storage-agnostic: everything reads through the
:class:`~spanmeter.store.SpanStore` protocol, and each question is one function returning a
JSON-ready document that the CLI and the API render alike."""

from __future__ import annotations

from .decompose import Effects, Side, split_delta
from .economics import render_economics, unit_economics
from .export import EXPORT_FORMATS, encode, request_records, rollup_records
from .investigate import BASELINES, INVESTIGATE_DIMENSIONS, investigate, resolve_baseline
from .investigate_render import INVESTIGATE_FORMATS, render_investigate, render_triage
from .prompt_versions import compare_prompt_versions, render_prompt_versions
from .quality import quality_report, render_quality
from .report_render import render_report
from .report_weekly import parse_week, weekly_report
from .reprice import RepricePlan, apply_plan, plan_repricing, render_reprice
from .revenue import parse_revenue_csv
from .top import FORMATS, render_top, top_report
from .window import DIMENSIONS, TimeWindow, parse_duration, parse_filters, parse_instant, parse_window

__all__ = [
    "BASELINES",
    "DIMENSIONS",
    "EXPORT_FORMATS",
    "FORMATS",
    "INVESTIGATE_DIMENSIONS",
    "INVESTIGATE_FORMATS",
    "Effects",
    "RepricePlan",
    "Side",
    "TimeWindow",
    "apply_plan",
    "compare_prompt_versions",
    "encode",
    "investigate",
    "parse_duration",
    "parse_filters",
    "parse_instant",
    "parse_revenue_csv",
    "parse_week",
    "parse_window",
    "plan_repricing",
    "quality_report",
    "render_economics",
    "render_investigate",
    "render_prompt_versions",
    "render_quality",
    "render_report",
    "render_reprice",
    "render_top",
    "render_triage",
    "request_records",
    "resolve_baseline",
    "rollup_records",
    "split_delta",
    "top_report",
    "unit_economics",
    "weekly_report",
]
