"""Nanoseconds, said once: OTel timestamps are Unix nanoseconds, and every window, bucket,
retention cutoff and rate in spanmeter is computed in them. The constants live here, below
every layer (this module imports nothing from spanmeter), so no module spells ``10**9``
again and a reader never has to check which unit a bare number is in.
"""

from __future__ import annotations

from typing import Final

__all__ = ["NS_PER_DAY", "NS_PER_HOUR", "NS_PER_MINUTE", "NS_PER_MS", "NS_PER_SECOND", "NS_PER_US"]

NS_PER_US: Final = 1_000
NS_PER_MS: Final = 1_000_000
NS_PER_SECOND: Final = 1_000_000_000
NS_PER_MINUTE: Final = 60 * NS_PER_SECOND
NS_PER_HOUR: Final = 3600 * NS_PER_SECOND
NS_PER_DAY: Final = 86_400 * NS_PER_SECOND
