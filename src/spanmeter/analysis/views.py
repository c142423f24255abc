"""Each analysis view as (parameter spec, answer, renderer): what the CLI and the API share.

:func:`answer` turns a store and a view's parsed parameters into the view's JSON-ready
document. The API route serves it (as JSON, or rendered when ``format=`` asks), and the CLI
renders the same document, whether it computed it from ``--db`` or fetched it from a
receiver with ``--url``: the two cannot answer differently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..pricing import PriceBook
from ..store import SpanStore
from .documents import dump
from .economics import render_economics, unit_economics
from .export import REQUEST_COLUMNS, encode, request_records, rollup_columns, rollup_records
from .investigate import investigate
from .investigate_render import render_investigate
from .parameters import (
    ECONOMICS,
    INVESTIGATE,
    PROMPT_VERSIONS,
    QUALITY,
    REPRICE_AUDITS,
    REPRICE_PREVIEW,
    TOP,
    WEEKLY,
    ViewArgs,
    ViewSpec,
)
from .prompt_versions import compare_prompt_versions, render_prompt_versions
from .quality import quality_report, render_quality
from .report_render import render_report
from .report_weekly import parse_week, week_alerts, weekly_report
from .reprice import audit_document, plan_repricing, render_audits, render_reprice
from .top import render_top, top_report
from .window import TimeWindow

__all__ = ["VIEWS", "View", "answer", "export_body", "export_chunks", "view_body"]

Answer = Callable[[SpanStore, ViewArgs], Any]
Render = Callable[[Any, str], str]


@dataclass(frozen=True, slots=True)
class View:
    """One view: its parameters, how the store answers it, how the answer is rendered."""

    spec: ViewSpec
    answer: Answer
    render: Render


def _window(args: ViewArgs) -> TimeWindow:
    if args.window is None:  # pragma: no cover - a windowed spec always resolves one
        raise ValueError("this view needs a window")
    return args.window


def _scope(args: ViewArgs) -> dict[str, Any]:
    return {"where": args.where, "environment": args.environment, "data_mode": args.data_mode}


def _top(store: SpanStore, args: ViewArgs) -> Any:
    values = args.values
    return top_report(store, values["by"], _window(args), limit=values["limit"], **_scope(args))


def _windowed(report: Callable[..., Any], *names: str) -> Answer:
    """The answer of a view whose report takes the store, the window, the named parameters
    as keywords and the common scope (``where``, environment, data mode)."""

    def answer(store: SpanStore, args: ViewArgs) -> Any:
        values = args.values
        return report(store, _window(args), **{name: values[name] for name in names}, **_scope(args))

    return answer


def _quality(store: SpanStore, args: ViewArgs) -> Any:
    return quality_report(store, _window(args), environment=args.environment, data_mode=args.data_mode)


def _weekly(store: SpanStore, args: ViewArgs) -> Any:
    week = args.values["week"] or parse_week(None)
    return weekly_report(
        store,
        week,
        environment=args.environment,
        data_mode=args.data_mode,
        workspace=args.values["workspace"],
        alerts=week_alerts(store, week),
    )


def _reprice_preview(store: SpanStore, args: ViewArgs) -> Any:
    """A dry run with the receiver's own price configuration (applying writes: CLI only)."""
    book = PriceBook.from_env()
    return plan_repricing(store, _window(args), book, include_reported=args.values["include_reported"]).diff


def _reprice_audits(store: SpanStore, args: ViewArgs) -> Any:
    return {"audits": [audit_document(audit) for audit in store.reprice_audits(args.values["limit"])]}


def _render_quality(report: Any, fmt: str) -> str:
    return render_quality(report, fmt)


VIEWS: Final[Mapping[str, View]] = {
    view.spec.route: view
    for view in (
        View(TOP, _top, render_top),
        View(INVESTIGATE, _windowed(investigate, "baseline", "limit"), render_investigate),
        View(
            PROMPT_VERSIONS,
            _windowed(compare_prompt_versions, "endpoint", "min_samples"),
            render_prompt_versions,
        ),
        View(ECONOMICS, _windowed(unit_economics, "limit", "max_cost_share"), render_economics),
        View(QUALITY, _quality, _render_quality),
        View(WEEKLY, _weekly, render_report),
        View(REPRICE_PREVIEW, _reprice_preview, render_reprice),
        View(REPRICE_AUDITS, _reprice_audits, render_audits),
    )
}
"""Route -> view (export streams: :func:`export_chunks`)."""


def answer(spec: ViewSpec, store: SpanStore, args: ViewArgs) -> Any:
    """The document of ``spec``'s view for ``args``."""
    return VIEWS[spec.route].answer(store, args)


def export_chunks(store: SpanStore, what: str, args: ViewArgs) -> Iterable[str]:
    """``export requests|rollups`` as encoded text chunks (streamed: nothing is held)."""
    window = _window(args)
    if what == "requests":
        records = request_records(
            store, window, where=args.where, environment=args.environment, data_mode=args.data_mode
        )
        return encode(records, REQUEST_COLUMNS, args.fmt)
    granularity = "minute" if args.values["granularity"] == "minute" else "hour"
    rows = rollup_records(store, window, granularity, environment=args.environment, data_mode=args.data_mode)
    return encode(rows, rollup_columns(granularity), args.fmt)


def view_body(store: SpanStore, route: str, args: ViewArgs) -> bytes:
    """The answer of the view at ``route`` as the API sends it: its document as JSON, or
    rendered as ``args.fmt`` asks. A module-level function of plain values, so that it also
    runs in a query process (:mod:`spanmeter.service.query_process`)."""
    view = VIEWS[route]
    document = view.answer(store, args)
    text = dump(document) if args.fmt == "json" else view.render(document, args.fmt)
    return text.encode()


def export_body(store: SpanStore, what: str, args: ViewArgs) -> bytes:
    """``export requests|rollups`` in full, for a query process (exports are bounded by their
    window; in this process the API streams :func:`export_chunks` instead)."""
    return "".join(export_chunks(store, what, args)).encode()
