"""The receiver service that ``spanmeter serve`` runs, and its configuration."""

from __future__ import annotations

from .config import ServeConfig
from .receiver_service import ReceiverService

__all__ = ["ReceiverService", "ServeConfig"]
