"""Fill in the token details the official OpenAI instrumentation leaves out.

``opentelemetry-instrumentation-openai-v2`` records ``gen_ai.usage.input_tokens`` for chat
completions, but not how many of them were served from OpenAI's prompt cache, nor the
reasoning tokens. Cached input costs a fraction of fresh input (gpt-4o: $1.25 vs $2.50 per
million), so without it every cached prompt would be overcharged.

:func:`instrument_openai_usage` wraps the client's ``post`` method (public API: the openai
README documents ``client.post`` for raw requests). It runs *inside* the instrumentation's
span whatever the patch order, so when the response (or, for a stream, the final usage
chunk) arrives, it sets ``gen_ai.usage.cache_read.input_tokens`` and
``gen_ai.usage.reasoning.output_tokens`` on that span, before the span ends, and only when
the instrumentation did not set them. A span with no token counts at all (OpenLLMetry's
streaming span) gets the input and output totals too. A stream reports usage only when the
caller asks for it (``stream_options={"include_usage": True}``): the wrapper does not add
it, since the extra final chunk has no ``choices`` and code reading ``chunk.choices[0]``
would break on it. Every step is guarded: the app's call and its result are never affected.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry import trace

from ..semantic_conventions.alias_table import SLOT_KEYS, Slot
from ..semantic_conventions.attributes import (
    GEN_AI_PROVIDER_NAME,
    GEN_AI_SYSTEM,
    GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
)

__all__ = ["instrument_openai_usage", "uninstrument_openai_usage"]

_logger = logging.getLogger(__name__)
_lock = threading.Lock()
_installed = False
_INPUT_KEYS = frozenset(SLOT_KEYS[Slot.INPUT])
_OUTPUT_KEYS = frozenset(SLOT_KEYS[Slot.OUTPUT])
"""Every name an instrumentation may record the token totals under."""

if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]  # the stream's class lives in openai, an optional dependency
else:
    _Proxy = wrapt.ObjectProxy  # wrapt before 2.0 has no ObjectProxy[...] at run time


def _count(usage: Any, name: str) -> int | None:
    value = getattr(usage, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _detail(obj: Any, container: str, name: str) -> int | None:
    details = getattr(obj, container, None)
    value = getattr(details, name, None) if details is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _record_usage(span: trace.Span, usage: Any) -> None:
    """Set the counts of ``usage`` on ``span`` where still missing.

    The input and output totals are set only when the span carries no token count at all
    under any instrumentation's name: OpenLLMetry's streaming span records none (with
    ``stream_options.include_usage`` the final chunk has them, and this sees it go by).
    """
    try:
        if usage is None or not span.is_recording():
            return
        existing: Mapping[str, Any] = getattr(span, "attributes", None) or {}
        if _INPUT_KEYS.isdisjoint(existing) and _OUTPUT_KEYS.isdisjoint(existing):
            prompt = _count(usage, "prompt_tokens")
            completion = _count(usage, "completion_tokens")
            if prompt is None and completion is None:  # the Responses API's names
                prompt, completion = _count(usage, "input_tokens"), _count(usage, "output_tokens")
            if prompt is not None:
                span.set_attribute(GEN_AI_USAGE_INPUT_TOKENS, prompt)
            if completion is not None:
                span.set_attribute(GEN_AI_USAGE_OUTPUT_TOKENS, completion)
        cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
        if cached is None:
            cached = _detail(usage, "input_tokens_details", "cached_tokens")
        reasoning = _detail(usage, "completion_tokens_details", "reasoning_tokens")
        if reasoning is None:
            reasoning = _detail(usage, "output_tokens_details", "reasoning_tokens")
        if cached and GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS not in existing:
            span.set_attribute(GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cached)
        if reasoning and GEN_AI_USAGE_REASONING_OUTPUT_TOKENS not in existing:
            span.set_attribute(GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, reasoning)
    except Exception:  # telemetry must never break the host app
        _logger.debug("spanmeter: could not record OpenAI usage details", exc_info=True)


def _genai_span() -> trace.Span | None:
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    if GEN_AI_PROVIDER_NAME in attributes or GEN_AI_SYSTEM in attributes:
        return span
    return None


class _StreamProxy(_Proxy):
    """Passes a sync stream through unchanged, noting the usage chunk as it goes by.

    An ``ObjectProxy``, so that it still *is* an ``openai.Stream`` to whoever checks
    (OpenLLMetry's wrapper does ``isinstance(response, openai.Stream)``, and ends its span
    at once, without usage, when the answer is not a stream)."""

    def __init__(self, stream: Any, span: trace.Span) -> None:
        super().__init__(stream)
        self._self_span = span

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        chunk = self.__wrapped__.__next__()
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            _record_usage(self._self_span, usage)
        return chunk

    def __enter__(self) -> _StreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self.__wrapped__.__exit__(*exc)


class _AsyncStreamProxy(_Proxy):
    """The async twin of :class:`_StreamProxy` (an ``openai.AsyncStream`` to ``isinstance``)."""

    def __init__(self, stream: Any, span: trace.Span) -> None:
        super().__init__(stream)
        self._self_span = span

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        chunk = await self.__wrapped__.__anext__()
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            _record_usage(self._self_span, usage)
        return chunk

    async def __aenter__(self) -> _AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc)


def _after(result: Any, span: trace.Span | None) -> Any:
    if span is None:
        return result
    try:
        if hasattr(result, "__next__") and hasattr(result, "response"):
            return _StreamProxy(result, span)
        if hasattr(result, "__anext__") and hasattr(result, "response"):
            return _AsyncStreamProxy(result, span)
        _record_usage(span, getattr(result, "usage", None))
    except Exception:  # telemetry must never break the host app
        _logger.debug("spanmeter: could not inspect OpenAI result", exc_info=True)
    return result


def _sync_post(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    span = _genai_span()
    return _after(wrapped(*args, **kwargs), span)


async def _async_post(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    span = _genai_span()
    return _after(await wrapped(*args, **kwargs), span)


def instrument_openai_usage() -> bool:
    """Patch the openai client once; False when openai is not installed or not patchable."""
    global _installed
    with _lock:
        if _installed:
            return True
        try:
            wrapt.wrap_function_wrapper("openai._base_client", "SyncAPIClient.post", _sync_post)
            wrapt.wrap_function_wrapper("openai._base_client", "AsyncAPIClient.post", _async_post)
        except ImportError:  # openai is not installed
            return False
        except Exception:  # an openai version we do not know: skip, never fail the app
            _logger.warning("spanmeter: OpenAI usage details not available for this openai version")
            return False
        _installed = True
        return True


def uninstrument_openai_usage() -> None:
    """Remove the patch (tests)."""
    global _installed
    with _lock:
        if not _installed:
            return
        # By name, as the patch does: openai's private module is the patch's target, not an API.
        base_client = importlib.import_module("openai._base_client")
        for cls in (base_client.SyncAPIClient, base_client.AsyncAPIClient):
            post = cls.__dict__.get("post")
            original = getattr(post, "__wrapped__", None)
            if original is not None:
                cls.post = original
        _installed = False
