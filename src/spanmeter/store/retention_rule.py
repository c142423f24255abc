"""Where retention cuts, the same in every store, so that two stores holding the same spans
keep the same ones (and ``spanmeter store copy`` compares equal after retention ran)."""

from __future__ import annotations

from ..timeunits import NS_PER_DAY, NS_PER_SECOND
from .tiers import FILTER_TIERS, TIERS

__all__ = ["check_retention_days", "raw_cutoff_ns", "rollup_cutoff_s"]


def check_retention_days(raw_days: int, rollup_days: int) -> None:
    """Raises:
    ValueError: ``raw_days`` or ``rollup_days`` below 1."""
    if raw_days < 1 or rollup_days < 1:
        raise ValueError(
            f"raw_days and rollup_days must be at least 1 (dedupe keys must outlive client retries), "
            f"got {raw_days!r} and {rollup_days!r}"
        )


def raw_cutoff_ns(now_ns: int, raw_days: int) -> int:
    """Raw rows starting before this go, with the logical-request keys first seen before it."""
    return now_ns - raw_days * NS_PER_DAY


def rollup_cutoff_s(now_ns: int, rollup_days: int) -> int:
    """Rollup buckets that *ended* by this (Unix seconds) go: ``rollup_days`` ago rounded down
    to the widest tier's bucket (4 weeks), so that every rollup and tier keeps exactly the same
    spans (a signed cover subtracts a finer tier's rows from a coarser tier's bucket, which is
    only exact if both still hold them)."""
    widest = max(tier.bucket_seconds for tier in (*TIERS, *FILTER_TIERS))
    return (now_ns - rollup_days * NS_PER_DAY) // NS_PER_SECOND // widest * widest
