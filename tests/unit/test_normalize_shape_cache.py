"""The normaliser's per-shape memo of key ranks: same answers as the full pass, every time."""

from __future__ import annotations

import random

from spanmeter.normalise import normalize
from spanmeter.normalise import normalizer as normalizer_module

BASE: dict[str, object] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 80,
    "spanmeter.endpoint_tag": "search",
    "spanmeter.tenant_id": "t1",
    "user.id": "u1",
    "server.address": "api.example.com",  # not a key the normaliser knows
}
VARIANTS: list[dict[str, object]] = [
    {},
    {"gen_ai.usage.output_tokens": None},  # None means absent
    {"llm.token_count.prompt": 5, "openinference.span.kind": "LLM"},
    {"gen_ai.request.model": ["not", "hashable"]},  # an unhashable value
    {"gen_ai.usage.input_tokens": -3},
    {"gen_ai.system": "anthropic", "gen_ai.usage.cache_read.input_tokens": 400},
]


def run(attributes: dict[str, object]) -> object:
    return normalize(attributes, {"deployment.environment.name": "prod"}, start_time_ns=1, end_time_ns=2)


def test_remembered_shapes_give_the_full_pass_answers() -> None:
    rng = random.Random(5)
    cases = []
    for variant in VARIANTS:
        attributes = {**BASE, **variant}
        keys = list(attributes)
        for _ in range(3):
            rng.shuffle(keys)  # same keys in another order: another shape
            cases.append({key: attributes[key] for key in keys})
    normalizer_module._shapes.clear()
    first = [run(case) for case in cases]  # every shape seen for the first time: full pass
    assert normalizer_module._shapes  # shapes were remembered
    again = [run(dict(case)) for case in cases]  # now from the memo
    assert again == first
    for case, expected in zip(cases, first, strict=True):
        found, ranks, families = normalizer_module._full_scan(case)
        assert normalizer_module._scan(case) == (found, ranks, families)
        assert run(case) == expected


def test_the_memo_is_bounded() -> None:
    normalizer_module._shapes.clear()
    for i in range(normalizer_module._SHAPE_LIMIT + 10):
        run({**BASE, f"custom.key.{i}": i})  # a client inventing key sets
    assert len(normalizer_module._shapes) <= normalizer_module._SHAPE_LIMIT
