"""The ``spanmeter`` command line: a thin click layer over the packages (nothing imports it)."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
