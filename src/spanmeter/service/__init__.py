"""The receiver service that ``spanmeter serve`` runs, and its configuration.

Imported lazily: the store process (:mod:`spanmeter.service.store_process`) lives in this
package and must start without loading the transport (gRPC, waitress) or the price data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ServeConfig
    from .receiver_service import ReceiverService

__all__ = ["ReceiverService", "ServeConfig"]


def __getattr__(name: str) -> Any:
    if name == "ReceiverService":
        from .receiver_service import ReceiverService

        return ReceiverService
    if name == "ServeConfig":
        from .config import ServeConfig

        return ServeConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
