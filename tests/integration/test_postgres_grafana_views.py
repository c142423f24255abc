"""The PostgreSQL store's Grafana views (``spend_minute``, ``spend_hour``, ``spend_day``) and
the dashboards that read them, against a real PostgreSQL server.

The views' answers are compared with ``store.top`` (what ``spanmeter top`` prints) for the
same window and dimension, with the dashboards' own SQL expanded as Grafana expands it
(:mod:`support.grafana_sql`): a Grafana range ``[from, to]`` is inclusive, so a window of
whole buckets ``[lo, hi)`` is the range ``[lo, hi - 1 ms]``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from spanmeter.cli import main
from spanmeter.store import SpanStore, TopDimension, open_store
from spanmeter.store.postgres.grafana_views import VIEWS
from spanmeter.store.postgres.sql_text import sql
from spanmeter.store.rows import SpanRow
from support.grafana_sql import ALL, expand
from support.rows import span_row
from support.store_rows import DAY_NS, NS, T0, random_rows

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "deploy" / "grafana" / "dashboards"
HOUR_NS = 3600 * NS
MINUTE_NS = 60 * NS
NANO = Decimal(1_000_000_000)


def dashboard(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS / f"postgres-{name}.json").read_text())


def panel(name: str, title: str) -> dict[str, Any]:
    (found,) = [p for p in dashboard(name)["panels"] if p["title"] == title]
    return found


def instant(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / NS, dt.timezone.utc)


def run(
    url: str,
    raw_sql: str,
    lo_ns: int,
    hi_ns: int,
    *,
    interval: str = "1m",
    templating: Sequence[Mapping[str, Any]] = (),
    values: Mapping[str, str | Sequence[str]] | None = None,
) -> list[tuple[Any, ...]]:
    """``raw_sql`` as Grafana sends it for the whole buckets of ``[lo_ns, hi_ns)``."""
    text = expand(
        raw_sql,
        start=instant(lo_ns),
        end=instant(hi_ns - 1_000_000),
        interval=interval,
        templating=templating,
        values=values,
    )
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(text.encode()).fetchall()


def with_repeats(rows: list[SpanRow]) -> list[SpanRow]:
    """``rows``, then a copy of every third one with fresh ids (a retry when it carries an
    external request id): written in later batches, the copies add partial rollup rows to
    groups that already have one."""
    copies: list[SpanRow] = []
    for row in rows[::3]:
        fresh = span_row(0)
        copies.append(dataclasses.replace(row, trace_id=fresh.trace_id, span_id=fresh.span_id))
    return [*rows, *copies]


@pytest.fixture(scope="module")
def written(postgres_server: Any) -> Iterator[tuple[str, SpanStore]]:
    """A store holding random rows, written in small batches so that rollup groups are spread
    over several partial rows."""
    url = str(postgres_server.new_database())
    store = open_store(url)
    rows = with_repeats(random_rows(random.Random(20260101), 1500, span_ns=2 * DAY_NS))
    for position in range(0, len(rows), 25):
        store.write_batch(rows[position : position + 25])
    try:
        yield url, store
    finally:
        store.close()


def view_sums(
    url: str,
    view: str,
    column: str,
    lo_ns: int,
    hi_ns: int,
    environment: str | Sequence[str],
    data_mode: str,
) -> dict[str | None, tuple[Decimal, int, int, int]]:
    """Per value of ``column``: (cost_usd, cost_nano_usd, attempts, logical_requests), read with
    the dashboards' filter and variables."""
    templating = dashboard("spend")["templating"]["list"]
    raw_sql = (
        f"SELECT {column}, sum(cost_usd), sum(cost_nano_usd), sum(attempts), sum(logical_requests)"
        f" FROM {view} WHERE $__timeFilter(time) AND environment IN ($environment)"
        f" AND data_mode = '$data_mode' GROUP BY {column}"
    )
    rows = run(
        url,
        raw_sql,
        lo_ns,
        hi_ns,
        templating=templating,
        values={"environment": environment, "data_mode": data_mode},
    )
    return {
        (key or None): (usd, int(nano), int(attempts), int(logical))
        for key, usd, nano, attempts, logical in rows
    }


def top_sums(
    store: SpanStore,
    by: TopDimension,
    lo_ns: int,
    hi_ns: int,
    environments: Sequence[str | None],
    data_mode: str,
) -> dict[str | None, tuple[Decimal, int, int, int]]:
    """The same figures from ``store.top`` (one call per environment, added up)."""
    sums: dict[str | None, list[int]] = {}
    for environment in environments:
        result = store.top(by, lo_ns, hi_ns, environment=environment, data_mode=data_mode, limit=10_000)
        assert result.group_count == len(result.groups)
        for group in result.groups:
            figures = sums.setdefault(group.key, [0, 0, 0])
            figures[0] += group.cost_nano_usd
            figures[1] += group.attempts
            figures[2] += group.logical_requests
    return {
        key: (Decimal(nano) / NANO, nano, attempts, logical)
        for key, (nano, attempts, logical) in sums.items()
    }


WINDOWS = {
    "first day": (T0, T0 + DAY_NS),
    "both days": (T0, T0 + 2 * DAY_NS),
    "hours across midnight": (T0 + 19 * HOUR_NS, T0 + 29 * HOUR_NS),
}
SELECTIONS = {
    "all real": (ALL, [None], "real"),
    "prod real": (["prod"], ["prod"], "real"),
    "unset and staging, test": (["", "staging"], ["", "staging"], "test"),
}
VIEW_OF = {
    "endpoint_tag": ("spend_minute", "spend_day"),
    "prompt_version": ("spend_minute",),
    "provider": ("spend_minute",),
    "model": ("spend_minute",),
    "tenant_id": ("spend_minute", "spend_hour", "spend_day"),
    "user_id": ("spend_hour", "spend_day"),
}


@pytest.mark.parametrize("window", WINDOWS, ids=str)
@pytest.mark.parametrize("selection", SELECTIONS, ids=str)
@pytest.mark.parametrize(
    ("by", "view"), [(by, view) for by, views in VIEW_OF.items() for view in views], ids="-".join
)
def test_views_equal_top(
    written: tuple[str, SpanStore], by: TopDimension, view: str, window: str, selection: str
) -> None:
    url, store = written
    lo, hi = WINDOWS[window]
    if view == "spend_day" and (lo % DAY_NS or hi % DAY_NS):
        lo, hi = T0, T0 + DAY_NS  # the day view answers whole days
    chosen, environments, data_mode = SELECTIONS[selection]
    expected = top_sums(store, by, lo, hi, environments, data_mode)
    got = view_sums(url, view, by, lo, hi, chosen, data_mode)
    assert expected, "the window holds rows"
    assert got == expected
    for cost_usd, nano, _, _ in got.values():
        assert isinstance(cost_usd, Decimal) and cost_usd == Decimal(nano) / NANO  # exact, not a float


def test_minute_windows_not_on_the_hour_equal_top(written: tuple[str, SpanStore]) -> None:
    url, store = written
    lo, hi = T0 + 3 * HOUR_NS + 7 * MINUTE_NS, T0 + 30 * HOUR_NS + 12 * MINUTE_NS
    for by in ("endpoint_tag", "tenant_id", "model"):
        assert view_sums(url, "spend_minute", by, lo, hi, ALL, "real") == top_sums(
            store, by, lo, hi, [None], "real"
        )


def test_each_group_appears_once_per_bucket(written: tuple[str, SpanStore]) -> None:
    url, _ = written
    with psycopg.connect(url, autocommit=True) as conn:
        partial = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM rollup_minute GROUP BY minute, endpoint_tag, prompt_version,"
            " provider, model, tenant_id, environment, data_mode, outcome HAVING count(*) > 1) t"
        ).fetchone()
        assert partial and partial[0] > 0, "the rollups hold partial rows"
        for view, keys in (
            (
                "spend_minute",
                "endpoint_tag, prompt_version, provider, model, tenant_id, environment, data_mode, outcome",
            ),
            ("spend_hour", "tenant_id, user_id, endpoint_tag, environment, data_mode"),
            ("spend_day", "tenant_id, user_id, endpoint_tag, environment, data_mode"),
        ):
            row = conn.execute(sql(f"SELECT count(*), count(DISTINCT (time, {keys})) FROM {view}")).fetchone()
            assert row and row[0] == row[1] > 0, view
            types = dict(
                conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s",
                    (view,),
                ).fetchall()
            )
            assert types["time"] == "timestamp with time zone"
            assert types["cost_usd"] == "numeric" and types["cost_nano_usd"] == "bigint"


def test_cost_usd_is_exact_for_any_nano_amount(postgres_server: Any) -> None:
    """A sum far beyond a float's 15 to 17 digits still reads back to the last nano-USD."""
    url = str(postgres_server.new_database())
    with open_store(url), psycopg.connect(url, autocommit=True) as conn:
        columns = "minute, endpoint_tag, prompt_version, provider, model, tenant_id, environment, data_mode, outcome"
        measures = "attempts, logical_requests, cost_nano_usd, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, errors, unpriced, latency_ms_sum, latency_count"
        for cost in (4_611_686_018_427_387_903, 4_611_686_018_427_387_899, 5):  # bigint's maximum in all
            conn.execute(
                sql(
                    f"INSERT INTO rollup_minute ({columns}, {measures})"
                    " VALUES (60, 'e', '', '', '', 't', '', 'real', 'success', 1, 1, %s, 0, 0, 0, 0, 0, 0, 0, 0, 0)"
                ),
                (cost,),
            )
        (usd,) = conn.execute("SELECT cost_usd FROM spend_minute").fetchone() or (Decimal(0),)
    assert usd == Decimal("9223372036.854775807")
    assert float(usd) != usd  # what a double precision column would have lost


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {
            view: conn.execute(sql(f"SELECT * FROM {view} ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9")).fetchall()
            for view in VIEWS
        }


def test_views_are_the_same_before_and_after_compaction(postgres_server: Any) -> None:
    url = str(postgres_server.new_database())
    rows = with_repeats(random_rows(random.Random(7), 600, span_ns=DAY_NS))
    with open_store(url) as store:
        for position in range(0, len(rows), 20):
            store.write_batch(rows[position : position + 20])
        before = _snapshot(url)
        rollup_rows = store.stats().rollup_rows
        while store.compact_rollups(T0 + 10 * DAY_NS, max_buckets=500):
            pass
        merged = store.stats().rollup_rows
        after = _snapshot(url)
    assert all(merged[table] < rollup_rows[table] for table in rollup_rows), (rollup_rows, merged)
    assert all(before[view] for view in VIEWS)
    assert after == before


# -- the dashboards' own queries ------------------------------------------------------------------


def _usd(nano: int) -> Decimal:
    return Decimal(nano) / NANO


def _shown(key: str | None) -> str:
    return key if key else "(not set)"


@pytest.mark.parametrize(
    ("name", "title", "by", "limit"),
    [
        ("spend", "Endpoint ranking", "endpoint_tag", 50),
        ("spend", "Tenant ranking (top 50)", "tenant_id", 50),
        ("tenants", "Tenant ranking (top 100)", "tenant_id", 100),
        ("tenants", "User ranking (top 100, hashed ids)", "user_id", 100),
    ],
)
@pytest.mark.parametrize("window", ["first day", "hours across midnight"])
def test_ranking_tables_equal_top(
    written: tuple[str, SpanStore], name: str, title: str, by: TopDimension, limit: int, window: str
) -> None:
    url, store = written
    lo, hi = WINDOWS[window]
    target = panel(name, title)["targets"][0]
    rows = run(url, target["rawSql"], lo, hi, templating=dashboard(name)["templating"]["list"])
    result = store.top(by, lo, hi, limit=limit)
    assert result.groups
    expected = [
        (
            _shown(g.key),
            _usd(g.cost_nano_usd),
            g.logical_requests,
            g.attempts,
            g.input_tokens,
            g.output_tokens,
            g.unpriced,
        )
        for g in result.groups
    ]
    assert [(r[0], r[1], int(r[2]), int(r[3]), int(r[5]), int(r[6]), int(r[7])) for r in rows] == expected
    for row, group in zip(rows, result.groups, strict=True):
        assert float(row[8]) == pytest.approx(group.share)
        if group.logical_requests:
            assert row[4] == pytest.approx(_usd(group.cost_nano_usd) / group.logical_requests)


def test_users_of_each_tenant_equal_top_with_a_tenant_filter(written: tuple[str, SpanStore]) -> None:
    url, store = written
    lo, hi = WINDOWS["both days"]
    target = panel("tenants", "Users of each tenant (top 200)")["targets"][0]
    rows = run(url, target["rawSql"], lo, hi, templating=dashboard("tenants")["templating"]["list"])
    got = {(r[0], r[1]): (r[2], int(r[3]), int(r[4])) for r in rows}
    expected: dict[tuple[str, str], tuple[Decimal, int, int]] = {}
    for tenant in ("t1", "t2", "t3", "t4", ""):
        for g in store.top("user_id", lo, hi, where={"tenant_id": tenant}, limit=1000).groups:
            expected[(_shown(tenant), _shown(g.key))] = (
                _usd(g.cost_nano_usd),
                g.logical_requests,
                g.attempts,
            )
    assert got == expected


def test_tenant_ranking_equals_spanmeter_top(written: tuple[str, SpanStore]) -> None:
    """The CLI, on the same store and window, prints what the dashboard's table shows."""
    url, _ = written
    lo, hi = WINDOWS["first day"]
    result = CliRunner().invoke(
        main,
        [
            "top", "--store", url, "--by", "tenant_id", "--format", "json", "--limit", "100",
            "--from", instant(lo).strftime("%Y-%m-%dT%H:%M"), "--to", instant(hi).strftime("%Y-%m-%dT%H:%M"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    target = panel("tenants", "Tenant ranking (top 100)")["targets"][0]
    rows = run(url, target["rawSql"], lo, hi, templating=dashboard("tenants")["templating"]["list"])
    assert [(r[0], r[1], int(r[2]), int(r[3])) for r in rows] == [
        (_shown(g["tenant_id"]), Decimal(g["cost_usd"]), g["logical_requests"], g["attempts"])
        for g in document["groups"]
    ]


@pytest.mark.parametrize(
    ("name", "title", "by", "interval", "bucket_ns"),
    [
        ("spend", "Spend by endpoint tag (USD per interval)", "endpoint_tag", "1h", HOUR_NS),
        ("spend", "Spend by model (USD per interval)", "model", "1h", HOUR_NS),
        ("spend", "Spend by tenant (USD per interval, top 10 + other)", "tenant_id", "1h", HOUR_NS),
        ("tenants", "Spend by tenant (USD per interval, top 10 + other)", "tenant_id", "1h", HOUR_NS),
        ("tenants", "Spend by user (USD per interval, top 10 + other)", "user_id", "1h", HOUR_NS),
        ("tenants", "Daily spend by tenant (USD per UTC day)", "tenant_id", "1d", DAY_NS),
    ],
)
def test_time_series_equal_top_per_bucket(
    written: tuple[str, SpanStore], name: str, title: str, by: TopDimension, interval: str, bucket_ns: int
) -> None:
    url, store = written
    lo, hi = (T0 + 20 * HOUR_NS, T0 + 26 * HOUR_NS) if bucket_ns == HOUR_NS else (T0, T0 + 2 * DAY_NS)
    target = panel(name, title)["targets"][0]
    assert target["format"] == "time_series"
    rows = run(
        url, target["rawSql"], lo, hi, interval=interval, templating=dashboard(name)["templating"]["list"]
    )
    got = {(int(r[0]), r[1]): r[2] for r in rows}
    expected = {
        (start // NS, _shown(g.key)): _usd(g.cost_nano_usd)
        for start in range(lo, hi, bucket_ns)
        for g in store.top(by, start, start + bucket_ns, limit=1000).groups
    }
    assert len({key for _, key in expected}) <= 10, "every value has a series of its own here"
    assert got == expected
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)  # Grafana wants time order


def test_top_series_fold_the_rest_into_other(written: tuple[str, SpanStore]) -> None:
    url, store = written
    lo, hi = WINDOWS["both days"]
    raw_sql = panel("tenants", "Spend by user (USD per interval, top 10 + other)")["targets"][0]["rawSql"]
    templating = dashboard("tenants")["templating"]["list"]
    rows = run(url, raw_sql.replace("LIMIT 10", "LIMIT 2"), lo, hi, interval="1d", templating=templating)
    leaders = [_shown(g.key) for g in store.top("user_id", lo, hi, limit=2).groups]
    assert {r[1] for r in rows} == {*leaders, "other"}
    assert sum(r[2] for r in rows) == _usd(store.top("user_id", lo, hi).cost_nano_usd)


def _queries() -> list[Any]:
    found: list[Any] = []
    for path in sorted(DASHBOARDS.glob("postgres-*.json")):
        document = json.loads(path.read_text())
        for p in document["panels"]:
            for target in p["targets"]:
                found.append(
                    pytest.param(
                        path.stem, target["rawSql"], p.get("interval") or "1m", id=f"{path.stem}:{p['title']}"
                    )
                )
        for variable in document["templating"]["list"]:
            if variable["type"] == "query":
                found.append(
                    pytest.param(path.stem, variable["query"], "1m", id=f"{path.stem}:${variable['name']}")
                )
    return found


@pytest.mark.parametrize(("name", "raw_sql", "interval"), _queries())
@pytest.mark.parametrize(
    "values",
    [
        {},
        {"environment": ["prod"], "data_mode": "test"},
        {"environment": ["", "staging"], "data_mode": "demo"},
    ],
    ids=["defaults", "prod-test", "unset+staging-demo"],
)
def test_every_dashboard_query_runs_and_returns_rows(
    written: tuple[str, SpanStore], name: str, raw_sql: str, interval: str, values: dict[str, Any]
) -> None:
    url, _ = written
    templating = json.loads((DASHBOARDS / f"{name}.json").read_text())["templating"]["list"]
    rows = run(url, raw_sql, T0, T0 + 2 * DAY_NS, interval=interval, templating=templating, values=values)
    assert rows and any(value is not None for row in rows for value in row), raw_sql


def test_an_empty_range_is_no_data_not_an_error(written: tuple[str, SpanStore]) -> None:
    """With no rows in range the environment variable has no options; "All" still expands to
    valid SQL (its custom all value), so panels show no data instead of a syntax error."""
    url, _ = written
    document = dashboard("spend")
    far = T0 + 400 * DAY_NS
    templating = document["templating"]["list"]
    (environments,) = [v for v in templating if v["name"] == "environment"]
    assert run(url, environments["query"], far, far + DAY_NS) == []
    target = panel("spend", "Tenant ranking (top 50)")["targets"][0]
    assert run(url, target["rawSql"], far, far + DAY_NS, templating=templating) == []


# -- the read-only role of the docs -----------------------------------------------------------------


def _doc_sql() -> str:
    text = (REPO / "docs" / "grafana.md").read_text()
    (block,) = re.findall(r"```sql\n(.*?)```", text, re.S)
    return block


def test_the_documented_read_only_role_reads_the_views_and_nothing_else(
    written: tuple[str, SpanStore],
) -> None:
    url, _ = written
    database = url.rsplit("/", 1)[1]
    statements = _doc_sql().replace("spanmeter_database", database).replace("choose-a-password", "pw")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS spanmeter_grafana")
        conn.execute(statements.encode())
    reader = url.replace("postgresql://postgres@", "postgresql://spanmeter_grafana:pw@")
    with psycopg.connect(reader, autocommit=True) as conn:
        for view in VIEWS:
            assert conn.execute(sql(f"SELECT count(*) FROM {view}")).fetchone() != (0,)
        for table in ("rollup_minute", "rollup_hour", "requests"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql(f"SELECT 1 FROM {table} LIMIT 1"))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM rollup_minute")
