"""Which spans are GenAI, and which vendor names may be copied to OTel names, in OTTL.

Both answers are derived from the receiver's own alias tables
(:mod:`spanmeter.semantic_conventions.alias_table`), so the Collector and the receiver cannot drift
apart when a new instrumentation's names are added:

* :func:`genai_condition` is true for every span the receiver's normaliser may accept
  (the same marker keys as ``is_genai_candidate``, with the two value checks the normaliser
  itself makes: the payload's generic ``model``/``provider`` keys count only together, and an
  OpenInference span kind counts only for ``LLM``/``EMBEDDING``). :func:`non_genai_condition`
  is its exact negation, written without ``not`` so the filter processor's DROP semantics read
  plainly.
* :func:`normalizing_statements` copies a vendor attribute onto its OTel ``gen_ai.*`` name
  only when that cannot change what the span means: the target is absent, no alias the
  receiver would prefer is present, and for token totals, no breakdown is present (so
  "input includes the cache" and "output includes reasoning" cannot be misread), and never on
  spans whose usage repeats their children's. Everything else (Vercel AI SDK usage, whose
  cache semantics depend on the SDK version and provider; user, tenant and endpoint
  attribution; Langfuse JSON usage) is left to the receiver's normaliser.

The OTTL produced uses one small subset: ``attributes["k"] == nil``/``!= nil``, ``==``/``!=``
against a string, ``and``/``or``/parentheses, and ``set(attributes["t"], attributes["s"])``
or ``set(attributes["t"], "value")`` with a ``where`` clause.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Final

# The alias tables are the normaliser's private data; they are read here (not copied) so a
# key added for the receiver reaches the Collector configuration in the same change.
from ..normalise import canonical_provider
from ..semantic_conventions.alias_table import CANDIDATE_MARKERS, SLOT_KEYS, Key, Slot

__all__ = [
    "GENAI_MARKER_KEYS",
    "LEGACY_PROVIDER_VALUES",
    "genai_clauses",
    "genai_condition",
    "non_genai_condition",
    "normalizing_statements",
]

_PAYLOAD_PAIR: Final = (Key.PAYLOAD_MODEL, Key.PAYLOAD_PROVIDER)
_OI_KIND: Final = Key.OPENINFERENCE_SPAN_KIND
_OI_INFERENCE_KINDS: Final = ("LLM", "EMBEDDING")

GENAI_MARKER_KEYS: Final[tuple[str, ...]] = tuple(sorted(CANDIDATE_MARKERS - {*_PAYLOAD_PAIR, _OI_KIND}))
"""Keys whose mere presence routes a span to spanmeter (sorted, so output is stable)."""

LEGACY_PROVIDER_VALUES: Final[tuple[str, ...]] = (
    # The gen_ai.system enum (semconv <= 1.36) plus OpenLIT's spelling; values outside this
    # set (Vercel's "openai.chat", self-hosted names) are not copied to gen_ai.provider.name.
    "anthropic",
    "aws.bedrock",
    "az.ai.inference",
    "az.ai.openai",
    "azure.ai.inference",
    "azure.ai.openai",
    "cohere",
    "deepseek",
    "gcp.gemini",
    "gcp.gen_ai",
    "gcp.vertex_ai",
    "gemini",
    "groq",
    "ibm.watson.ai",
    "ibm.watsonx.ai",
    "mistral_ai",
    "openai",
    "perplexity",
    "vertex_ai",
    "x_ai",
    "xai",
)
"""``gen_ai.system`` values copied to ``gen_ai.provider.name`` (renamed ones translated)."""


def _attr(key: str) -> str:
    """``attributes["key"]`` with the key quoted as an OTTL (JSON-compatible) string."""
    return f"attributes[{json.dumps(key)}]"


def _absent(key: str) -> str:
    return f"{_attr(key)} == nil"


def _present(key: str) -> str:
    return f"{_attr(key)} != nil"


def genai_clauses() -> tuple[str, ...]:
    """The clauses whose disjunction selects GenAI spans, one per line of the condition."""
    model, provider = _PAYLOAD_PAIR
    return (
        *(_present(key) for key in GENAI_MARKER_KEYS),
        f"({_present(model)} and {_present(provider)})",
        *(f'{_attr(_OI_KIND)} == "{kind}"' for kind in _OI_INFERENCE_KINDS),
    )


def _negated_clauses() -> tuple[str, ...]:
    """De Morgan of :func:`genai_clauses`, clause by clause in the same order."""
    model, provider = _PAYLOAD_PAIR
    return (
        *(_absent(key) for key in GENAI_MARKER_KEYS),
        f"({_absent(model)} or {_absent(provider)})",
        *(f'{_attr(_OI_KIND)} != "{kind}"' for kind in _OI_INFERENCE_KINDS),
    )


def genai_condition() -> str:
    """OTTL condition (span context) true for every span spanmeter may count."""
    return "\nor ".join(genai_clauses())


def non_genai_condition() -> str:
    """OTTL condition (span context) true for every other span: the filter's DROP rule."""
    return "\nand ".join(_negated_clauses())


# --- normalising statements ---------------------------------------------------------------

_AGGREGATE_GUARD: Final = (
    # Spans whose usage is the sum of their children's (see _classify.is_billable): copying
    # usage onto them would make backends that sum gen_ai.usage.* count each call twice.
    *(
        f'{_attr("gen_ai.operation.name")} != "{op}"'
        for op in ("invoke_agent", "create_agent", "invoke_workflow")
    ),
    *(f'{_attr(Key.TRACELOOP_SPAN_KIND)} != "{kind}"' for kind in ("workflow", "agent", "task")),
    *(f'{_attr(Key.LANGFUSE_OBSERVATION_TYPE)} != "{kind}"' for kind in ("agent", "chain")),
    _absent(Key.VERCEL_OPERATION_ID),
)
_OI_INFERENCE_GUARD: Final = (f'({_attr(_OI_KIND)} == "LLM" or {_attr(_OI_KIND)} == "EMBEDDING")',)
_NO_CACHE_GUARD: Final = tuple(
    _absent(k) for k in (*SLOT_KEYS[Slot.CACHE_READ], *SLOT_KEYS[Slot.CACHE_WRITE])
)
_NO_REASONING_GUARD: Final = tuple(_absent(k) for k in SLOT_KEYS[Slot.REASONING])

# slot -> {alias copied to the slot's canonical key: extra conditions}. Aliases of the slot
# that are not listed are never copied; while one of them is present nothing lower-ranked is
# copied either, since the receiver would read that alias first.
_COPIES: Final[tuple[tuple[int, dict[str, tuple[str, ...]]], ...]] = (
    (
        Slot.REQUEST_MODEL,
        {
            "llm.request.model_name": (),
            "llm.model_name": (),
            "embedding.model_name": (),
            "ai.model.id": (),
            "langfuse.observation.model.name": (),
        },
    ),
    (Slot.RESPONSE_MODEL, {"llm.response.model_name": (), "ai.response.model": ()}),
    (
        Slot.INPUT,
        {
            "gen_ai.usage.prompt_tokens": (*_AGGREGATE_GUARD, *_NO_CACHE_GUARD),
            "llm.token_count.prompt": (*_OI_INFERENCE_GUARD, *_NO_CACHE_GUARD),
        },
    ),
    (
        Slot.OUTPUT,
        {
            "gen_ai.usage.completion_tokens": (*_AGGREGATE_GUARD, *_NO_REASONING_GUARD),
            "llm.token_count.completion": (*_OI_INFERENCE_GUARD, *_NO_REASONING_GUARD),
        },
    ),
    (
        Slot.CACHE_READ,
        {
            "gen_ai.usage.cache_read_input_tokens": _AGGREGATE_GUARD,
            "llm.token_count.prompt_details.cache_read": _OI_INFERENCE_GUARD,
            "llm.token_count.prompt_details.cache_input": _OI_INFERENCE_GUARD,
        },
    ),
    (
        Slot.CACHE_WRITE,
        {
            "gen_ai.usage.cache_write.input_tokens": _AGGREGATE_GUARD,
            "gen_ai.usage.cache_creation_input_tokens": _AGGREGATE_GUARD,
            "llm.token_count.prompt_details.cache_write": _OI_INFERENCE_GUARD,
        },
    ),
    (
        Slot.REASONING,
        {
            "gen_ai.usage.reasoning_tokens": _AGGREGATE_GUARD,
            "llm.usage.reasoning_tokens": _AGGREGATE_GUARD,
            "llm.token_count.completion_details.reasoning": _OI_INFERENCE_GUARD,
        },
    ),
    (
        Slot.PROMPT_NAME,
        {"langfuse.observation.prompt.name": (), "traceloop.prompt.key": ()},
    ),
    (
        Slot.PROMPT_VERSION,
        {
            "traceloop.prompt.version": (),
            "llm.prompt_template.version": (),
            "langfuse.observation.prompt.version": (),
        },
    ),
    (
        Slot.SESSION,
        {
            "session.id": (),
            "langfuse.session.id": (),
            "traceloop.association.properties.session_id": (),
            "ai.telemetry.metadata.sessionId": (),
        },
    ),
)

_TRACELOOP_OPERATIONS: Final = (
    ("chat", "chat"),
    ("completion", "text_completion"),
    ("embedding", "embeddings"),
)
"""Traceloop's legacy ``llm.request.type`` values and their ``gen_ai.operation.name``."""


def _where(conditions: Iterable[str]) -> str:
    """`` where a\nand b``: one condition per line (OTTL reads line breaks as spaces)."""
    return "\nwhere " + "\nand ".join(conditions)


def _slot_statements(slot: int, copies: dict[str, tuple[str, ...]]) -> list[str]:
    keys = SLOT_KEYS[slot]
    target, aliases = keys[0], keys[1:]
    unknown = set(copies) - set(aliases)
    if unknown:  # a renamed alias must be fixed here, not silently dropped
        raise ValueError(f"not aliases of {target!r} in the normaliser's table: {sorted(unknown)!r}")
    statements: list[str] = []
    preferred: list[str] = []  # higher-ranked aliases that are not copied
    for key in aliases:
        if key not in copies:
            preferred.append(key)
            continue
        conditions = [_absent(target), *(_absent(k) for k in preferred), _present(key), *copies[key]]
        statements.append(f"set({_attr(target)}, {_attr(key)}){_where(conditions)}")
    return statements


def _provider_statements() -> list[str]:
    target, system = SLOT_KEYS[Slot.PROVIDER][:2]
    return [
        f'set({_attr(target)}, "{canonical_provider(value)}")'
        f"{_where((_absent(target), f'{_attr(system)} == {json.dumps(value)}'))}"
        for value in LEGACY_PROVIDER_VALUES
    ]


def _operation_statements() -> list[str]:
    target, legacy = SLOT_KEYS[Slot.OPERATION][:2]
    return [
        f'set({_attr(target)}, "{name}"){_where((_absent(target), f"{_attr(legacy)} == {json.dumps(value)}"))}'
        for value, name in _TRACELOOP_OPERATIONS
    ]


def normalizing_statements() -> Sequence[str]:
    """OTTL ``set`` statements (span context) copying unambiguous vendor names to OTel's."""
    statements = _provider_statements() + _operation_statements()
    for slot, copies in _COPIES:
        statements += _slot_statements(slot, copies)
    return tuple(statements)
