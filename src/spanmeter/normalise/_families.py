"""Which instrumentation wrote a span, from the naming families of the keys it carries.

The alias table (:mod:`spanmeter.semantic_conventions.alias_table`) tags each key with a
family bit; this module decides, once at import, which family a set of bits names, so the
per-span answer is one tuple index.
"""

from __future__ import annotations

from typing import Final

from ..semantic_conventions.alias_table import Family

__all__ = ["FAMILY_BY_BITS"]


_FAMILY_PRECEDENCE: Final[tuple[tuple[int, str], ...]] = (
    # Most specific first: vendor SDKs also write gen_ai.* keys, so "otel" only wins when
    # no vendor-specific key is present. OpenLIT is recognised by a value
    # (telemetry.sdk.name), not by a key, and is handled by the normaliser itself.
    (Family.PYDANTIC_AI, "pydantic_ai"),
    (Family.VERCEL, "vercel"),
    (Family.OPENINFERENCE, "openinference"),
    (Family.TRACELOOP, "traceloop"),
    (Family.LANGFUSE, "langfuse"),
    (Family.OTEL, "otel"),
    (Family.PAYLOAD, "payload"),
)


def _family_name(bits: int) -> str | None:
    for bit, name in _FAMILY_PRECEDENCE:
        if bits & bit:
            return name
    return None


FAMILY_BY_BITS: Final[tuple[str | None, ...]] = tuple(
    _family_name(bits) for bits in range(Family.NAMES_MASK + 1)
)
"""``families & Family.NAMES_MASK`` -> ``GenAIRecord.instrumentation`` value (a table, so the
per-span answer is one index, not a loop over the precedence list)."""
