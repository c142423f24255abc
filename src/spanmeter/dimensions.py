"""The attribution dimensions, declared once.

Every place that names the dimensions (the CLI's ``--by`` choices and ``--where`` checks,
the JSON API's validation, budget scopes, the budget guard, the store's ranking type and
the ``/metrics`` labels) reads this registry instead of retyping the list, so adding a
dimension or changing what may become a Prometheus label is one edit here. A test checks
that the lists which must keep their own order (rollup columns, label tuples) agree with it.

The order is the budget scope order (it shows in messages and scope texts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .semantic_conventions.attributes import (
    DEPLOYMENT_ENVIRONMENT_NAME,
    GEN_AI_PROMPT_VERSION,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_RESPONSE_MODEL,
    SPANMETER_DATA_MODE,
    SPANMETER_ENDPOINT_TAG,
    SPANMETER_TENANT_ID,
    USER_ID,
)

__all__ = [
    "DATA_MODES",
    "DIMENSIONS",
    "FILTERABLE",
    "PROMETHEUS_LABELS",
    "RANKABLE",
    "REGISTRY",
    "Dimension",
    "dimension",
]


@dataclass(frozen=True, slots=True)
class Dimension:
    """One dimension every stored attempt carries."""

    name: str
    """Column, query parameter, ``--where`` key and budget scope key."""
    attribute: str
    """The canonical span attribute it is read from (aliases are normalised at ingest)."""
    rankable: bool
    """A ``spanmeter top --by`` choice (``/api/v1/top?by=``)."""
    prometheus_label: str | None
    """Its label on the ``/metrics`` cost counters; None: never a label (unbounded values)."""
    hashed: bool = False
    """Stored as a keyed hash, never as the raw value."""


REGISTRY: Final = (
    Dimension("endpoint_tag", SPANMETER_ENDPOINT_TAG, True, "endpoint_tag"),
    Dimension("prompt_version", GEN_AI_PROMPT_VERSION, True, "prompt_version"),
    Dimension("tenant_id", SPANMETER_TENANT_ID, True, "tenant"),  # capped to the top N + other
    Dimension("user_id", USER_ID, True, None, hashed=True),
    Dimension("provider", GEN_AI_PROVIDER_NAME, True, "provider"),
    Dimension("model", GEN_AI_RESPONSE_MODEL, True, "model"),  # the request model when no response one
    Dimension("environment", DEPLOYMENT_ENVIRONMENT_NAME, False, "environment"),
    Dimension("data_mode", SPANMETER_DATA_MODE, False, "data_mode"),
)
"""Every dimension, in scope order."""

DIMENSIONS: Final = tuple(d.name for d in REGISTRY)
"""Every dimension name: what ``--where``, API filters and budget scopes may name."""
FILTERABLE: Final = frozenset(DIMENSIONS)
RANKABLE: Final = tuple(d.name for d in REGISTRY if d.rankable)
"""What ``top`` can rank by."""
PROMETHEUS_LABELS: Final = frozenset(d.prometheus_label for d in REGISTRY if d.prometheus_label)
"""Labels of the ``/metrics`` cost counters that carry a dimension (bounded values only)."""
DATA_MODES: Final = ("real", "test", "demo")
"""Values of ``data_mode`` (a query may also say ``all``: no data-mode filter)."""

_BY_NAME: Final = {d.name: d for d in REGISTRY}


def dimension(name: str) -> Dimension:
    """The dimension called ``name``.

    Raises:
        ValueError: No such dimension (the message lists them).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown dimension {name!r}: use one of {', '.join(DIMENSIONS)}") from None
