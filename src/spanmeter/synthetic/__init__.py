"""Seeded synthetic GenAI traffic with injectable incidents, for tests, the demo and benchmarks.

Example::

    from datetime import datetime, timezone
    from spanmeter.synthetic import PromptDeploy, SyntheticConfig, generate

    config = SyntheticConfig(
        days=3,
        incidents=(PromptDeploy("support.reply", "support_v6",
                                at=datetime(2026, 3, 4, tzinfo=timezone.utc)),),
    )
    dataset = generate(config)     # rows priced with the real price book
    dataset.write_to(store)
"""

from __future__ import annotations

from .attributes import span_attributes
from .generator import SyntheticDataset, generate, iter_rows, rows_between
from .incidents import (
    ContextGrowth,
    Incident,
    ModelFallback,
    PromptDeploy,
    RetryStorm,
    TenantBurst,
    UnknownModel,
    VolumeSurge,
    to_ns,
)
from .profile import DEFAULT_ENDPOINTS, DataFaults, EndpointProfile, SyntheticConfig

__all__ = [
    "DEFAULT_ENDPOINTS",
    "ContextGrowth",
    "DataFaults",
    "EndpointProfile",
    "Incident",
    "ModelFallback",
    "PromptDeploy",
    "RetryStorm",
    "SyntheticConfig",
    "SyntheticDataset",
    "TenantBurst",
    "UnknownModel",
    "VolumeSurge",
    "generate",
    "iter_rows",
    "rows_between",
    "span_attributes",
    "to_ns",
]
