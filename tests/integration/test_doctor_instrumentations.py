"""``spanmeter doctor`` names the instrumentation (scope and version) behind successful
spans without usage, so a known upstream gap (docs/instrumentations.md) is found by name."""

from __future__ import annotations

import json
import time
from pathlib import Path

from click.testing import CliRunner

from spanmeter.cli import main
from spanmeter.store import SQLiteStore
from support.rows import span_row


def test_doctor_names_the_instrumentation_behind_spans_without_usage(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    now = time.time_ns() - 600 * 10**9
    store = SQLiteStore(db)
    gap = {"scope_name": "opentelemetry.instrumentation.openai.v1", "scope_version": "0.62.4"}
    rows = [
        span_row(now + i, input_tokens=None, output_tokens=None, pricing_status="no_usage", **gap)
        for i in range(3)
    ]
    rows.append(span_row(now + 10, input_tokens=None, output_tokens=None, pricing_status="no_usage"))
    rows += [
        span_row(
            now + 20 + i,
            pricing_status="priced",
            cost_nano_usd=10,
            scope_name="opentelemetry.instrumentation.openai_v2",
        )
        for i in range(20)
    ]
    store.write_batch(rows)
    store.close()
    result = CliRunner().invoke(main, ["doctor", "--db", str(db), "--since", "1h", "--format", "json"])
    assert result.exit_code == 0, result.output
    usage = next(check for check in json.loads(result.output)["checks"] if check["name"] == "usage")
    assert (usage["passed"], usage["applicable"]) == (20, 24)
    assert usage["details"]["instrumentations"] == [
        {"instrumentation": "opentelemetry.instrumentation.openai.v1 0.62.4", "attempts": 3},
        {"instrumentation": "(instrumentation scope not reported)", "attempts": 1},
    ]
    table = CliRunner().invoke(main, ["doctor", "--db", str(db), "--since", "1h"]).output
    assert "opentelemetry.instrumentation.openai.v1 0.62.4: 3 attempts" in table
    assert "docs/instrumentations.md" in table
