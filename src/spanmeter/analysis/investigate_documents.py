"""The shape of an ``investigate`` report (:func:`spanmeter.analysis.investigate.investigate`)
and of its classification (:mod:`.classify`, :mod:`.spike_figures`), as JSON documents.

Declared once here, so the builders, the classification rules and the renderers (table,
CSV, triage note) read the same keys; see :mod:`.documents` for why these are
:class:`~typing.TypedDict` documents and not classes.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from .documents import Link, Span, Summary

__all__ = [
    "BaselineSpan",
    "Classification",
    "ClassifiedDriver",
    "Comparison",
    "DeployFacts",
    "DimensionEntry",
    "DriverDocument",
    "EffectsDocument",
    "EndpointFigures",
    "Facts",
    "InvestigateReport",
    "Lead",
    "Moves",
    "NewVersion",
    "NextStep",
    "RankedDimension",
    "SideFigures",
    "TokenChange",
    "Totals",
    "UnavailableDimension",
    "UnitFigures",
    "UnpricedDriver",
    "VersionFacts",
]

BaselineSpan = TypedDict("BaselineSpan", {"from": str, "to": str, "spec": str})
"""The baseline window and how it was asked for (``previous``, ``7d``, ``FROM..TO``)."""


class EffectsDocument(TypedDict):
    """A delta split into effects (nano-USD) that add up to it exactly (:mod:`.decompose`)."""

    volume: int
    retry: int
    efficiency: int
    price: int


class SideFigures(TypedDict):
    """One driver's figures in one window, as measured."""

    cost_nano_usd: int
    logical_requests: int
    attempts: int
    input_tokens: int
    output_tokens: int
    unpriced_attempts: int
    errors: int


class DriverDocument(TypedDict):
    """One value of a dimension against the (scaled) baseline, with its effects and links."""

    value: str | None
    baseline: SideFigures
    current: SideFigures
    baseline_scaled_cost_nano_usd: int
    baseline_scaled_cost_usd: str
    delta_nano_usd: int
    delta_usd: str
    share: float | None
    effects_nano_usd: EffectsDocument
    drilldown: dict[str, Link]


class Moves(TypedDict):
    """How many values of a dimension rose, fell or stayed."""

    up: int
    down: int
    unchanged: int


class UnpricedDriver(TypedDict):
    """A value whose unpriced attempts rose (per hour when the lengths differ)."""

    value: str | None
    baseline_unpriced_attempts: int
    current_unpriced_attempts: int


class RankedDimension(TypedDict):
    """One dimension ranked by share of the delta."""

    dimension: str
    available: Literal[True]
    bucket_seconds: int
    window: Span
    groups: int
    moves: Moves
    drivers: list[DriverDocument]
    offsetting_drivers: list[DriverDocument]
    unpriced_drivers: list[UnpricedDriver]


class UnavailableDimension(TypedDict):
    """A dimension the filters rule out, and why."""

    dimension: str
    available: Literal[False]
    note: str


DimensionEntry = RankedDimension | UnavailableDimension


class Comparison(TypedDict):
    """How the window is compared with the baseline (totals, or per hour)."""

    basis: str
    baseline_scale: str
    window_hours: float
    baseline_hours: float
    cost_per_hour_usd: dict[str, str | None]
    note: str


class Totals(TypedDict):
    """Both windows' figures, the scaled baseline, the delta and its effects."""

    baseline: Summary
    current: Summary
    baseline_scaled_cost_nano_usd: int
    baseline_scaled_cost_usd: str
    delta_nano_usd: int
    delta_usd: str
    delta_pct: float | None
    effects_nano_usd: EffectsDocument
    effects_basis: str


class UnitFigures(TypedDict):
    """The driving endpoint's per-unit figures in one window (ratios rounded for display)."""

    logical_requests: int
    attempts: int
    requests_per_hour: float | None
    input_tokens_per_call: float | None
    output_tokens_per_call: float | None
    cost_per_request_nano_usd: int | None
    cost_per_request_usd: str | None
    attempts_per_request: float | None


class TokenChange(TypedDict):
    """Relative change of tokens per call, in percent (None without a baseline)."""

    input: float | None
    output: float | None
    total: float | None


class EndpointFigures(TypedDict):
    """The driving endpoint in both windows."""

    value: str | None
    baseline: UnitFigures
    current: UnitFigures
    tokens_per_call_change_pct: TokenChange


class Lead(TypedDict):
    """The tenant or user holding the largest share of the delta."""

    value: str | None
    delta_nano_usd: int
    share: float


class NewVersion(TypedDict):
    """A prompt version first seen in the window, and when."""

    version: str
    first_seen: str | None


class VersionFacts(TypedDict):
    """Prompt versions on an endpoint in the latest traffic of each window."""

    endpoint: str | None
    baseline: list[str | None]
    current: list[str | None]
    new: list[NewVersion]
    slices: dict[str, list[str]]


class DeployFacts(TypedDict):
    """A deploy: the new version, the one it replaced, and how tokens per call moved."""

    version: str
    previous: str | None
    first_seen: str | None
    tokens_per_call: dict[str, float | None]
    tokens_per_call_change_pct: dict[str, float | None]


class TokenMix(TypedDict):
    """The same models and no fallback: cost per token moved with the token mix."""

    models: list[str]
    calls_falling_back: int


class Facts(TypedDict, total=False):
    """The figures behind the evidence sentences (each rule adds its own)."""

    unknown_models: dict[str, int]
    dominant_effect: str
    endpoint: EndpointFigures
    token_mix: TokenMix
    fallback: dict[str, list[int]]
    slices: dict[str, Span]
    deploy: DeployFacts
    prompt_versions: VersionFacts
    spread: dict[str, Lead]


class NextStep(TypedDict):
    """The next verification step: a sentence and the focused view's command and URL."""

    text: str
    cli: str
    api: str


class ClassifiedDriver(TypedDict):
    """Who drives the spike."""

    dimension: str
    value: str | None
    delta_usd: str | None
    share: float | None


class Classification(TypedDict):
    """The spike's type, driver, evidence, containment and next step."""

    type: str
    label: str
    hypothesis: str
    driver: ClassifiedDriver | None
    evidence: list[str]
    facts: Facts
    containment: str
    durable_control: str
    next_step: NextStep


class InvestigateReport(TypedDict):
    """What changed between a window and its baseline, who drove it, and why."""

    window: Span
    baseline: BaselineSpan
    comparison: Comparison
    filters: dict[str, str]
    environment: str | None
    data_mode: str | None
    totals: Totals
    dimensions: list[DimensionEntry]
    classification: Classification
