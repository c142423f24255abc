"""The parameters of every analysis view, declared once per view.

A :class:`ViewSpec` lists a view's parameters (window options, ``where``, environment, data
mode, limit, format and its own). The CLI builds its options from it
(:func:`spanmeter.cli.common.spec_options`) and the JSON API its query parsing
(:mod:`spanmeter.api.views`); both hand the raw values to :meth:`ViewSpec.parse`, so a
default, a range or an error message cannot differ between ``spanmeter top --limit 0`` and
``GET /api/v1/top?limit=0``. The one deliberate difference: the API answers JSON unless
``format=`` asks otherwise, the CLI prints the view's first format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from ..dimensions import DATA_MODES, RANKABLE
from ..timeunits import NS_PER_DAY
from .economics import DEFAULT_MAX_COST_SHARE, ECONOMICS_FORMATS
from .export import EXPORT_FORMATS
from .investigate_render import INVESTIGATE_FORMATS
from .prompt_versions import COMPARE_FORMATS, MIN_SAMPLES
from .report_render import REPORT_FORMATS
from .report_weekly import parse_week
from .top import FORMATS as TOP_FORMATS
from .window import TimeWindow, parse_filters
from .window_range import resolve_window

__all__ = [
    "DATA_MODE_CHOICES",
    "ECONOMICS",
    "EXPORT",
    "EXPORT_MAX_DAYS",
    "INVESTIGATE",
    "MAX_COST_SHARE",
    "PROMPT_VERSIONS",
    "QUALITY",
    "REPRICE_AUDITS",
    "REPRICE_PREVIEW",
    "SPECS",
    "TOP",
    "TOP_LIMIT",
    "WEEKLY",
    "Param",
    "ViewArgs",
    "ViewSpec",
]

DATA_MODE_CHOICES: Final = (*DATA_MODES, "all")
"""``all`` lifts the data-mode filter."""
TOP_LIMIT: Final = 20
"""Groups ``top`` shows unless told otherwise (CLI and API alike)."""
EXPORT_MAX_DAYS: Final = 400
"""The longest window ``/api/v1/export/...`` answers: the rollups' default retention, so a
year's export (plus slack) is one call and year 1..9999 is a 400, not a worker held for
as long as the read takes."""

Raw = Mapping[str, "str | Sequence[str] | None"]
"""Parameter name -> the value as given (a sequence for a repeatable parameter, or the
values of a repeated query parameter: the last one counts for a single-valued one)."""


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: ``name`` in a query, ``--name`` (``_`` as ``-``) on the command line."""

    name: str
    help: str
    default: str | None = None
    """The value when none is given (as text, parsed like a given one)."""
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    """Set for an integer parameter (with ``maximum``, an inclusive range)."""
    maximum: int | None = None
    multiple: bool = False
    flag: bool = False
    """A switch: ``--name`` on the command line, ``name=1`` in a query."""
    integer: bool = False
    convert: Callable[[str], Any] | None = None
    """Reads a text value (raising ValueError); None: the text itself."""

    @property
    def option(self) -> str:
        """The command-line option."""
        return "--" + self.name.replace("_", "-")

    def parse(self, value: str | None) -> Any:
        """The parsed value of one given text (None: the default).

        Raises:
            ValueError: Not a valid value; the message names the parameter and the choices.
        """
        if self.flag:
            return value not in (None, "", "0", "false")
        text = self.default if value is None or value == "" else value
        if text is None:
            return None
        if self.choices and text not in self.choices:
            raise ValueError(f"{self.name}: {text!r} is not one of {', '.join(self.choices)}")
        if self.convert is not None:
            return self.convert(text)
        if not self.integer:
            return text
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"{self.name}: {text!r} is not a whole number") from None
        low = self.minimum if self.minimum is not None else -(2**63)
        high = self.maximum if self.maximum is not None else 2**63 - 1
        if not low <= number <= high:
            bounds = f"from {low}" + (f" to {high}" if self.maximum is not None else "")
            raise ValueError(f"{self.name}: {number} is out of range ({bounds})")
        return number

    def describe(self) -> str:
        """Help text with the default appended (the CLI shows it; its metavar lists the choices)."""
        parts = [self.help]
        if len(self.choices) > 8:  # fewer are the option's metavar
            parts.append(f"[{'|'.join(self.choices)}]")
        if self.default is not None and not self.flag:
            parts.append(f"[default {self.default}]")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class ViewArgs:
    """A view's parsed parameters."""

    window: TimeWindow | None
    """None for a view without a time window (the weekly report reads ``week``)."""
    where: dict[str, str]
    environment: str | None
    data_mode: str | None
    """None: every data mode (``all``)."""
    fmt: str
    values: dict[str, Any]
    """Every other parameter, parsed, by name."""
    query: list[tuple[str, str]]
    """The parameters as given (not the defaults), to forward to a running receiver: it
    resolves them exactly as they were resolved here."""


@dataclass(frozen=True, slots=True)
class ViewSpec:
    """The parameters of one view and the route that answers it."""

    name: str
    route: str
    params: tuple[Param, ...]
    formats: tuple[str, ...]
    """The first is the CLI's default; the API's is ``json`` (or the first, without json)."""
    default_since: str | None = "24h"
    """The window when none is given; None: a window must be given."""
    windowed: bool = True
    scoped: tuple[str, ...] = ("where", "environment", "data_mode")
    """Which of the scope parameters the view takes."""
    window_noun: str = "Window"
    api_max_window_days: int | None = None
    """The longest window the JSON API answers (None: any): a longer one would hold a
    worker for as long as it takes to read (the CLI, on the user's own process, is not
    bounded)."""

    @property
    def all_params(self) -> tuple[Param, ...]:
        """Window, scope, the view's own parameters and ``format``, in CLI help order."""
        window: tuple[Param, ...] = ()
        if self.windowed:
            since = self.default_since
            window = (
                Param("window", f"{self.window_noun} FROM..TO (ISO 8601 UTC or Unix seconds)."),
                Param(
                    "since",
                    "Or: the window ending now, e.g. 24h"
                    + (f" [default {since}]." if since else " (a window must be given)."),
                ),
                Param("from", "Or: window start (ISO 8601 UTC or Unix seconds)."),
                Param("to", "Window end (exclusive) [default now]."),
            )
        scope = tuple(_SCOPE[name] for name in self.scoped)
        fmt = Param("format", "Output format.", self.formats[0], self.formats)
        return (*window, *scope, *self.params, fmt)

    @property
    def api_format(self) -> str:
        """The format the API answers in unless ``format=`` says otherwise."""
        return "json" if "json" in self.formats else self.formats[0]

    def param(self, name: str) -> Param:
        """The parameter called ``name``."""
        (found,) = [p for p in self.all_params if p.name == name]
        return found

    def parse(self, raw: Raw, *, api: bool = False, window_optional: bool = False) -> ViewArgs:
        """Parse the raw values (missing ones take their defaults). ``api``: the format
        defaults to :attr:`api_format`; ``window_optional``: a view without a default window
        gets None instead of an error when none is given (the caller decides).

        Raises:
            ValueError: A value that cannot be read, or a window that is mixed, empty or
                missing where one is required.
        """
        given: dict[str, list[str]] = {}
        for param in self.all_params:
            value = raw.get(param.name)
            if value is None:
                continue
            values = [value] if isinstance(value, str) else list(value)
            values = [v for v in values if v != ""]
            if values:
                given[param.name] = values if param.multiple else values[-1:]
        parsed: dict[str, Any] = {}
        for param in self.all_params:
            texts = given.get(param.name)
            if param.multiple:
                parsed[param.name] = texts or []
            elif param.name == "format" and api and not texts:
                parsed[param.name] = self.api_format
            else:
                parsed[param.name] = param.parse(texts[0] if texts else None)
        window = None
        if self.windowed:
            texts = (parsed.pop("window"), parsed.pop("since"), parsed.pop("from"), parsed.pop("to"))
            if self.default_since is None and not (texts[0] or texts[1] or texts[2]):
                if not window_optional or texts[3]:
                    raise ValueError("give the window: window FROM..TO, since, or from (and to)")
            else:
                window = resolve_window(*texts, default_since=self.default_since or "24h")
            longest = self.api_max_window_days
            if (
                api
                and window is not None
                and longest
                and window.end_ns - window.start_ns > longest * NS_PER_DAY
            ):
                raise ValueError(
                    f"{self.name} windows are at most {longest} days on the API (the rollups' retention): "
                    "split a longer one"
                )
        where = parse_filters(parsed.pop("where", []))
        data_mode = parsed.pop("data_mode", None)
        query = [(name, text) for name, texts in given.items() for text in texts]
        return ViewArgs(
            window=window,
            where=where,
            environment=parsed.pop("environment", None),
            data_mode=None if data_mode in (None, "all") else data_mode,
            fmt=parsed.pop("format"),
            values=parsed,
            query=[(name, text) for name, text in query if name != "format"],
        )


_SCOPE: Final = {
    "where": Param("where", "Filter dim=value (repeatable; each dimension once).", multiple=True),
    "environment": Param("environment", "Only this environment."),
    "data_mode": Param("data_mode", "Data mode to read.", "real", DATA_MODE_CHOICES),
}


def _limit(default: int, maximum: int, help: str) -> Param:
    return Param("limit", help, str(default), minimum=1, maximum=maximum, integer=True)


TOP: Final = ViewSpec(
    "top",
    "/api/v1/top",
    (
        Param("by", "Dimension to rank.", "endpoint_tag", RANKABLE),
        _limit(TOP_LIMIT, 10_000, "Groups shown."),
    ),
    TOP_FORMATS,
)
INVESTIGATE: Final = ViewSpec(
    "investigate",
    "/api/v1/investigate",
    (
        Param(
            "baseline",
            "previous (same length, just before), a shift such as 7d, or FROM..TO; a FROM..TO of another"
            " length than the window is compared per hour (the baseline scaled to the window's length).",
            "previous",
        ),
        _limit(
            10,
            1000,
            "Drivers per dimension, and as many moving against the total (the largest drops of a rise).",
        ),
    ),
    INVESTIGATE_FORMATS,
    window_noun="Spike window",
)
PROMPT_VERSIONS: Final = ViewSpec(
    "compare prompt-versions",
    "/api/v1/compare/prompt-versions",
    (
        Param("endpoint", "Only this endpoint tag."),
        Param(
            "min_samples",
            "Logical requests per version before a delta can be significant.",
            str(MIN_SAMPLES),
            minimum=2,
            integer=True,
        ),
    ),
    COMPARE_FORMATS,
    default_since="7d",
)


_SHARE: Final = re.compile(r"\s*\d{1,12}(\.\d{1,12})?(/\d{1,12})?\s*")
"""A share as people write it (``0.3``, ``3/10``): bounded, because ``Fraction("1e9999999")``
computes a ten-million-digit integer (half a minute of a worker)."""
MAX_COST_SHARE: Final = 1000
"""Cost at a thousand times revenue is already every tenant flagged; more is a typo."""


def _share(text: str) -> Fraction:
    if not _SHARE.fullmatch(text):
        raise ValueError(f"max_cost_share: {text[:40]!r} is not a number like 0.3 or 3/10")
    try:
        share = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"max_cost_share: {text!r} is not a number") from None
    if not 0 < share <= MAX_COST_SHARE:
        raise ValueError(f"max_cost_share: {text!r} must be above 0 and at most {MAX_COST_SHARE}")
    return share


ECONOMICS: Final = ViewSpec(
    "economics",
    "/api/v1/economics",
    (
        Param(
            "max_cost_share",
            "Flag tenants whose LLM cost exceeds this share of revenue.",
            str(float(DEFAULT_MAX_COST_SHARE)),
            convert=_share,
        ),
        _limit(20, 10_000, "Rows per dimension."),
    ),
    ECONOMICS_FORMATS,
    default_since="7d",
)
QUALITY: Final = ViewSpec(
    "doctor",
    "/api/v1/quality",
    (),
    ("table", "json"),
    scoped=("environment", "data_mode"),
)
WEEKLY: Final = ViewSpec(
    "report weekly",
    "/api/v1/reports/weekly",
    (
        Param(
            "week",
            "ISO week (2026-W10) or a date inside it [default: last complete week].",
            convert=parse_week,
        ),
        Param("workspace", "Name shown in the header [default: spanmeter]."),
    ),
    REPORT_FORMATS,
    windowed=False,
    scoped=("environment", "data_mode"),
)
EXPORT: Final = ViewSpec(
    "export",
    "/api/v1/export",
    (Param("granularity", "Rollups to export.", "hour", ("minute", "hour")),),
    EXPORT_FORMATS,
    api_max_window_days=EXPORT_MAX_DAYS,
)
"""``export requests|rollups`` (the route takes ``/requests`` or ``/rollups``); ``where``
applies to requests only."""
REPRICE_PREVIEW: Final = ViewSpec(
    "reprice",
    "/api/v1/reprice/preview",
    (Param("include_reported", "Also replace provider-reported costs.", flag=True),),
    ("table", "json"),
    default_since=None,
    scoped=(),
)
REPRICE_AUDITS: Final = ViewSpec(
    "reprice --history",
    "/api/v1/reprice/audits",
    (_limit(50, 10_000, "Most audits listed."),),
    ("table", "json"),
    windowed=False,
    scoped=(),
)

SPECS: Final = (TOP, INVESTIGATE, PROMPT_VERSIONS, ECONOMICS, QUALITY, WEEKLY, EXPORT, REPRICE_PREVIEW)
