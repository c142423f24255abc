"""``python -m spanmeter.cli``: the same as the ``spanmeter`` command."""

from __future__ import annotations

from .main import main

main()
