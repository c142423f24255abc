"""Turn the attributes of any instrumentation's GenAI span into one :class:`GenAIRecord`.

The SDK processor (in the app) and the receiver (at ingest) both call :func:`normalize`,
so the two can never disagree on what a span means: which provider and model, how many
tokens of each kind (OTel semantics: input includes the prompt cache, output includes
reasoning), who to attribute it to, whether it failed, whether it already carries a
cost, and whether it is *billable* at all (outer agent/workflow spans repeat the usage of
their children and must not be counted twice)::

    >>> record = normalize(
    ...     {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
    ...      "gen_ai.usage.input_tokens": 2150, "gen_ai.usage.output_tokens": 96,
    ...      "gen_ai.usage.cache_read.input_tokens": 1920},
    ...     {"deployment.environment.name": "prod"},
    ... )
    >>> record.provider, record.input_tokens, record.cache_read_tokens, record.environment
    ('openai', 2150, 1920, 'prod')

Cost matters per span: the normaliser reads only the exact keys in
:data:`~spanmeter.semantic_conventions.NORMALIZER_KEYS`
(so a receiver can drop every other attribute while decoding), does one pass over the
span's keys, and uses no regular expressions. :func:`is_genai_candidate` is the even
cheaper pre-check a span processor runs on every span.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Final

from ..semantic_conventions.alias_table import (
    CANDIDATE_MARKERS,
    INDEX,
    RESOURCE_KEYS,
    SLOT_KEYS,
    Family,
    Key,
    Slot,
)
from ..semantic_conventions.attributes import (
    DATA_MODES,
    DEPLOYMENT_ENVIRONMENT,
    DEPLOYMENT_ENVIRONMENT_NAME,
    SPANMETER_DATA_MODE,
    SPANMETER_ENDPOINT_TAG,
    SPANMETER_TENANT_ID,
)
from ._classify import is_billable, is_inference_marker, operation, outcome
from ._cost import reported_cost
from ._families import FAMILY_BY_BITS
from ._langfuse import parse_usage_details
from ._providers import canonical_provider, openinference_provider
from ._token_rules import EMITTER_VERCEL_V5, EMITTER_VERCEL_V6, input_includes_cache
from ._values import MAX_DIMENSION_CHARS, MAX_TIME_NS, MAX_TOKENS, to_count, to_milliseconds, to_text
from .record import GenAIRecord
from .same_call import DUPLICATE_REASONS, NATIVE_SDK_SCOPES

__all__ = ["canonical_provider", "is_genai_candidate", "normalize"]

_NO_RANK: Final = 1 << 30

# Payload keys are generic words ("model", "provider"): on their own they do not make a
# span GenAI (an ORM span may well carry a "model"), only together or with token counts.
_PAYLOAD_MODEL_RANK: Final = SLOT_KEYS[Slot.REQUEST_MODEL].index(Key.PAYLOAD_MODEL)
_PAYLOAD_PROVIDER_RANK: Final = SLOT_KEYS[Slot.PROVIDER].index(Key.PAYLOAD_PROVIDER)
_OPENINFERENCE_RANKS: Final = frozenset(
    SLOT_KEYS[Slot.PROVIDER].index(key) for key in (Key.LLM_PROVIDER, Key.LLM_SYSTEM)
)

_index_get = INDEX.get
_markers_isdisjoint = CANDIDATE_MARKERS.isdisjoint

_STATUS_CODE_ERROR: Final = 2  # opentelemetry.trace.StatusCode.ERROR, as in outcome()
# Every key reported_cost() starts from: without them it finds nothing and notes nothing,
# so the call is skipped (a test keeps this set in step with it).
_COST_KEYS: Final = frozenset(
    {Key.PRICING_STATUS, Key.COST_AMOUNT, Key.COST, Key.OPERATION_COST, Key.LLM_COST_TOTAL}
    | {Key.LANGFUSE_COST_DETAILS}
)
# Pure functions of a few client-supplied labels, called per span: remembered, bounded.
_canonical_provider = lru_cache(maxsize=1024)(canonical_provider)
_input_includes_cache = lru_cache(maxsize=1024)(input_includes_cache)
_NATIVE_SCOPES: Final = frozenset(NATIVE_SDK_SCOPES)


def is_genai_candidate(attributes: Mapping[str, object]) -> bool:
    """Cheap pre-check: might this span be a GenAI span?

    Runs on the app's thread for every span, so it is one C-level pass over the span's
    keys against a set of marker keys (``frozenset.isdisjoint``): no value is read, and no
    ``in`` test goes through ``Mapping.__contains__``, which on the SDK's
    ``BoundedAttributes`` raises and catches a ``KeyError`` for every missing key.

    Args:
        attributes: Span attributes (a dict, ``BoundedAttributes`` or a read-only view).

    Returns:
        False only when :func:`normalize` would certainly return None.
    """
    return not _markers_isdisjoint(attributes)


def normalize(
    attributes: Mapping[str, object],
    resource_attributes: Mapping[str, object] | None = None,
    *,
    span_name: str | None = None,
    start_time_ns: int | None = None,
    end_time_ns: int | None = None,
    status_code: int | None = None,
    scope_name: str | None = None,
    scope_version: str | None = None,
    user_id_hasher: Callable[[str], str] | None = None,
) -> GenAIRecord | None:
    """Read one span's attributes into a :class:`GenAIRecord`.

    Steps, in the order their issues are noted: recognise a GenAI span, read its usage,
    outcome and reported cost, attribution, provenance. Each sets its fields after the
    record is built: cheaper than keyword arguments (``bench/README.md``, "Normaliser split").

    Args:
        attributes: Span attributes; only keys in ``NORMALIZER_KEYS`` are read.
        resource_attributes: Resource attributes; only ``RESOURCE_KEYS`` are read.
        span_name: Span name (Vercel AI SDK spans are named after their operation).
        start_time_ns: Span start, Unix nanoseconds.
        end_time_ns: Span end, Unix nanoseconds.
        status_code: OTel status code value: 0 UNSET, 1 OK, 2 ERROR.
        scope_name: Instrumentation scope name, which selects some token rules.
        scope_version: Instrumentation scope version, kept on the record.
        user_id_hasher: Applied to the user id; it decides itself whether a value is
            already hashed. If it raises, the user id is dropped (never stored raw).

    Returns:
        The record, or None when the span is not a GenAI span. Unusable values never raise:
        they are dropped and described in ``record.issues``.
    """
    found, ranks, families = _scan(attributes)
    if not found:
        return None
    oi_kind = _upper(found.get(Key.OPENINFERENCE_SPAN_KIND))
    vercel_op = found.get(Key.VERCEL_OPERATION_ID)
    if not isinstance(vercel_op, str):
        # Vercel names spans after their operation; trust the name only on a Vercel span.
        is_vercel = families & Family.VERCEL
        vercel_op = span_name if is_vercel and span_name and span_name.startswith("ai.") else None
    if not _is_genai(ranks, found, oi_kind, vercel_op):
        return None
    issues: list[str] = []
    instrumentation = _instrumentation(families, found, scope_name)
    record = GenAIRecord(
        provider=_provider(found, ranks, issues),
        operation=operation(found, oi_kind, vercel_op, issues),
        instrumentation=instrumentation,
        issues=issues,
    )
    _read_usage(record, found, ranks, families & Family.VERCEL_V6_USAGE, scope_name, issues)
    _read_outcome(record, found, status_code, start_time_ns, end_time_ns, issues)
    _read_attribution(record, found, ranks, resource_attributes, user_id_hasher, issues)
    if not is_billable(found, record.operation, oi_kind, vercel_op, families & Family.AGGREGATED_USAGE != 0):
        record.billable = False
    _read_provenance(record, found, scope_name, scope_version)
    return record


def _read_usage(
    record: GenAIRecord,
    found: dict[str, object],
    ranks: list[int],
    vercel_v6: int,
    scope_name: str | None,
    issues: list[str],
) -> None:
    """Token counts, in OTel terms: input includes the prompt cache, output the reasoning."""
    input_tokens = _count(found, ranks, Slot.INPUT, issues)
    output_tokens = _count(found, ranks, Slot.OUTPUT, issues)
    cache_read = _count(found, ranks, Slot.CACHE_READ, issues) or 0
    cache_write = _count(found, ranks, Slot.CACHE_WRITE, issues) or 0
    reasoning = _count(found, ranks, Slot.REASONING, issues) or 0
    if (
        (input_tokens is None and ranks[Slot.INPUT] != _NO_RANK)
        or (output_tokens is None and ranks[Slot.OUTPUT] != _NO_RANK)
        or (not cache_read and _unusable(found, ranks, Slot.CACHE_READ))
        or (not cache_write and _unusable(found, ranks, Slot.CACHE_WRITE))
        or (not reasoning and _unusable(found, ranks, Slot.REASONING))
    ):
        record.usage_invalid = True
    emitter = record.instrumentation
    if emitter == "vercel":
        emitter = EMITTER_VERCEL_V6 if vercel_v6 else EMITTER_VERCEL_V5
    if input_tokens is None and output_tokens is None and Key.LANGFUSE_USAGE_DETAILS in found:
        usage = parse_usage_details(Key.LANGFUSE_USAGE_DETAILS, found[Key.LANGFUSE_USAGE_DETAILS], issues)
        if usage is not None:
            input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
            cache_read = usage.cache_read_tokens or cache_read
            cache_write = usage.cache_write_tokens or cache_write
            reasoning = usage.reasoning_tokens or reasoning
            emitter = usage.emitter
    cached = cache_read + cache_write
    if input_tokens is not None and cached:
        if not _input_includes_cache(emitter, scope_name, record.provider):
            input_tokens += cached
        elif cached > input_tokens:
            # No inclusive count can be smaller than its own cache part.
            input_tokens += cached
            issues.append("cache tokens exceed input tokens: input treated as exclusive of cache")
    if output_tokens is not None and reasoning > output_tokens:
        output_tokens += reasoning
        issues.append("reasoning tokens exceed output tokens: output treated as exclusive of reasoning")
    record.input_tokens = input_tokens
    record.output_tokens = output_tokens
    record.cache_read_tokens = cache_read
    record.cache_write_tokens = cache_write
    record.reasoning_tokens = reasoning


def _read_outcome(
    record: GenAIRecord,
    found: dict[str, object],
    status_code: int | None,
    start_time_ns: int | None,
    end_time_ns: int | None,
    issues: list[str],
) -> None:
    """Success or error, a cost already on the span, the latency and the span's times."""
    if Key.ERROR in found or Key.PAYLOAD_STATUS in found or Key.LANGFUSE_LEVEL in found:
        record.outcome, record.error_type = outcome(found, status_code, issues)
    else:  # what outcome() returns without those keys, minus its calls (most spans)
        code = getattr(status_code, "value", status_code)
        record.outcome = "error" if code == _STATUS_CODE_ERROR else "success"
    if not _COST_KEYS.isdisjoint(found):  # without them reported_cost() finds nothing
        record.reported_cost_usd, record.reported_cost_source, record.reported_cost_key = reported_cost(
            found, issues
        )
    # OTLP times are fixed64, so up to 2**64 - 1 ns arrives legally; no store column takes
    # more than a signed 64-bit integer (year 2262). Such a time is treated as missing, noted,
    # and the span kept: its usage and cost are real, only its clock is not. One test on the
    # common path: the OR of two non-negative ints exceeds 2**63 - 1 exactly when one does.
    if (start_time_ns or 0) | (end_time_ns or 0) > MAX_TIME_NS:
        if start_time_ns is not None and start_time_ns > MAX_TIME_NS:
            issues.append("start time: beyond year 2262, treated as missing")
            start_time_ns = None
        if end_time_ns is not None and end_time_ns > MAX_TIME_NS:
            issues.append("end time: beyond year 2262, treated as missing")
            end_time_ns = None
    latency_ms = to_milliseconds(Key.PAYLOAD_LATENCY_MS, found.get(Key.PAYLOAD_LATENCY_MS), issues)
    if latency_ms is None and start_time_ns is not None and end_time_ns is not None:
        if end_time_ns >= start_time_ns:
            latency_ms = (end_time_ns - start_time_ns) / 1e6
        else:
            issues.append("span ends before it starts: no latency")
    record.latency_ms = latency_ms
    record.start_time_ns = start_time_ns
    record.end_time_ns = end_time_ns


def _read_attribution(
    record: GenAIRecord,
    found: dict[str, object],
    ranks: list[int],
    resource_attributes: Mapping[str, object] | None,
    hasher: Callable[[str], str] | None,
    issues: list[str],
) -> None:
    """Models and the attribution dimensions. A slot the span does not fill is left at its
    default without a call (~0.1 us each, several a span)."""
    resource = _resource(resource_attributes)
    record.request_model = _text(found, ranks, Slot.REQUEST_MODEL, issues)
    if ranks[Slot.RESPONSE_MODEL] != _NO_RANK:
        record.response_model = _text(found, ranks, Slot.RESPONSE_MODEL, issues)
    record.endpoint_tag = _text(found, ranks, Slot.ENDPOINT_TAG, issues) or to_text(
        SPANMETER_ENDPOINT_TAG, resource.get(SPANMETER_ENDPOINT_TAG), issues
    )
    if ranks[Slot.PROMPT_NAME] != _NO_RANK:
        record.prompt_name = _text(found, ranks, Slot.PROMPT_NAME, issues)
    if ranks[Slot.PROMPT_VERSION] != _NO_RANK:
        record.prompt_version = _text(found, ranks, Slot.PROMPT_VERSION, issues)
    record.tenant_id = _text(found, ranks, Slot.TENANT, issues) or to_text(
        SPANMETER_TENANT_ID, resource.get(SPANMETER_TENANT_ID), issues
    )
    record.user_id = _user(found, ranks, hasher, issues)
    if ranks[Slot.EXTERNAL_REQUEST_ID] != _NO_RANK:
        record.external_request_id = _text(found, ranks, Slot.EXTERNAL_REQUEST_ID, issues)
    record.data_mode = _data_mode(found, ranks, resource, issues)
    record.environment = _environment(found, ranks, resource, issues)
    if ranks[Slot.SESSION] != _NO_RANK:
        record.session_id = _text(found, ranks, Slot.SESSION, issues)


def _read_provenance(
    record: GenAIRecord, found: dict[str, object], scope_name: str | None, scope_version: str | None
) -> None:
    """The provider's id of the call, the emitting scope, and a duplicate the app's
    processor already found. Set only when present, as the record's defaults say absent."""
    response_id = found.get(Key.RESPONSE_ID)
    if response_id.__class__ is str and 0 < len(response_id) <= MAX_DIMENSION_CHARS:  # type: ignore[arg-type]
        record.response_id = response_id  # type: ignore[assignment]  # a provider-made id, kept as sent
    if scope_name:
        record.scope_name = scope_name
        record.scope_version = scope_version or None
        record.native_sdk = scope_name in _NATIVE_SCOPES
    if Key.PRICING_STATUS in found:  # only a span the app's processor priced says it duplicates one
        duplicate_of = found.get(Key.DUPLICATE_OF)
        if duplicate_of.__class__ is str and duplicate_of:
            record.duplicate_of = duplicate_of[:32]  # type: ignore[index]
            reason = found.get(Key.NOT_BILLABLE_REASON)
            if reason.__class__ is str and reason in DUPLICATE_REASONS:
                record.not_billable_reason = reason  # type: ignore[assignment]


_SHAPE_LIMIT: Final = 1024
"""Attribute shapes remembered by :func:`_scan`; cleared when full (a client inventing key
sets costs itself the slow path, never memory)."""
_shapes: dict[tuple[str, ...], tuple[tuple[str, ...], list[int], int]] = {}
_NONE: Final = frozenset({None})


def _scan(attributes: Mapping[str, object]) -> tuple[dict[str, object], list[int], int]:
    """One pass over the span's keys: the known ones, each slot's best rank, the families.

    Iterating the keys costs in proportion to the span's attributes, whatever the size of
    the alias tables, and reads a value (``__getitem__``) only for keys we know.

    The ranks and families depend only on which keys are present, and spans of one
    instrumentation repeat the same key set, so for a dict (or a subclass: it iterates and
    indexes alike) they are remembered per key tuple (``bench/README.md``, ingest: ~2.5 of
    ~6.6 us a span went here). The remembered ``ranks`` list is shared: callers only read it. A dict holding a None value
    takes the full pass (None means absent).
    """
    if isinstance(attributes, dict):  # narrows to dict[str, object], as fast as type() is
        shape = tuple(attributes)
        cached = _shapes.get(shape)
        try:
            no_none = _NONE.isdisjoint(attributes.values())
        except TypeError:  # an unhashable value: let the full pass judge it
            no_none = False
        if no_none:
            if cached is None:
                found, ranks, families = _full_scan(attributes)
                if len(_shapes) >= _SHAPE_LIMIT:
                    _shapes.clear()
                _shapes[shape] = (tuple(found), ranks, families)
                return found, ranks, families
            known, ranks, families = cached
            if len(known) == len(shape):  # every key is known: the dict is the answer
                return attributes, ranks, families
            return {key: attributes[key] for key in known}, ranks, families
    return _full_scan(attributes)


def _full_scan(attributes: Mapping[str, object]) -> tuple[dict[str, object], list[int], int]:
    found: dict[str, object] = {}
    ranks = [_NO_RANK] * (Slot.COUNT + 1)  # + the spare slot of keys read on their own
    families = 0
    for key in attributes:
        entry = _index_get(key)
        if entry is None:
            continue
        value = attributes[key]
        if value is None:
            continue
        found[key] = value
        bits, slot, rank = entry
        families |= bits
        if rank < ranks[slot]:
            ranks[slot] = rank
    return found, ranks, families


def _is_genai(ranks: list[int], found: dict[str, object], oi_kind: str | None, vercel_op: str | None) -> bool:
    """A model, token usage, a GenAI operation or provider, an inference span kind."""
    if (
        ranks[Slot.INPUT] != _NO_RANK
        or ranks[Slot.OUTPUT] != _NO_RANK
        or ranks[Slot.TOTAL] != _NO_RANK
        or ranks[Slot.RESPONSE_MODEL] != _NO_RANK
        or ranks[Slot.OPERATION] != _NO_RANK
        or ranks[Slot.REQUEST_MODEL] < _PAYLOAD_MODEL_RANK
        or ranks[Slot.PROVIDER] < _PAYLOAD_PROVIDER_RANK
        or Key.LANGFUSE_USAGE_DETAILS in found
        or is_inference_marker(oi_kind, vercel_op)
    ):
        return True
    return ranks[Slot.REQUEST_MODEL] != _NO_RANK and ranks[Slot.PROVIDER] != _NO_RANK


def _text(found: dict[str, object], ranks: list[int], slot: int, issues: list[str]) -> str | None:
    """The slot's first usable text value, trying lower-ranked aliases when one is unusable."""
    rank = ranks[slot]
    if rank == _NO_RANK:
        return None
    value = found[SLOT_KEYS[slot][rank]]
    if type(value) is str:  # the common case, inlined: this runs ~10 times per span
        text = value.strip()
        if text and len(text) <= MAX_DIMENSION_CHARS:
            return text
    return _first_text(found, slot, rank, issues)


def _first_text(found: dict[str, object], slot: int, start: int, issues: list[str]) -> str | None:
    keys = SLOT_KEYS[slot]
    for rank in range(start, len(keys)):
        key = keys[rank]
        value = found.get(key)
        if value is not None:
            text = to_text(key, value, issues)
            if text is not None:
                return text
    return None


def _count(found: dict[str, object], ranks: list[int], slot: int, issues: list[str]) -> int | None:
    """The slot's first usable token count, trying lower-ranked aliases when one is unusable."""
    rank = ranks[slot]
    if rank == _NO_RANK:
        return None
    keys = SLOT_KEYS[slot]
    value = found[keys[rank]]
    if type(value) is int and 0 <= value <= MAX_TOKENS:  # the common case, inlined
        return value
    for key in keys[rank:]:
        value = found.get(key)
        if value is not None:
            count = to_count(key, value, issues)
            if count is not None:
                return count
    return None


def _unusable(found: dict[str, object], ranks: list[int], slot: int) -> bool:
    """True when the slot has a value and no usable count came out of it (a real 0 is fine)."""
    rank = ranks[slot]
    if rank == _NO_RANK:
        return False
    value = found.get(SLOT_KEYS[slot][rank])
    return not (type(value) is int and 0 <= value <= MAX_TOKENS) and _count(found, ranks, slot, []) is None


def _upper(value: object) -> str | None:
    """OpenInference span kinds are upper-case by convention, not always in practice."""
    return value.strip().upper() if isinstance(value, str) else None


def _instrumentation(families: int, found: dict[str, object], scope_name: str | None) -> str | None:
    """Which naming family wrote the span; OpenLIT is told by value, a few by scope name."""
    if found.get(Key.TELEMETRY_SDK_NAME) == "openlit":
        return "openlit"
    if scope_name is not None:
        if scope_name.startswith("openlit"):
            return "openlit"
        if scope_name == "pydantic-ai" or scope_name.startswith("logfire"):
            return "pydantic_ai"
        if scope_name.startswith("langfuse"):
            return "langfuse"
    return FAMILY_BY_BITS[families & Family.NAMES_MASK]


def _provider(found: dict[str, object], ranks: list[int], issues: list[str]) -> str | None:
    rank = ranks[Slot.PROVIDER]
    if rank in _OPENINFERENCE_RANKS:
        return openinference_provider(
            to_text(Key.LLM_PROVIDER, found.get(Key.LLM_PROVIDER), issues),
            to_text(Key.LLM_SYSTEM, found.get(Key.LLM_SYSTEM), issues),
        )
    text = _text(found, ranks, Slot.PROVIDER, issues)
    return _canonical_provider(text) if text is not None else None


def _user(
    found: dict[str, object],
    ranks: list[int],
    hasher: Callable[[str], object] | None,  # a plug-in: its return type is checked here
    issues: list[str],
) -> str | None:
    user = _text(found, ranks, Slot.USER, issues)
    if user is None or hasher is None:
        return user
    try:
        hashed = hasher(user)
    except Exception:  # a plug-in: its failure must not lose the span, nor store the raw id
        issues.append("user id: hasher failed, user id dropped")
        return None
    if not isinstance(hashed, str) or not hashed:
        issues.append("user id: hasher returned no text, user id dropped")
        return None
    return hashed


def _resource(resource_attributes: Mapping[str, object] | None) -> Mapping[str, object]:
    """The resource keys we read, without ``Mapping.get`` misses on SDK mappings.

    A dict is used as it is (only :data:`RESOURCE_KEYS` are ever looked up in it);
    other mappings are filtered in one pass over their keys, since ``Mapping.get`` on the
    SDK's ``BoundedAttributes`` raises and catches a ``KeyError`` for every missing key.
    """
    if not resource_attributes:
        return {}
    if isinstance(resource_attributes, dict):
        return resource_attributes
    return {key: resource_attributes[key] for key in resource_attributes if key in RESOURCE_KEYS}


def _data_mode(
    found: dict[str, object], ranks: list[int], resource: Mapping[str, object], issues: list[str]
) -> str | None:
    text = _text(found, ranks, Slot.DATA_MODE, issues)
    if text is None:
        text = to_text(SPANMETER_DATA_MODE, resource.get(SPANMETER_DATA_MODE), issues)
    if text is None:
        return None
    mode = text.lower()
    if mode in DATA_MODES:
        return mode
    issues.append(f"data mode: {text[:32]!r} is not one of real, test, demo")
    return None


def _environment(
    found: dict[str, object], ranks: list[int], resource: Mapping[str, object], issues: list[str]
) -> str | None:
    """Canonical key on the span, then on the resource, then the aliases, then the resource's.

    OpenLIT writes ``deployment.environment`` on every span (``"default"`` unless set),
    so a canonical resource value must outrank it.
    """
    text = to_text(DEPLOYMENT_ENVIRONMENT_NAME, found.get(DEPLOYMENT_ENVIRONMENT_NAME), issues)
    if text is None:
        text = to_text(DEPLOYMENT_ENVIRONMENT_NAME, resource.get(DEPLOYMENT_ENVIRONMENT_NAME), issues)
    if text is None:
        # Aliases start at rank 1: rank 0 is the canonical key, read just above.
        text = _first_text(found, Slot.ENVIRONMENT, max(ranks[Slot.ENVIRONMENT], 1), issues)
    if text is None:
        text = to_text(DEPLOYMENT_ENVIRONMENT, resource.get(DEPLOYMENT_ENVIRONMENT), issues)
    return text
