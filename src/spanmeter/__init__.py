"""spanmeter: LLM cost attribution and budgets on OpenTelemetry."""

from __future__ import annotations

__all__: list[str] = []
