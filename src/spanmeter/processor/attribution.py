"""Attribution scopes: who and what a GenAI call is for, carried by OTel context.

``attribution(...)`` puts the dimensions (endpoint tag, prompt version, tenant, user,
external request id, data mode...) into the current OTel context *and* into W3C baggage:

* the context value is what :class:`~spanmeter.processor.CostSpanProcessor` reads in
  ``on_start`` (one dictionary lookup, already validated and hashed), so every span
  started inside the scope, however deeply nested, is stamped;
* the baggage entries travel in the ``baggage`` header to downstream services, whose own
  spanmeter processor stamps their spans too.

User ids are hashed here, where they enter, so a raw id never reaches a span, a header or
a log. Invalid values are dropped with a warning instead of raising: telemetry must not
break the app. The warning is logged once per parameter and reason in a process (an app
passing a UUID object as ``tenant_id`` does so on every request), and never shows the
value, which may be personal data.

Example::

    from spanmeter import attribution

    with attribution(endpoint_tag="checkout.ai_summary", tenant_id="t_42", user_id=user.email):
        client.chat.completions.create(...)

    @attribution(endpoint_tag="support.reply", prompt_version="support_v5")
    def reply(ticket): ...
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Final, TypeVar, cast

from opentelemetry import baggage, context

from ..identity import default_hasher
from ..semantic_conventions.attributes import (
    DATA_MODES,
    DEPLOYMENT_ENVIRONMENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_PROMPT_NAME,
    GEN_AI_PROMPT_VERSION,
    SPANMETER_DATA_MODE,
    SPANMETER_ENDPOINT_TAG,
    SPANMETER_EXTERNAL_REQUEST_ID,
    SPANMETER_TENANT_ID,
    USER_ID,
)

__all__ = ["ATTRIBUTION_KEYS", "attribution", "current_attribution"]

_logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_PARAMETER_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "endpoint_tag": SPANMETER_ENDPOINT_TAG,
        "prompt_version": GEN_AI_PROMPT_VERSION,
        "prompt_name": GEN_AI_PROMPT_NAME,
        "tenant_id": SPANMETER_TENANT_ID,
        "user_id": USER_ID,
        "external_request_id": SPANMETER_EXTERNAL_REQUEST_ID,
        "data_mode": SPANMETER_DATA_MODE,
        "session_id": GEN_AI_CONVERSATION_ID,
        "environment": DEPLOYMENT_ENVIRONMENT_NAME,
    }
)

ATTRIBUTION_KEYS: Final = frozenset(_PARAMETER_KEYS.values())
"""Span attribute keys an attribution scope may stamp; also its W3C baggage keys."""

# Values travel in every outgoing baggage header (W3C limits: 4096 bytes an entry, 8192
# in all), so each is capped; longer values are almost certainly not dimension labels.
_MAX_VALUE_CHARS: Final = 256

_CONTEXT_KEY: Final = context.create_key("spanmeter-attribution")

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _warn_once(parameter: str, reason: str, message: str, *args: object) -> None:
    """Log ``message`` the first time ``parameter`` is dropped or cut for ``reason``.

    The keys are a fixed parameter name and a fixed reason, so the set stays tiny; the
    message never carries the value (a user id or an email, maybe).
    """
    key = (parameter, reason)
    if key in _warned:
        return
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    _logger.warning(message, *args)


def _clean(parameter: str, value: object) -> str | None:
    """Validate one dimension value; None (with a warning, once) when it cannot be used."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        _warn_once(
            parameter,
            "type",
            "spanmeter: attribution %s must be a string, got %s; dropped (logged once)",
            parameter,
            type(value).__name__,
        )
        return None
    text = str(value).strip()
    if not text:
        return None
    if len(text) > _MAX_VALUE_CHARS:
        _warn_once(
            parameter,
            "length",
            "spanmeter: attribution %s longer than %d characters, cut (logged once)",
            parameter,
            _MAX_VALUE_CHARS,
        )
        text = text[:_MAX_VALUE_CHARS]
    if parameter == "data_mode":
        text = text.lower()
        if text not in DATA_MODES:
            _warn_once(
                parameter,
                "value",
                "spanmeter: data_mode must be one of %s; dropped (logged once)",
                sorted(DATA_MODES),
            )
            return None
    if parameter == "user_id":
        text = default_hasher()(text)
    return text


_baggage_cache: dict[int, tuple[Mapping[str, object], Mapping[str, str]]] = {}


def _from_baggage(ctx: context.Context | None) -> Mapping[str, str]:
    """Dimensions that arrived as baggage from an upstream service (validated, hashed)."""
    entries = baggage.get_all(ctx)
    if not entries:
        return _EMPTY
    # A request's baggage mapping is shared by every span of that request, so the
    # validated result is cached by identity (the entry keeps the mapping alive).
    cached = _baggage_cache.get(id(entries))
    if cached is not None and cached[0] is entries:
        return cached[1]
    found: dict[str, str] = {}
    for parameter, key in _PARAMETER_KEYS.items():
        raw = entries.get(key)
        if raw is not None:
            value = _clean(parameter, raw)
            if value is not None:
                found[key] = value
    result: Mapping[str, str] = MappingProxyType(found) if found else _EMPTY
    if len(_baggage_cache) >= 1024:
        _baggage_cache.clear()
    _baggage_cache[id(entries)] = (entries, result)
    return result


def current_attribution(ctx: context.Context | None = None) -> Mapping[str, str]:
    """The attribution in force in ``ctx`` (default: the current context), as span attributes."""
    value = context.get_value(_CONTEXT_KEY, ctx)
    if value is not None:
        return cast(Mapping[str, str], value)
    return _from_baggage(ctx)


class attribution:  # lower case: it reads like a function at the call site
    """Context manager and decorator that attributes the GenAI calls made inside it.

    Nested scopes inherit the outer dimensions and override the ones they set.
    """

    __slots__ = ("_dimensions", "_propagate", "_tokens")

    def __init__(
        self,
        *,
        endpoint_tag: str | None = None,
        prompt_version: str | None = None,
        prompt_name: str | None = None,
        tenant_id: str | None = None,
        user_id: str | None = None,
        external_request_id: str | None = None,
        data_mode: str | None = None,
        session_id: str | None = None,
        environment: str | None = None,
        propagate: bool = True,
    ) -> None:
        """Declare dimensions.

        Args:
            endpoint_tag: Product feature making the call, e.g. ``checkout.ai_summary``.
            prompt_version: Deploy label of the prompt, e.g. ``summary_v3``.
            prompt_name: Name of the prompt, when versions are per prompt.
            tenant_id: Customer account billed for the call (opaque id).
            user_id: End user; hashed with the deployment's key before it goes anywhere.
            external_request_id: One id per logical request, the same across retries.
            data_mode: ``real``, ``test`` or ``demo``.
            session_id: Conversation/session id.
            environment: Deployment environment, when not set on the resource.
            propagate: Also send the dimensions to downstream services as W3C baggage.
        """
        given = {
            "endpoint_tag": endpoint_tag,
            "prompt_version": prompt_version,
            "prompt_name": prompt_name,
            "tenant_id": tenant_id,
            "user_id": user_id,
            "external_request_id": external_request_id,
            "data_mode": data_mode,
            "session_id": session_id,
            "environment": environment,
        }
        dimensions: dict[str, str] = {}
        try:
            for parameter, raw in given.items():
                value = _clean(parameter, raw)
                if value is not None:
                    dimensions[_PARAMETER_KEYS[parameter]] = value
        except Exception:  # telemetry must never break the host app
            _logger.exception("spanmeter: could not read attribution")
        self._dimensions: Mapping[str, str] = MappingProxyType(dimensions)
        self._propagate = propagate
        self._tokens: list[object] = []

    @property
    def dimensions(self) -> Mapping[str, str]:
        """The validated dimensions of this scope, keyed by span attribute."""
        return self._dimensions

    def __enter__(self) -> attribution:
        try:
            ctx = context.get_current()
            merged = {**current_attribution(ctx), **self._dimensions}
            ctx = context.set_value(_CONTEXT_KEY, MappingProxyType(merged), ctx)
            if self._propagate:
                for key, value in self._dimensions.items():
                    ctx = baggage.set_baggage(key, value, ctx)
            self._tokens.append(context.attach(ctx))
        except Exception:  # telemetry must never break the host app
            _logger.exception("spanmeter: could not enter attribution scope")
            self._tokens.append(None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token = self._tokens.pop() if self._tokens else None
        if token is not None:
            try:
                context.detach(cast(Any, token))
            except Exception:  # telemetry must never break the host app
                _logger.exception("spanmeter: could not leave attribution scope")

    def _scope(self) -> attribution:
        # Each call of a decorated function gets its own scope object, so the token
        # stack is never shared between threads or interleaved coroutines.
        scope = object.__new__(attribution)
        scope._dimensions = self._dimensions
        scope._propagate = self._propagate
        scope._tokens = []
        return scope

    def __call__(self, func: F) -> F:
        """Use as a decorator: every call of ``func`` runs inside this scope."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._scope():
                    return await func(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._scope():
                return func(*args, **kwargs)

        return cast(F, wrapper)
