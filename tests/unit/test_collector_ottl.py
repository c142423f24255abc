"""What the shipped OTTL does to spans: GenAI spans of every instrumentation reach spanmeter,
other spans do not, and the normalising statements never change what spanmeter records.

The conditions and statements are read from the generated configurations themselves and
evaluated by a small evaluator of the exact OTTL subset they use (tests/support/ottl.py,
which says why no Collector runs here). The spans are the normaliser's own recorded
fixtures, one per instrumentation, plus seeded random spans over every key the normaliser
reads, so a key added to the alias tables is covered without touching this file.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
import yaml

from spanmeter.collector_config import generate
from spanmeter.normalise import normalize
from spanmeter.semantic_conventions import NORMALIZER_KEYS
from support.normalize_cases import ALL_CASES, DOUBLE_COUNTING_CASES, INSTRUMENTATION_CASES, Case
from support.ottl import OTTLError, apply_statement, evaluate


def _config(kind: str) -> dict[str, Any]:
    return yaml.safe_load(generate(kind))  # type: ignore[arg-type]


FANOUT = _config("fanout")
NORMALIZE = _config("normalize")
(DROP_CONDITION,) = FANOUT["processors"]["filter/genai_only"]["traces"]["span"]
ROUTE_CONDITION = NORMALIZE["connectors"]["routing/genai"]["table"][0]["condition"]
(TRANSFORM_GROUP,) = NORMALIZE["processors"]["transform/genai_names"]["trace_statements"]


def reaches_spanmeter_fanout(attributes: dict[str, Any]) -> bool:
    return not evaluate(DROP_CONDITION, attributes)


def reaches_spanmeter_normalize(attributes: dict[str, Any]) -> bool:
    return evaluate(ROUTE_CONDITION, attributes)


def transformed(attributes: dict[str, Any]) -> dict[str, Any]:
    """What the transform processor hands on: statements run only if a condition holds."""
    result = dict(attributes)
    if any(evaluate(c, result) for c in TRANSFORM_GROUP["conditions"]):
        for statement in TRANSFORM_GROUP["statements"]:
            apply_statement(statement, result)
    return result


def record(case: Case, attributes: dict[str, Any]) -> Any:
    return normalize(
        attributes,
        case.resource,
        span_name=case.span_name,
        start_time_ns=1,
        end_time_ns=2,
        status_code=case.status_code,
        scope_name=case.scope_name,
    )


NON_GENAI_SPANS = {
    "http server": {"http.request.method": "GET", "url.path": "/health", "http.response.status_code": 200},
    "db": {"db.system": "postgresql", "db.statement": "SELECT 1", "server.port": 5432},
    "ORM with a 'model' attribute": {"model": "User", "db.system": "postgresql"},
    "messaging": {"messaging.system": "kafka", "messaging.destination.name": "orders"},
    "OpenInference CHAIN": {"openinference.span.kind": "CHAIN", "input.value": "x"},
    "OpenInference TOOL": {"openinference.span.kind": "TOOL", "tool.name": "search"},
    "spanmeter attribution only": {"spanmeter.tenant_id": "t_1", "user.id": "u", "session.id": "s"},
    "empty": {},
}


# --- the evaluator does what OTTL does -----------------------------------------------------


def test_the_evaluator_follows_ottl_precedence_and_nil_rules() -> None:
    span = {"a": 1, "k": "LLM"}
    assert evaluate('attributes["a"] != nil', span)
    assert evaluate('attributes["b"] == nil', span)
    assert not evaluate('attributes["b"] == "LLM"', span)  # nil equals no string
    assert evaluate('attributes["b"] != "LLM"', span)
    # and binds tighter than or
    assert evaluate('attributes["a"] != nil or attributes["b"] != nil and attributes["c"] != nil', span)
    assert not evaluate('(attributes["a"] != nil or attributes["b"] != nil) and attributes["c"] != nil', span)
    target: dict[str, Any] = {"s": 5}
    apply_statement('set(attributes["t"], attributes["missing"])', target)
    assert "t" not in target  # set() with a nil value does nothing
    apply_statement('set(attributes["t"], attributes["s"])\nwhere attributes["t"] == nil', target)
    assert target["t"] == 5
    with pytest.raises(OTTLError):
        evaluate('IsMatch(name, "x")', span)


# --- routing: every GenAI span in, other spans out --------------------------------------------


@pytest.mark.parametrize("case", ALL_CASES.values(), ids=ALL_CASES.keys())
def test_genai_spans_of_every_instrumentation_reach_spanmeter(case: Case) -> None:
    assert record(case, case.attributes) is not None  # the fixture is a GenAI span
    assert reaches_spanmeter_fanout(case.attributes)
    assert reaches_spanmeter_normalize(case.attributes)


@pytest.mark.parametrize("attributes", NON_GENAI_SPANS.values(), ids=NON_GENAI_SPANS.keys())
def test_other_spans_stay_with_the_backend_only(attributes: dict[str, Any]) -> None:
    assert normalize(attributes) is None
    assert not reaches_spanmeter_fanout(attributes)
    assert not reaches_spanmeter_normalize(attributes)


def test_a_vercel_tool_call_is_sent_although_spanmeter_ignores_it() -> None:
    """The one known over-selection: ``ai.operationId`` alone routes a span, because a bare
    ``ai.generateText`` span is GenAI for the normaliser. spanmeter drops the tool call."""
    span = {"ai.operationId": "ai.toolCall", "ai.toolCall.name": "weather"}
    assert normalize(span) is None
    assert reaches_spanmeter_fanout(span)


_VALUES: tuple[Any, ...] = (0, 1, 512, 6000, -3, "", "LLM", "EMBEDDING", "CHAIN", "chat", "openai", "x_ai")
_VALUES += ("gpt-4o-mini", "ai.generateText", "ai.generateText.doGenerate", "invoke_agent", "workflow", 2.5)
_KEYS = sorted(NORMALIZER_KEYS | {"http.request.method", "db.system", "session.id"})


def _random_spans(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{key: rng.choice(_VALUES) for key in rng.sample(_KEYS, rng.randint(1, 6))} for _ in range(count)]


def test_no_span_the_normaliser_accepts_is_dropped() -> None:
    """Seeded random spans over every key the normaliser reads: the filter is a superset."""
    accepted = 0
    for span in _random_spans(3000, seed=20260917):
        genai = normalize(span) is not None
        accepted += genai
        routed = reaches_spanmeter_fanout(span)
        assert routed == reaches_spanmeter_normalize(span), span  # the two are exact negations
        if genai:
            assert routed, span
    assert accepted > 1000  # the sample really exercised GenAI spans


# --- normalising: same record in spanmeter, and no new double counting ------------------------


@pytest.mark.parametrize("case", ALL_CASES.values(), ids=ALL_CASES.keys())
def test_normalising_never_changes_what_spanmeter_records(case: Case) -> None:
    assert record(case, transformed(case.attributes)) == record(case, case.attributes)


def _without_notes(record: Any) -> Any:
    return None if record is None else replace(record, issues=[])


def test_normalising_random_spans_never_changes_what_spanmeter_records() -> None:
    """Random values include unusable ones (text token counts, empty strings): copied, they
    add one more data-quality note to the record, but never a different value."""
    changed = 0
    for span in _random_spans(3000, seed=7):
        after = transformed(span)
        changed += after != span
        assert _without_notes(normalize(after)) == _without_notes(normalize(span)), (span, after)
    assert changed > 300  # the statements really fired


@pytest.mark.parametrize("case", DOUBLE_COUNTING_CASES.values(), ids=DOUBLE_COUNTING_CASES.keys())
def test_no_usage_is_added_to_spans_that_repeat_their_childrens(case: Case) -> None:
    before = {k for k in case.attributes if k.startswith("gen_ai.usage.")}
    after = {k for k in transformed(case.attributes) if k.startswith("gen_ai.usage.")}
    assert after == before


def test_non_genai_spans_are_left_alone() -> None:
    for attributes in NON_GENAI_SPANS.values():
        assert transformed(attributes) == attributes


@pytest.mark.parametrize(
    ("case", "added"),
    [
        (
            # totals stay: the span reports a cache read and a reasoning count
            "openinference openai",
            {
                "gen_ai.request.model",
                "gen_ai.conversation.id",
                "gen_ai.prompt.version",
                "gen_ai.usage.cache_read.input_tokens",
                "gen_ai.usage.reasoning.output_tokens",
            },
        ),
        (
            # "OpenAI" is not an enum value as written, so gen_ai.system is not copied
            "traceloop legacy names",
            {"gen_ai.operation.name", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"},
        ),
    ],
)
def test_vendor_names_gain_their_otel_names(case: str, added: set[str]) -> None:
    attributes = INSTRUMENTATION_CASES[case].attributes
    result = transformed(attributes)
    assert set(result) - set(attributes) == added


def test_renamed_provider_values_are_translated() -> None:
    assert transformed({"gen_ai.system": "xai"})["gen_ai.provider.name"] == "x_ai"
    assert transformed({"gen_ai.system": "az.ai.openai"})["gen_ai.provider.name"] == "azure.ai.openai"
    assert "gen_ai.provider.name" not in transformed({"gen_ai.system": "openai.chat"})  # Vercel's id
    kept = transformed({"gen_ai.system": "xai", "gen_ai.provider.name": "openai"})
    assert kept["gen_ai.provider.name"] == "openai"  # never overwritten


def test_token_totals_with_a_cache_breakdown_are_left_to_spanmeter() -> None:
    """OpenInference Anthropic reports prompt tokens and cache reads: which of them the
    prompt count includes is the emitter's business, so no gen_ai input total is invented."""
    attributes = INSTRUMENTATION_CASES["openinference anthropic"].attributes
    assert "gen_ai.usage.input_tokens" not in transformed(attributes)
    assert "gen_ai.usage.cache_read.input_tokens" in transformed(attributes)
