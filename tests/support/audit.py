"""Which I/O a thread did: ``sys.addaudithook`` events, recorded per thread.

Tests use it to assert that an app's thread never touches the network or the disk (a
budget check, a span end), which holds on any machine, where a wall-clock bound flakes
on a loaded one.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["io_on_this_thread"]

_recording: dict[int, list[str]] = {}
"""Thread id -> the I/O events seen on it while recorded."""

_IO_PREFIXES = ("socket.", "urllib.", "http.", "ssl.")
_FILE_EVENTS = ("open", "os.open")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    seen = _recording.get(threading.get_ident())
    if seen is not None and (event.startswith(_IO_PREFIXES) or event in _FILE_EVENTS):
        seen.append(event)


sys.addaudithook(_audit)  # cannot be removed: it records only for threads in `_recording`


@contextlib.contextmanager
def io_on_this_thread() -> Iterator[list[str]]:
    """The socket, HTTP and file-open audit events raised on this thread inside the block."""
    seen: list[str] = []
    ident = threading.get_ident()
    _recording[ident] = seen
    try:
        yield seen
    finally:
        del _recording[ident]
