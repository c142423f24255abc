"""Models seen without a price: what to add to the override file.

An ``unknown_model`` attempt is counted, never priced at $0; this lists them by provider and
model with their attempts and tokens over a window, and the override-file YAML to fill in
(``spanmeter prices unknown``, and the ``priced_models`` check of ``spanmeter doctor``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..store.api import SpanStore
from .window import TimeWindow

__all__ = ["UnknownModel", "override_snippet", "unknown_models"]

_COLUMNS = ("provider", "model", "input_tokens", "output_tokens")


@dataclass(slots=True)
class UnknownModel:
    """One (provider, model) seen without a price in the window."""

    provider: str
    model: str
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


def unknown_models(
    store: SpanStore, window: TimeWindow, *, environment: str | None = None, data_mode: str | None = "real"
) -> list[UnknownModel]:
    """The unpriced models of the window, most attempts first."""
    found: dict[tuple[str, str], UnknownModel] = {}
    for provider, model, input_tokens, output_tokens in store.scan_requests(
        window.start_ns,
        window.end_ns,
        columns=_COLUMNS,
        where={"pricing_status": "unknown_model"},
        environment=environment,
        data_mode=data_mode,
    ):
        key = (provider or "", model or "")
        entry = found.get(key)
        if entry is None:
            entry = found[key] = UnknownModel(*key)
        entry.attempts += 1
        entry.input_tokens += input_tokens or 0
        entry.output_tokens += output_tokens or 0
    return sorted(found.values(), key=lambda item: (-item.attempts, item.provider, item.model))


def override_snippet(models: Iterable[tuple[str, str]]) -> str:
    """YAML to paste into the override file: one entry per unknown model, prices to fill in."""
    lines = ["models:"]
    for provider, model in sorted(set(models)):
        lines += [
            f"  - provider: {provider or 'unknown'}",
            f"    model: {model}",
            "    prices:",
            "      - effective_from: 2025-01-01",
            '        input_mtok: "0.00"   # USD per million input tokens',
            '        output_mtok: "0.00"  # USD per million output tokens',
        ]
    return "\n".join(lines) + "\n" if len(lines) > 1 else ""
