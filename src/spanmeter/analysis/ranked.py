"""One ranked value of a dimension while ``investigate`` works: its figures, its exact
delta and, once shown or used, its effects and links.

The classification rules (:mod:`.classify`) read every ranked value, the report lists only
the first ones (as :class:`~.investigate_documents.DriverDocument`), so the working record
keeps what the rules need (the exact delta, the sides of the split) apart from the
document, which :meth:`Ranked.document` builds.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..money import usd
from .decompose import EffectName, Effects, Side
from .documents import Link
from .investigate_documents import DriverDocument, SideFigures

__all__ = ["DriverRef", "Ranked"]


@dataclass(slots=True)
class Ranked:
    """A value of a dimension against the baseline scaled by ``p/q``."""

    value: str | None
    """The dimension's value (None: spans without it)."""
    baseline: SideFigures
    """Its figures in the baseline, as measured."""
    current: SideFigures
    """Its figures in the window."""
    sides: tuple[Side, Side]
    """(baseline, current) as the effect split reads them."""
    exact_delta: int
    """``q x current - p x baseline``: the exact delta times ``q`` (ranks and signs need no Fraction)."""
    baseline_scaled_cost_nano_usd: int
    """The baseline's cost times ``p/q``, rounded once."""
    delta_nano_usd: int
    """The delta, rounded once."""
    share: float | None
    """Its share of the total delta (display only; None when the total did not move)."""
    effects: Effects | None = None
    """The delta split into effects (None until detailed)."""
    drilldown: dict[str, Link] | None = None
    """Focused views of this value (None until detailed)."""

    def effect(self, name: EffectName) -> int:
        """One effect of a detailed value (0 before it is detailed)."""
        return 0 if self.effects is None else self.effects.get(name)

    def document(self) -> DriverDocument:
        """The report's entry (only detailed values are listed)."""
        assert self.effects is not None and self.drilldown is not None, "only detailed values are listed"
        return {
            "value": self.value,
            "baseline": self.baseline,
            "current": self.current,
            "baseline_scaled_cost_nano_usd": self.baseline_scaled_cost_nano_usd,
            "baseline_scaled_cost_usd": usd(self.baseline_scaled_cost_nano_usd),
            "delta_nano_usd": self.delta_nano_usd,
            "delta_usd": usd(self.delta_nano_usd),
            "share": self.share,
            "effects_nano_usd": self.effects.as_dict(),
            "drilldown": self.drilldown,
        }


DriverRef = tuple[str, "str | None", "Ranked | None"]
"""A driver as ``(dimension, value, its ranked entry)``; the entry is None when not ranked."""
