"""The investigation context of an alert covers the spend that raised it, to the nanosecond.

Alert details carry their window as ISO text to the second (floored). A rolling budget's
window ends at the alert's moment; when that moment falls in the first second of a minute,
the floored end lies on the minute boundary and, read as is, would leave out the minute
holding the very spans that crossed the limit (no drivers, and a focused view showing
nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from spanmeter.budgets import BudgetsRuntime
from spanmeter.budgets.rules.context import alert_context, focused_view
from spanmeter.store import SQLiteStore
from support.budget_helpers import NS, Clock, at, config, row


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "spanmeter.db") as opened:
        yield opened


@pytest.mark.parametrize("into_minute_ns", [0, 1, NS // 2, NS - 1, NS, 59 * NS + NS // 2])
def test_a_rolling_budget_alert_finds_its_drivers_in_the_minute_it_was_raised(
    store: SQLiteStore, into_minute_ns: int
) -> None:
    minute = at("2026-03-10T12:00")
    clock = Clock(minute + into_minute_ns)
    cfg = config("budgets: [{name: acme, scope: {tenant_id: acme}, window: {rolling: 24h}, limit_usd: 1}]")
    runtime = BudgetsRuntime(store, config=cfg, clock=clock)
    store.write_batch([row(minute, 1.5, tenant_id="acme", endpoint_tag="search")])  # at 12:00:00.0
    runtime.tick()
    (alert,) = store.budget_store.list_alerts(kind="budget.exceeded")
    assert alert.window_end_ns is None  # rolling: the window is only in the details' text
    context = alert.context
    assert context is not None
    assert context["drivers"]["endpoint_tag"]["value"] == "search"
    assert context["drivers"]["endpoint_tag"]["cost_usd"] == "1.500000000"
    assert context["drivers"]["model"]["value"] == "gpt-4o"
    # the focused view, run as its API URL says, shows the same spend
    params = dict(parse_qsl(urlsplit(context["focus"]["api"]).query))
    assert (params["by"], params["where"]) == ("endpoint_tag", "tenant_id=acme")
    view = store.top(
        "endpoint_tag",
        at(params["from"].replace("Z", "")),
        at(params["to"].replace("Z", "")),
        where={"tenant_id": "acme"},
        environment=None,
        data_mode=params["data_mode"],
        limit=5,
    )
    assert [(g.key, g.cost_nano_usd) for g in view.groups] == [("search", 1_500_000_000)]
    assert alert_context(store, alert)["drivers"] == context["drivers"]  # built again: the same
    runtime.stop()


def test_focused_view_stamps_keep_the_buckets_of_the_exact_window() -> None:
    """A view's bounds, written to the second, select the same buckets as the exact window:
    a bucket counts iff it starts inside the window, so each bound is rounded up."""
    start = at("2026-03-10T11:00") + NS // 3  # 11:00:00.33: its minute is not counted
    end = at("2026-03-10T12:00") + NS // 3  # 12:00:00.33: its minute is counted
    view = focused_view("model", start, end, {"tenant_id": "acme"}, None)
    assert "--from 2026-03-10T11:00:01Z --to 2026-03-10T12:00:01Z" in view["cli"]
    exact = focused_view("model", at("2026-03-10T11:00"), at("2026-03-10T12:00"), {}, None)
    assert "--from 2026-03-10T11:00:00Z --to 2026-03-10T12:00:00Z" in exact["cli"]
