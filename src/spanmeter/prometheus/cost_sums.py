"""Per-label-set sums of what a commit stored: the cost counters' per-row work, run where the rows are.

Why a module of its own: the receiver process bounds ingest, and summing every committed
row per label set there cost it ~2.6-3 µs a span (-11% spans/s). The store process has the
rows, knows exactly which ones its commit inserted (re-deliveries left out, no store
re-read for a partly duplicate batch) and which of them started a logical request (the
store's own dedupe of external request ids, the one the rollups use), and it has idle CPU.
So a :class:`CostSummer` runs there, as the store process's commit observer
(:class:`~spanmeter.service.store_worker.CommitObserver`), and sends one compact
:data:`CostSums` per transaction with the commit's answers; the receiver only merges those
small dicts (:meth:`~spanmeter.prometheus.cost_metrics.CostMetrics.merge`). In the
one-process mode the same summer runs on the writer thread.

Where the tenant cap is decided, and why here: the receiver owns the sticky tenant labels,
but they change rarely (at start, then at most ``top_tenants`` promotions in the life of
the process), so it sends the current :class:`TenantView` to the summer when it changes,
in order with the batches. Summing per *raw* tenant instead and capping on merge would
make about one group per row with many tenants (8.6 µs a row measured for that grouping),
and the merge on the receiver would grow with the tenants: the cost this module exists to
remove. Exactness does not depend on when the view arrives: every row is counted once,
under its tenant's label if labelled when the row was summed, else under ``other``, which
is what sticky promotion promises (spend from before a promotion stays in ``other``).

Unlabelled tenants' spend is summed too (for promotion at scrape time), and only while a
slot is free (:attr:`TenantView.rank_unlabelled`): once the N slots are used, nothing is
ranked any more, and the per-tenant dict is not built or sent.

This module imports neither ``prometheus_client`` nor the transport: it runs in the store
process.

Example::

    summer = CostSummer(TenantView(frozenset({"acme"}), rank_unlabelled=True))
    sums = summer.observe(store.write_batches(batches))   # None when nothing was stored
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Final, TypeAlias

from ..store import SpanRow, WriteResult

__all__ = [
    "COST_LABELS",
    "MEASURE_COUNT",
    "M_ATTEMPTS",
    "M_COST",
    "M_FAILED",
    "M_REQUESTS",
    "M_TOKENS",
    "M_UNPRICED",
    "OTHER_TENANT",
    "TOKEN_TYPES",
    "CostSummer",
    "CostSums",
    "TenantView",
]

OTHER_TENANT: Final = "other"
"""The ``tenant`` label of every tenant without a slot (a tenant literally named ``other``
is counted there too)."""
COST_LABELS: Final = (
    "endpoint_tag",
    "prompt_version",
    "provider",
    "model",
    "environment",
    "data_mode",
    "tenant",
)
"""Labels of every cost counter, in order."""
TOKEN_TYPES: Final = ("input", "cache_read_input", "cache_write_input", "output", "reasoning_output")
"""Values of the ``type`` label of ``spanmeter_tokens_total``. They overlap as in OTel:
``input`` includes both cache kinds, ``output`` includes reasoning."""

# Positions in a label set's measure list.
M_COST, M_ATTEMPTS, M_REQUESTS, M_FAILED, M_UNPRICED = range(5)
M_TOKENS: Final = 5
"""First of the token measures, one per :data:`TOKEN_TYPES` entry."""
MEASURE_COUNT: Final = M_TOKENS + len(TOKEN_TYPES)

CostSums: TypeAlias = tuple[dict[tuple[str, ...], list[int]], dict[str, int]]
"""What a commit adds: measures per label set (tenant already capped, labels truncated), and
the spend of unlabelled tenants (empty unless ranking is wanted)."""

_logger = logging.getLogger(__name__)

_MAX_LABEL_CHARS: Final = 128
_label_values: Final = attrgetter(
    "endpoint_tag", "prompt_version", "provider", "model", "environment", "data_mode"
)
_token_getters: Final = tuple(
    attrgetter(name)
    for name in (
        "input_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "output_tokens",
        "reasoning_tokens",
    )
)
_cost: Final = attrgetter("cost_nano_usd")


@dataclass(frozen=True, slots=True)
class TenantView:
    """What the summer needs to know of the receiver's tenant labels (picklable)."""

    labelled: frozenset[str] = frozenset()
    """Tenants with their own series."""
    rank_unlabelled: bool = False
    """Whether a slot is free, i.e. whether unlabelled tenants' spend is wanted."""


def _label(value: str | None) -> str:
    return "" if value is None else value[:_MAX_LABEL_CHARS]


def _nonzero(values: Iterable[int | None]) -> int:
    return sum(filter(None, values))


class CostSummer:
    """Sums stored rows per label set; the store process's commit observer.

    Not thread-safe beyond this: :meth:`configure` swaps the view in one assignment, so a
    summing thread sees the old view or the new one, never a mix.

    Args:
        view: The tenant labels to start with.
    """

    def __init__(self, view: TenantView | None = None) -> None:
        self.view = view if view is not None else TenantView()
        self._warned = False

    def configure(self, message: object) -> None:
        """Take a new :class:`TenantView` (what the receiver sends when its labels change)."""
        if isinstance(message, TenantView):
            self.view = message

    def observe(self, results: Sequence[WriteResult]) -> CostSums | None:
        """The sums of the rows these results stored; None when they stored nothing."""
        rows: Sequence[SpanRow]
        firsts: Sequence[bool]
        if len(results) == 1:
            only = results[0]
            rows, firsts = only.new_rows, only.first_attempts
        else:
            rows, firsts = [], []
            for result in results:
                rows.extend(result.new_rows)
                firsts.extend(result.first_attempts)
        if rows:
            return self.sum_rows(rows, firsts)
        if any(result.inserted for result in results) and not self._warned:
            self._warned = True
            _logger.warning("cost metrics: the store does not report the rows it stored; nothing is counted")
        return None

    def sum_rows(self, rows: Sequence[SpanRow], first_attempts: Sequence[bool]) -> CostSums:
        """Sum ``rows`` (newly stored) per label set.

        Args:
            rows: Rows the store inserted; non-billable ones are left out, as in every total.
            first_attempts: Per row, whether it counts a logical request (see
                :attr:`~spanmeter.store.WriteResult.first_attempts`).
        """
        view = self.view
        labelled = view.labelled
        rank = view.rank_unlabelled
        spend: dict[str, int] = {}
        # Tenants are capped per row first, so a transaction over 1,000 tenants makes a few
        # hundred groups rather than one per row (the per-group work is what costs).
        groups: dict[tuple[tuple[str | None, ...], str], list[SpanRow]] = {}
        requests: dict[tuple[tuple[str | None, ...], str], int] = {}
        for row, first in zip(rows, first_attempts, strict=True):
            if not row.billable:
                continue
            tenant = row.tenant_id
            if tenant is None:
                tenant = ""
            elif tenant not in labelled:
                if rank:
                    cost = row.cost_nano_usd
                    if cost:
                        spend[tenant] = spend.get(tenant, 0) + cost
                tenant = OTHER_TENANT
            key = (_label_values(row), tenant)
            group = groups.get(key)
            if group is None:
                groups[key] = [row]
                requests[key] = 1 if first else 0
            else:
                group.append(row)
                requests[key] += first
        series: dict[tuple[str, ...], list[int]] = {}
        for key, members in groups.items():
            values, tenant = key
            costs = list(map(_cost, members))
            measures = [
                _nonzero(costs),
                len(members),
                requests[key],
                sum(1 for row in members if row.outcome == "error"),
                costs.count(None),
            ]
            measures.extend(_nonzero(map(getter, members)) for getter in _token_getters)
            labels = (*map(_label, values), tenant[:_MAX_LABEL_CHARS])
            previous = series.get(labels)  # two raw sets can truncate to one label set
            if previous is None:
                series[labels] = measures
            else:
                series[labels] = [a + b for a, b in zip(previous, measures, strict=True)]
        return series, spend
