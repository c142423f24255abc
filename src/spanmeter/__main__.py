"""``python -m spanmeter``: the same as the ``spanmeter`` command."""

from __future__ import annotations

from .cli import main

main()
