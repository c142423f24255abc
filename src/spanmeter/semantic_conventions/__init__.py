"""spanmeter's attribute contract: canonical keys and the alias table. Constants only.

:mod:`.attributes` holds the keys (upstream ``gen_ai.*`` keys imported, never retyped);
:mod:`.alias_table` maps other instrumentations' keys onto them. The logic that reads a
span through this contract lives in :mod:`spanmeter.normalise`.
"""

from __future__ import annotations

from . import attributes as _attributes
from .alias_table import NORMALIZER_KEYS, RESOURCE_KEYS
from .attributes import *  # noqa: F403  (constants only; the list is attributes.__all__)

__all__ = ["NORMALIZER_KEYS", "RESOURCE_KEYS"]
__all__ += _attributes.__all__
