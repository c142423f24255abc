"""Defaults for spans that carry no data mode or environment, read from the environment in
one place, so ``configure()``, the ``spanmeter`` exporter and the ``spanmeter`` configurator
apply ``SPANMETER_DATA_MODE`` and ``SPANMETER_ENVIRONMENT`` alike."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..environment_variables import SPANMETER_DATA_MODE_ENV, SPANMETER_ENVIRONMENT
from ..semantic_conventions.attributes import DATA_MODES

__all__ = ["SpanDefaults", "span_defaults"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpanDefaults:
    """What the enricher stamps on GenAI spans that carry none."""

    data_mode: str | None = None
    environment: str | None = None


def span_defaults(
    data_mode: str | None = None,
    environment: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> SpanDefaults:
    """Arguments win; the environment variables fill what they leave None. An invalid
    ``SPANMETER_DATA_MODE`` is ignored with a warning (telemetry never breaks the app); an
    invalid argument raises, since the app's own code passed it."""
    env = os.environ if environ is None else environ
    if data_mode is None:
        data_mode = env.get(SPANMETER_DATA_MODE_ENV, "").strip().lower() or None
        if data_mode is not None and data_mode not in DATA_MODES:
            _logger.warning("spanmeter: ignoring invalid %s=%r", SPANMETER_DATA_MODE_ENV, data_mode)
            data_mode = None
    if environment is None:
        environment = env.get(SPANMETER_ENVIRONMENT, "").strip() or None
    return SpanDefaults(data_mode, environment)
