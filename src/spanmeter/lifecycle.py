"""``with`` for the parts that are started and stopped (servers, the receiver, the demo).

Each such class has ``start()`` (returning itself) and ``stop()``; :class:`StartStop` makes
it a context manager once, so ``with OTLPServer(...) as server:`` starts it and stops it
on the way out, exception or not, and no class spells ``__enter__``/``__exit__`` again.
"""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

__all__ = ["StartStop"]

_S = TypeVar("_S", bound="StartStop")


class StartStop:
    """Mixin: ``__enter__`` calls :meth:`start`, ``__exit__`` calls :meth:`stop`."""

    def start(self) -> object:
        """Start; subclasses return themselves."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop, releasing what :meth:`start` took."""
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
