"""``BudgetGuard``: budget state in the app's memory, for throttling, capping and routing.

A background thread polls the receiver's ``GET /api/v1/budgets/status`` (with ``ETag``, so
an unchanged status costs a 304) and swaps in an immutable snapshot; :meth:`BudgetGuard.check`
only reads that snapshot, so the caller's thread never does I/O, never waits, and never sees
an exception. A call with the same dimensions as an earlier one is one tuple and one dict
lookup (well under a microsecond); a new combination is worked out once per snapshot.

If the receiver cannot be reached for ``stale_after_s``, checks answer ``unknown`` and,
by default, allow the call (``fail_closed=True`` blocks instead): an outage of the cost
system must not become an outage of the product.

Example::

    guard = spanmeter.BudgetGuard("http://spanmeter:4318")
    decision = guard.check(tenant_id=tenant, endpoint_tag="support.reply")
    if decision.exceeded:
        return cached_answer()                     # or 429, or a cheaper model
    max_tokens = 256 if decision.warning else 1024

A budget applies to a call when every dimension it fixes matches the call's value; a
budget on a dimension the call does not pass (an endpoint budget, for a call that only
says its tenant) does not apply. The worst applicable state wins.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from .. import environment_variables as env

__all__ = ["BudgetDecision", "BudgetGuard"]

_logger = logging.getLogger(__name__)

_DIMENSIONS: Final = (
    "endpoint_tag",
    "prompt_version",
    "tenant_id",
    "user_id",
    "provider",
    "model",
    "environment",
)
"""The order of the values in a check's memo key (``data_mode`` is the guard's own)."""
_RANK: Final = {"ok": 0, "warning": 1, "exceeded": 2}
_MEMO_LIMIT: Final = 50_000


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    """What :meth:`BudgetGuard.check` answers. Shared between calls: never mutate it."""

    state: str
    """``ok``, ``warning``, ``exceeded``, or ``unknown`` (no fresh status)."""
    allowed: bool
    """False when exceeded (or unknown with ``fail_closed``)."""
    budget: str | None = None
    """The budget behind the state (the worst one applying)."""
    scope: Mapping[str, str] = field(default_factory=dict)
    ratio: float = 0.0
    """Spend / limit of that budget."""
    forecast_exceeds: bool = False
    """Some applicable budget is projected to exceed its limit by its window's end."""

    @property
    def ok(self) -> bool:
        """Nothing applicable is past a warning threshold."""
        return self.state == "ok"

    @property
    def warning(self) -> bool:
        """A warning threshold is reached (time to cap output or route to a cheaper model)."""
        return self.state == "warning"

    @property
    def exceeded(self) -> bool:
        """A limit is reached."""
        return self.state == "exceeded"


_OK: Final = BudgetDecision("ok", True)


@dataclass(frozen=True)
class _Entry:
    fixed: tuple[tuple[int, str], ...]
    """(position in the memo key, value) of each dimension the state's scope fixes."""
    decision: BudgetDecision
    rank: int


def _better(entry: _Entry, than: _Entry | None) -> bool:
    return than is None or (entry.rank, entry.decision.ratio) > (than.rank, than.decision.ratio)


class _Snapshot:
    """Immutable states, indexed by the dimensions they fix, plus a memo of decisions.

    States fixing the same dimensions form a group keyed by their values, so working out a
    new combination costs one lookup per group (a handful), not one test per state.
    """

    __slots__ = ("default", "entries", "groups", "memo")

    def __init__(self, entries: Sequence[_Entry], default: BudgetDecision) -> None:
        self.entries = entries
        self.default = default
        self.memo: dict[tuple[Any, ...], BudgetDecision] = {}
        groups: dict[tuple[int, ...], dict[tuple[str, ...], tuple[_Entry, bool]]] = {}
        for entry in entries:
            positions = tuple(position for position, _ in entry.fixed)
            values = tuple(value for _, value in entry.fixed)
            table = groups.setdefault(positions, {})
            previous = table.get(values)
            if previous is None:
                table[values] = (entry, entry.decision.forecast_exceeds)
            else:
                best, forecast = previous
                chosen = entry if _better(entry, best) else best
                table[values] = (chosen, forecast or entry.decision.forecast_exceeds)
        self.groups = tuple(groups.items())

    def decide(self, key: tuple[Any, ...]) -> BudgetDecision:
        best: _Entry | None = None
        forecast = False
        for positions, table in self.groups:
            found = table.get(tuple(key[p] for p in positions))
            if found is not None:
                entry, entry_forecast = found
                forecast = forecast or entry_forecast
                if _better(entry, best):
                    best = entry
        if best is None:
            return self.default
        decision = best.decision
        if forecast and not decision.forecast_exceeds:
            decision = BudgetDecision(
                decision.state, decision.allowed, decision.budget, decision.scope, decision.ratio, True
            )
        return decision


class BudgetGuard:
    """In-app budget enforcement from a receiver's budget status.

    Args:
        url: Base URL of the receiver's API (``http://spanmeter:4318``). Default:
            ``SPANMETER_URL``, else ``SPANMETER_ENDPOINT`` when it is an HTTP endpoint.
        refresh_s: Seconds between polls.
        stale_after_s: After this long without a successful poll, checks answer ``unknown``.
        timeout_s: Per poll.
        filters: Only fetch states applying to these dimensions (e.g. this service's
            ``endpoint_tag``): smaller polls when there are many per-tenant budgets.
        data_mode: The traffic this app sends (budgets of other data modes never apply).
        fail_closed: Answer ``unknown`` with ``allowed=False`` instead of True.
        start: Start the background thread now (False: call :meth:`refresh` yourself).

    Raises:
        ValueError: no URL given or configured, or a non-positive interval.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        refresh_s: float = 10.0,
        stale_after_s: float = 120.0,
        timeout_s: float = 2.0,
        filters: Mapping[str, str] | None = None,
        data_mode: str = "real",
        fail_closed: bool = False,
        start: bool = True,
    ) -> None:
        base = (
            url or os.environ.get(env.SPANMETER_URL) or _from_endpoint(os.environ.get(env.SPANMETER_ENDPOINT))
        )
        if not base:
            raise ValueError("BudgetGuard needs the receiver's URL: pass url= or set SPANMETER_URL")
        if refresh_s <= 0 or stale_after_s <= 0 or timeout_s <= 0:
            raise ValueError("refresh_s, stale_after_s and timeout_s must be positive")
        query = urlencode(sorted((filters or {}).items()))
        self.url = base.rstrip("/") + "/api/v1/budgets/status" + (f"?{query}" if query else "")
        self._refresh_s = refresh_s
        self._stale_after_s = stale_after_s
        self._timeout_s = timeout_s
        self._data_mode = data_mode
        self._unknown = BudgetDecision("unknown", not fail_closed)
        self._snapshot = _Snapshot((), self._unknown)
        self._etag: str | None = None
        self._last_success: float | None = None
        self.last_error: str | None = None
        """Why the last poll failed (None after a success)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # -- the hot path ---------------------------------------------------------------------

    def check(
        self,
        *,
        endpoint_tag: str | None = None,
        prompt_version: str | None = None,
        tenant_id: str | None = None,
        user_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        environment: str | None = None,
    ) -> BudgetDecision:
        """The worst state of the budgets applying to a call with these dimensions.

        Memory only: no I/O, no lock, no clock read; never raises.
        """
        try:
            snapshot = self._snapshot
            key = (endpoint_tag, prompt_version, tenant_id, user_id, provider, model, environment)
            decision = snapshot.memo.get(key)
            if decision is None:
                decision = snapshot.decide(key)
                if len(snapshot.memo) < _MEMO_LIMIT:
                    snapshot.memo[key] = decision
            return decision
        except Exception:  # an unhashable value, say: never break the app
            return self._unknown

    # -- the background side --------------------------------------------------------------

    def start(self) -> BudgetGuard:
        """Start the polling thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="spanmeter-budget-guard", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._timeout_s + 1)

    def __enter__(self) -> BudgetGuard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def fresh(self) -> bool:
        """Whether the last successful poll is recent enough to trust."""
        return self._last_success is not None and time.monotonic() - self._last_success < self._stale_after_s

    def refresh(self) -> bool:
        """Poll once now (on the calling thread); True on success. Never raises."""
        try:
            request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
            if self._etag:
                request.add_header("If-None-Match", self._etag)
            try:
                with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                    document = json.loads(response.read())
                    etag = response.headers.get("ETag")
            except urllib.error.HTTPError as error:
                if error.code != 304:
                    raise
                if self._snapshot.default is self._unknown:  # was stale: the same states are fresh again
                    self._snapshot = _Snapshot(self._snapshot.entries, _OK)
                self._last_success = time.monotonic()
                self.last_error = None
                return True
            self._snapshot = self._build(document)
            self._etag = etag
            self._last_success = time.monotonic()
            self.last_error = None
            return True
        except Exception as error:
            self.last_error = f"{type(error).__name__}: {error}"
            if not self.fresh and self._snapshot.default is not self._unknown:
                _logger.warning(
                    "spanmeter: budget status is stale (%s); checks answer unknown", self.last_error
                )
                self._snapshot = _Snapshot((), self._unknown)
            return False

    def _build(self, document: Mapping[str, Any]) -> _Snapshot:
        entries: list[_Entry] = []
        positions = {dim: i for i, dim in enumerate(_DIMENSIONS)}
        for state in document.get("states", []):
            scope: Mapping[str, str] = state.get("scope", {})
            if scope.get("data_mode", self._data_mode) != self._data_mode:
                continue
            fixed = tuple(sorted((positions[d], v) for d, v in scope.items() if d in positions))
            if any(d not in positions and d != "data_mode" for d in scope):
                continue  # a dimension this client cannot say: never applies
            name = state.get("state", "ok")
            rank = _RANK.get(name, 0)
            decision = BudgetDecision(
                state=name,
                allowed=name != "exceeded",
                budget=state.get("budget"),
                scope=dict(scope),
                ratio=float(state.get("ratio") or 0.0),
                forecast_exceeds=bool(state.get("forecast_exceeds")),
            )
            entries.append(_Entry(fixed, decision, rank))
        return _Snapshot(tuple(entries), _OK)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self._refresh_s)


def _from_endpoint(endpoint: str | None) -> str | None:
    """``http://spanmeter:4318/v1/traces`` -> ``http://spanmeter:4318`` (the API shares the port)."""
    if not endpoint or not endpoint.startswith(("http://", "https://")):
        return None
    parts = urlsplit(endpoint)
    if parts.port == 4317:  # the gRPC port serves no API
        return None
    return f"{parts.scheme}://{parts.netloc}"
