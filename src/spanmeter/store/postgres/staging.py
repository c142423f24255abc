"""The staging table raw rows are ``COPY``-ed into before they move into ``requests``.

``COPY`` is the fastest way in, but it cannot skip a row already stored; so rows go into a
per-session temporary table shaped like ``requests`` and are moved with ``ON CONFLICT DO
NOTHING`` on the delivery key. The write path and ``spanmeter store copy`` stage the same way.
"""

from __future__ import annotations

from typing import Final

from ..rows import FIELD_NAMES

__all__ = ["COLUMNS", "COPY_STAGE", "MOVE", "STAGE"]

COLUMNS: Final = ", ".join(FIELD_NAMES)
STAGE: Final = (
    f"CREATE TEMP TABLE IF NOT EXISTS requests_stage ON COMMIT DELETE ROWS AS"
    f" SELECT {COLUMNS} FROM requests WITH NO DATA"
)
"""Make the staging table if this session has none (emptied at every commit)."""
COPY_STAGE: Final = f"COPY requests_stage ({COLUMNS}) FROM STDIN"
MOVE: Final = (
    f"INSERT INTO requests ({COLUMNS}) SELECT {COLUMNS} FROM requests_stage"
    " ON CONFLICT (start_time_ns, span_id, trace_id) DO NOTHING"
    " RETURNING start_time_ns, span_id, trace_id"
)
"""Move the staged rows not stored yet; returns the delivery key of each row moved."""
