"""``BudgetGuard``: budget state in the app's memory, for throttling, capping and routing.

A background thread polls the receiver's ``GET /api/v1/budgets/status`` (with ``ETag``, so
an unchanged status costs a 304) and swaps in an immutable snapshot; :meth:`BudgetGuard.check`
only reads that snapshot, so the caller's thread never does I/O, never waits, and never sees
an exception. A call with the same dimensions as an earlier one is one tuple and one dict
lookup (well under a microsecond); a new combination is worked out once per snapshot.

User ids are hashed the way spans' are (:func:`spanmeter.identity.default_hasher`, keyed by
``SPANMETER_USER_ID_HASH_KEY``), since per-user budget states name hashed ids: pass the raw
id (or one already hashed). The hash is worked out with the rest of a new combination, so
a combination already seen costs the same with or without a user.

If the receiver cannot be reached for ``stale_after_s``, the status is *stale*; what a check
answers then is the ``on_stale`` policy, and every answer says ``fresh=False``:

* ``"last_known"`` (the default): the last state received for the call, e.g. still
  ``exceeded`` (spend in a window only grows until the window ends; a state whose calendar
  window has ended meanwhile is dropped, so it answers ``ok``). Never polled yet:
  ``unknown``, allowed;
* ``"allow"``: ``unknown``, allowed (fail open: an outage of the cost system must not
  become an outage of the product);
* ``"block"``: ``unknown``, not allowed (fail closed; ``fail_closed=True`` is the same).

The last good status is kept apart from the staleness, so when the receiver answers again
with an unchanged status (a ``304``: its ETag is a hash of the content, so the same after a
restart) the states it confirms are fresh again.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Literal, cast
from urllib.parse import urlencode, urlsplit

from .. import environment_variables as env
from ..dimensions import DIMENSIONS
from ..identity import default_hasher

__all__ = ["BudgetDecision", "BudgetGuard", "StalePolicy"]

_logger = logging.getLogger(__name__)

_DIMENSIONS: Final = tuple(name for name in DIMENSIONS if name != "data_mode")
"""The order of the values in a check's memo key (``data_mode`` is the guard's own)."""
_USER: Final = _DIMENSIONS.index("user_id")
_RANK: Final = {"ok": 0, "warning": 1, "exceeded": 2}
_MEMO_LIMIT: Final = 50_000

StalePolicy = Literal["last_known", "allow", "block"]
"""What :meth:`BudgetGuard.check` answers while the status is stale (see the module doc)."""
_POLICIES: Final = ("last_known", "allow", "block")


def _no_scope() -> dict[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    """What :meth:`BudgetGuard.check` answers. Shared between calls: never mutate it."""

    state: str
    """``ok``, ``warning``, ``exceeded``, or ``unknown`` (no status to answer from)."""
    allowed: bool
    """False when exceeded (or unknown under the ``block`` policy)."""
    budget: str | None = None
    """The budget behind the state (the worst one applying)."""
    scope: Mapping[str, str] = field(default_factory=_no_scope)
    ratio: float = 0.0
    """Spend / limit of that budget."""
    forecast_exceeds: bool = False
    """Some applicable budget is projected to exceed its limit by its window's end."""
    fresh: bool = True
    """From a status polled within ``stale_after_s`` (False: the last known one, or none)."""

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
_STALE_OK: Final = BudgetDecision("ok", True, fresh=False)


@dataclass(frozen=True)
class _Entry:
    fixed: tuple[tuple[int, str], ...]
    """(position in the memo key, value) of each dimension the state's scope fixes."""
    decision: BudgetDecision
    rank: int
    ends_at: float | None = None
    """Unix time the state's calendar window ends (None: rolling, or not said)."""

    def stale(self) -> _Entry:
        return replace(self, decision=replace(self.decision, fresh=False))


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
            decision = replace(decision, forecast_exceeds=True)
        return decision


class BudgetGuard:
    """In-app budget enforcement from a receiver's budget status.

    Args:
        url: Base URL of the receiver's API (``http://spanmeter:4318``). Default:
            ``SPANMETER_URL``, else ``SPANMETER_ENDPOINT`` when it is an HTTP endpoint.
        refresh_s: Seconds between polls.
        stale_after_s: After this long without a successful poll the status is stale.
        timeout_s: Per poll.
        filters: Only fetch states applying to these dimensions (e.g. this service's
            ``endpoint_tag``): smaller polls when there are many per-tenant budgets.
        data_mode: The traffic this app sends (budgets of other data modes never apply).
        on_stale: What checks answer while stale: ``last_known`` (default), ``allow``, or
            ``block`` (see the module doc).
        fail_closed: Shorthand for ``on_stale="block"``.
        start: Start the background thread now (False: call :meth:`refresh` yourself).
        api_key: The API key sent as ``Authorization: Bearer`` (a ``read`` key, needed once
            the receiver's store holds a key). Default: ``SPANMETER_API_KEY``. A key refused
            (401, or 403 naming the scope it lacks) is a failed poll, in :attr:`last_error`.

    Raises:
        ValueError: no URL given or configured, a non-positive interval, or an unknown
            ``on_stale`` (or one contradicting ``fail_closed``).
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
        on_stale: StalePolicy | None = None,
        fail_closed: bool = False,
        start: bool = True,
        api_key: str | None = None,
    ) -> None:
        base = (
            url or os.environ.get(env.SPANMETER_URL) or _from_endpoint(os.environ.get(env.SPANMETER_ENDPOINT))
        )
        if not base:
            raise ValueError("BudgetGuard needs the receiver's URL: pass url= or set SPANMETER_URL")
        if refresh_s <= 0 or stale_after_s <= 0 or timeout_s <= 0:
            raise ValueError("refresh_s, stale_after_s and timeout_s must be positive")
        if on_stale is None:
            on_stale = "block" if fail_closed else "last_known"
        if on_stale not in _POLICIES or (fail_closed and on_stale != "block"):
            raise ValueError(f"on_stale must be one of {', '.join(_POLICIES)} (block with fail_closed)")
        query = urlencode(sorted((filters or {}).items()))
        self.url = base.rstrip("/") + "/api/v1/budgets/status" + (f"?{query}" if query else "")
        key = (api_key if api_key is not None else os.environ.get(env.SPANMETER_API_KEY, "")).strip()
        self._headers = {"Accept": "application/json"}
        if key:  # sent, never logged (last_error and the stale warning carry the answer only)
            self._headers["Authorization"] = f"Bearer {key}"
        self._refresh_s = refresh_s
        self._stale_after_s = stale_after_s
        self._timeout_s = timeout_s
        self._data_mode = data_mode
        self._on_stale: StalePolicy = on_stale
        self._unknown = BudgetDecision("unknown", on_stale != "block", fresh=False)
        self._snapshot = _Snapshot((), self._unknown)
        self._stale = True  # nothing received yet
        self._good: tuple[_Entry, ...] | None = None
        """The states of the last successful poll, kept through staleness (for 304s)."""
        self._etag: str | None = None
        """The ETag of ``_good``."""
        self._hash_user: Callable[[str], str] | None = None
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

        ``user_id`` is the raw id (hashed here, as spans' are) or one already hashed.
        Memory only: no I/O, no lock, no clock read; never raises.
        """
        try:
            snapshot = self._snapshot
            key = (endpoint_tag, prompt_version, tenant_id, user_id, provider, model, environment)
            decision = snapshot.memo.get(key)  # keyed by the raw id: no hashing when seen
            if decision is None:
                if user_id is not None:
                    hashed = self._hashed_user(user_id)
                    key_hashed = (*key[:_USER], hashed, *key[_USER + 1 :])
                    decision = snapshot.decide(key_hashed)
                else:
                    decision = snapshot.decide(key)
                if len(snapshot.memo) < _MEMO_LIMIT:
                    snapshot.memo[key] = decision
            return decision
        except Exception:  # an unhashable value, say: never break the app
            return self._unknown

    def _hashed_user(self, user_id: object) -> str:
        # object: an app may pass an int id, whatever check()'s hints say
        hasher = self._hash_user
        if hasher is None:  # created on first use: its warning about a missing key is logged once
            hasher = self._hash_user = default_hasher()
        return hasher(user_id if isinstance(user_id, str) else str(user_id))

    @property
    def stale(self) -> bool:
        """Whether checks answer from no status or a stale one (``fresh=False`` decisions)."""
        return self._stale

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
            request = urllib.request.Request(self.url, headers=self._headers)
            if self._etag and self._good is not None:
                request.add_header("If-None-Match", self._etag)
            try:
                with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                    entries = self._entries(json.loads(response.read()))
                    etag = response.headers.get("ETag")
            except urllib.error.HTTPError as error:
                if error.code != 304 or self._good is None:
                    raise _Refused(_answer_text(error)) from None
                entries, etag = self._good, self._etag  # unchanged, even across an outage
            if entries is not self._good or self._stale:
                self._snapshot = _Snapshot(entries, _OK)
            self._good, self._etag, self._stale = entries, etag, False
            self._last_success = time.monotonic()
            self.last_error = None
            return True
        except Exception as error:
            self.last_error = (
                str(error) if isinstance(error, _Refused) else f"{type(error).__name__}: {error}"
            )
            if not self.fresh:
                self._go_stale()
            return False

    def _go_stale(self) -> None:
        """Swap in the snapshot of the stale policy (on the polling thread, after a failure)."""
        if not self._stale:
            _logger.warning(
                "spanmeter: budget status is stale (%s); checks answer %s",
                self.last_error,
                "the last known states" if self._on_stale == "last_known" else "unknown",
            )
        if self._on_stale != "last_known" or self._good is None:
            if not self._stale:
                self._snapshot = _Snapshot((), self._unknown)
            self._stale = True
            return
        now = time.time()
        kept = tuple(e.stale() for e in self._good if e.ends_at is None or e.ends_at > now)
        if not self._stale or len(kept) != len(self._snapshot.entries):  # first time, or a window ended
            self._snapshot = _Snapshot(kept, _STALE_OK)
        self._stale = True

    def _entries(self, document: Mapping[str, Any]) -> tuple[_Entry, ...]:
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
            entries.append(_Entry(fixed, decision, rank, _window_end(state.get("window"))))
        return tuple(entries)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self._refresh_s)


class _Refused(Exception):
    """An HTTP error answer, with the receiver's own message (a 403 names the scope needed)."""


def _answer_text(error: urllib.error.HTTPError) -> str:
    """``HTTP 403: API key 'app' has scope 'ingest'; this needs 'read'``: the status and the
    API's ``{"error": ...}`` message (or the reason phrase when the body is not the API's)."""
    detail = str(error.reason)
    try:
        document: object = json.loads(error.read(4096))
        message = cast(Mapping[str, object], document).get("error") if isinstance(document, dict) else None
        if isinstance(message, str):
            detail = message
    except Exception:  # not JSON, or the connection went: the reason phrase will do
        pass
    finally:
        error.close()
    if error.code == 401:
        detail += f" (pass api_key= or set {env.SPANMETER_API_KEY})"
    return f"HTTP {error.code}: {detail}"


def _window_end(window: object) -> float | None:
    """The end of a calendar window of the status document, as Unix time (None: rolling)."""
    if not isinstance(window, Mapping):
        return None
    window = dict(cast(Mapping[str, Any], window))
    end = window.get("to")
    if window.get("kind") == "rolling" or not isinstance(end, str):
        return None
    try:  # Python 3.10's fromisoformat does not read a "Z" suffix
        return datetime.fromisoformat(end.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _from_endpoint(endpoint: str | None) -> str | None:
    """``http://spanmeter:4318/v1/traces`` -> ``http://spanmeter:4318`` (the API shares the port)."""
    if not endpoint or not endpoint.startswith(("http://", "https://")):
        return None
    parts = urlsplit(endpoint)
    if parts.port == 4317:  # the gRPC port serves no API
        return None
    return f"{parts.scheme}://{parts.netloc}"
