"""The synthetic dataset generator: deterministic, priced with the real price book, incidents
touch exactly what they say, and rows survive the trip through span attributes."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest

from spanmeter.normalise import normalize
from spanmeter.pricing import PriceBook
from spanmeter.store import SpanRow
from spanmeter.synthetic import (
    ContextGrowth,
    DataFaults,
    ModelFallback,
    PromptDeploy,
    RetryStorm,
    SyntheticConfig,
    TenantBurst,
    UnknownModel,
    VolumeSurge,
    generate,
    span_attributes,
    to_ns,
)

START = datetime(2026, 3, 3, tzinfo=timezone.utc)
NOON = datetime(2026, 3, 3, 12, tzinfo=timezone.utc)
END = datetime(2026, 3, 4, tzinfo=timezone.utc)


def small(**changes: object) -> SyntheticConfig:
    return SyntheticConfig(start=START, days=1, requests_per_hour=40, **changes)  # type: ignore[arg-type]


def test_same_config_same_rows() -> None:
    assert generate(small()).rows == generate(small()).rows
    assert generate(small(seed=8)).rows != generate(small()).rows


def test_rows_are_priced_with_the_real_price_book() -> None:
    book = PriceBook()
    rows = generate(small()).rows
    statuses = Counter(row.pricing_status for row in rows)
    assert statuses["priced"] > 0.95 * len(rows)
    for row in rows[:200]:
        expected = book.price(
            row.provider,
            row.model,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cache_read_tokens=row.cache_read_tokens or 0,
            at=datetime.fromtimestamp((row.end_time_ns or 0) // 10**9, tz=timezone.utc),
        )
        assert row.cost_nano_usd == expected.total_nano_usd
        assert row.pricing_status == expected.status.value


def test_retries_share_external_ids_and_stay_in_order() -> None:
    rows = generate(small(retry_share=0.2)).rows
    attempts = Counter(row.external_request_id for row in rows if row.external_request_id)
    retried = [key for key, count in attempts.items() if count > 1]
    assert retried
    for key in retried[:20]:
        mine = [row for row in rows if row.external_request_id == key]
        assert [row.outcome for row in mine][-1] == "success"
        assert all(row.outcome == "error" for row in mine[:-1])
        assert [row.start_time_ns for row in mine] == sorted(row.start_time_ns for row in mine)
        assert len({row.trace_id for row in mine}) == 1


def test_prompt_deploy_changes_only_the_endpoint_after_the_deploy() -> None:
    plain = generate(small()).rows
    deployed = generate(small(incidents=(PromptDeploy("support.reply", "support_v6", at=NOON),))).rows
    assert len(plain) == len(deployed)
    cut = to_ns(NOON)
    for before, after in zip(plain, deployed, strict=True):
        if after.prompt_version == "support_v6":
            assert after.endpoint_tag == "support.reply" and after.start_time_ns >= cut
            if before.input_tokens is not None:
                assert after.input_tokens == before.input_tokens * 2
        else:
            assert before == after


def test_each_incident_leaves_its_mark() -> None:
    incidents = (
        TenantBurst("t_0009", NOON, END, requests_per_hour=100, user="uh_" + "a" * 24),
        RetryStorm(NOON, END, endpoint="docs.summarize", extra_attempts=3),
        ModelFallback("checkout.ai_summary", NOON, END, response_model="gpt-4o"),
        UnknownModel("acme-llm-2", NOON, END, endpoint="search.rerank"),
    )
    rows = generate(small(incidents=incidents)).rows
    late = [row for row in rows if row.start_time_ns >= to_ns(NOON)]
    burst = [row for row in late if row.user_id == "uh_" + "a" * 24]
    assert len(burst) >= 12 * 100 * 0.95 and all(row.tenant_id == "t_0009" for row in burst)
    storm = Counter(row.external_request_id for row in late if row.endpoint_tag == "docs.summarize")
    assert max(storm.values()) >= 4
    fallback = [row for row in late if row.endpoint_tag == "checkout.ai_summary" and row.input_tokens]
    assert fallback and all(r.request_model == "gpt-4o-mini" and r.model == "gpt-4o" for r in fallback)
    unknown = [row for row in late if row.model == "acme-llm-2"]
    assert unknown and all(r.cost_nano_usd is None for r in unknown)
    assert {r.pricing_status for r in unknown if r.input_tokens} == {"unknown_model"}
    assert all(r.model != "acme-llm-2" for r in rows if r.start_time_ns < to_ns(NOON))


def test_volume_surge_adds_plain_requests_from_everyone() -> None:
    plain = generate(small()).rows
    surged = generate(small(incidents=(VolumeSurge("support.reply", NOON, END, requests_per_hour=60),))).rows
    extra = len(surged) - len(plain)
    assert extra == 12 * 60  # one attempt each
    assert Counter(r.endpoint_tag for r in surged if r.start_time_ns < to_ns(NOON)) == Counter(
        r.endpoint_tag for r in plain if r.start_time_ns < to_ns(NOON)
    )
    late = Counter(r.endpoint_tag for r in surged if r.start_time_ns >= to_ns(NOON))
    late_plain = Counter(r.endpoint_tag for r in plain if r.start_time_ns >= to_ns(NOON))
    assert late - late_plain == Counter({"support.reply": extra})

    # same prompt version, tokens and no retries: only more requests, from many tenants
    # (ids and retry gaps come from a shared stream, so tell the added requests by content)
    def key(r: SpanRow) -> tuple[object, ...]:
        return (r.tenant_id, r.user_id, r.input_tokens, r.output_tokens, r.endpoint_tag, r.outcome)

    new_keys = Counter(key(r) for r in surged) - Counter(key(r) for r in plain)
    added = [r for r in surged if key(r) in new_keys]
    assert len(added) == extra == new_keys.total() and {r.endpoint_tag for r in added} == {"support.reply"}
    assert {r.prompt_version for r in surged if r.endpoint_tag == "support.reply"} == {"support_v5"}
    assert len({r.tenant_id for r in added}) >= 15 and len({r.user_id for r in added}) >= 40
    ids = Counter(r.external_request_id for r in surged if r.external_request_id)
    assert all(ids[r.external_request_id] == 1 for r in added if r.external_request_id)
    assert all(r.outcome == "success" for r in added)
    median = sorted(r.input_tokens or 0 for r in added)[len(added) // 2]
    assert 0.8 * 2400 < median < 1.2 * 2400


def test_context_growth_ramps_input_without_a_new_version() -> None:
    plain = generate(small()).rows
    grown = generate(small(incidents=(ContextGrowth("docs.summarize", NOON, END, input_factor=3.0),))).rows
    assert len(plain) == len(grown)
    factors: list[tuple[int, float]] = []
    for before, after in zip(plain, grown, strict=True):
        if after.endpoint_tag != "docs.summarize" or after.start_time_ns < to_ns(NOON):
            assert before == after
            continue
        assert after.prompt_version == before.prompt_version == "docs_v2"
        assert after.output_tokens == before.output_tokens
        if before.input_tokens:
            assert after.input_tokens is not None
            factors.append((after.start_time_ns, after.input_tokens / before.input_tokens))
    factors.sort()
    assert factors and all(1.0 <= f <= 3.0 + 1e-3 for _, f in factors)
    assert factors[0][1] < 1.3 and factors[-1][1] > 2.7  # ramps from 1x at NOON towards 3x at END
    assert ContextGrowth("x", NOON, END, 3.0).factors(to_ns(END) + 1) == (3.0, 1.0)


def test_data_faults() -> None:
    faults = DataFaults(
        untagged_share=0.1,
        unversioned_share=0.1,
        no_usage_share=0.1,
        pii_user_share=0.1,
        test_traffic_share=0.1,
        clock_skew_share=0.1,
        clock_skew_s=600,
    )
    rows = generate(small(faults=faults)).rows
    share = lambda predicate: sum(map(predicate, rows)) / len(rows)  # noqa: E731
    assert 0.05 < share(lambda r: r.endpoint_tag is None) < 0.15
    assert 0.05 < share(lambda r: r.prompt_version is None) < 0.15
    assert 0.05 < share(lambda r: "@" in (r.user_id or "") or (r.user_id or "").startswith("+")) < 0.15
    assert 0.05 < share(lambda r: r.environment == "staging") < 0.15
    assert 0.05 < share(lambda r: r.start_time_ns > r.received_at_ns) < 0.15


@pytest.mark.parametrize("index", range(0, 400, 37))
def test_span_attributes_normalise_back_to_the_row(index: int) -> None:
    row = generate(small(incidents=(ModelFallback("checkout.ai_summary", START, END, "gpt-4o"),))).rows[index]
    record = normalize(span_attributes(row))
    assert record is not None
    for name in (
        "provider",
        "request_model",
        "response_model",
        "input_tokens",
        "output_tokens",
        "endpoint_tag",
        "prompt_version",
        "tenant_id",
        "user_id",
        "external_request_id",
        "data_mode",
        "environment",
    ):
        assert getattr(record, name) == getattr(row, name), name
    assert (record.cache_read_tokens or 0) == (row.cache_read_tokens or 0)
