"""The weekly report files a budget or alert event under the week of the spend it describes,
not the week it was raised in (a real SQLite store and its alert inbox)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from click.testing import CliRunner

from spanmeter.analysis.report_weekly import parse_week, week_alerts
from spanmeter.cli import main
from spanmeter.store import NewAlert, SQLiteStore
from spanmeter.synthetic import to_ns

SUNDAY = to_ns(datetime(2026, 3, 8, tzinfo=timezone.utc))  # the last day of 2026-W10
MONDAY = to_ns(datetime(2026, 3, 9, tzinfo=timezone.utc))  # the first of 2026-W11
MINUTE = 60 * 10**9


def _alerts(store: SQLiteStore) -> None:
    store.budget_store.insert_alerts(
        [
            # a calendar day's budget, evaluated (raised) the morning after
            NewAlert(
                "day",
                "budget.exceeded",
                "critical",
                "daily",
                "endpoint_tag=search",
                "Budget daily exceeded on Sunday",
                MONDAY + 300 * MINUTE,
                window_start_ns=SUNDAY,
                window_end_ns=MONDAY,
            ),
            # a rolling 24 h budget crossed half an hour into Monday: about both days
            NewAlert(
                "rolling",
                "budget.warning",
                "warning",
                "rolling",
                "",
                "Budget rolling reached 80%",
                MONDAY + 30 * MINUTE,
                details={"window": {"from": "2026-03-08T00:30:00+00:00", "to": "2026-03-09T00:30:00+00:00"}},
            ),
            # an event without a window: the moment it was raised
            NewAlert("moment", "rule.x", "info", "rule", "", "Raised on Tuesday", MONDAY + 24 * 60 * MINUTE),
        ],
        now_ns=MONDAY + 24 * 60 * MINUTE,
    )


def test_alerts_are_filed_under_the_week_of_their_spend(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "alerts.db") as store:
        _alerts(store)
        earlier = week_alerts(store, parse_week("2026-W10"))
        later = week_alerts(store, parse_week("2026-W11"))
    assert earlier is not None and later is not None
    assert [a["title"] for a in earlier] == ["Budget rolling reached 80%", "Budget daily exceeded on Sunday"]
    assert earlier[1]["spend_window"] == {
        "from": "2026-03-08T00:00:00+00:00",
        "to": "2026-03-09T00:00:00+00:00",
    }
    assert earlier[1]["at"] == "2026-03-09T05:00:00+00:00"
    assert [a["title"] for a in later] == ["Budget rolling reached 80%", "Raised on Tuesday"]
    text = (
        CliRunner()
        .invoke(main, ["report", "weekly", "--db", str(tmp_path / "alerts.db"), "--week", "2026-W10"])
        .output
    )
    line = next(line for line in text.splitlines() if "Budget daily exceeded on Sunday" in line)
    assert (
        line.startswith("- 2026-03-09 05:00 [critical]")
        and "spend 2026-03-08 00:00 .. 2026-03-09 00:00 UTC" in line
    )
    assert "Raised on Tuesday" not in text
