"""``spanmeter prices``: show explains the layer, tier and cost; check runs over the shipped
overlay; unknown lists the unpriced models of a real store, ready for the override file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

from spanmeter.cli import main
from spanmeter.pricing.overrides import PriceOverrides
from spanmeter.store import SQLiteStore
from support.rows import span_row


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env or {})
    return result.exit_code, result.output


def test_show_names_the_overlay_entry_tier_and_cost() -> None:
    code, out = run(
        "prices",
        "show",
        "claude-sonnet-4-20250514",
        "--provider",
        "anthropic",
        "--at",
        "2026-12-01",
        "--usage",
        "in=300000,cache_read=100000,out=2000",
        "--format",
        "json",
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["layer"] == "spanmeter-overlay"
    assert doc["overlay_entry"]["source"].startswith("https://")
    assert doc["tier_start"] == 200_000
    # 200k uncached at $6 + 100k cache reads at $0.60 + 2k output at $22.50 per MTok
    assert doc["cost_usd"]["total"] == "1.305000000"
    assert doc["rates_usd_per_mtok"]["input_mtok"] == "6"


def test_show_before_a_correction_gives_genai_prices() -> None:
    code, out = run(
        "prices", "show", "mistral-large-latest", "--provider", "mistral_ai", "--at", "2025-06-01"
    )
    assert code == 0, out
    assert "priced by:   genai-prices" in out
    assert "cost:        8.000000000 USD" in out  # $2 + $6 per MTok, one million each


def test_show_the_user_override_wins(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "models:\n  - provider: openai\n    model: gpt-4o-mini\n    prices:\n"
        '      - {effective_from: 2025-01-01, input_mtok: "0.1", output_mtok: "0.2"}\n'
    )
    code, out = run(
        "prices", "show", "gpt-4o-mini", "--provider", "openai", env={"SPANMETER_PRICING_FILE": str(path)}
    )
    assert code == 0, out
    assert "priced by:   override" in out and "cost:        0.300000000 USD" in out


def test_show_an_unknown_model_fails_and_says_what_to_do() -> None:
    code, out = run("prices", "show", "gpt-nobody-knows", "--provider", "openai")
    assert code == 1
    assert "unknown_model" in out and "override file" in out


def test_show_refuses_bad_usage() -> None:
    code, out = run("prices", "show", "gpt-4o", "--usage", "in=ten")
    assert code == 2 and "whole number" in out


def test_check_passes_on_the_shipped_overlay() -> None:
    code, out = run("prices", "check", "--format", "json")
    assert code == 0, out
    verdicts = json.loads(out)
    assert verdicts and all(item["verdict"] != "broken" for item in verdicts)


def test_unknown_lists_unpriced_models_with_an_override_snippet(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    now = time.time_ns()
    store = SQLiteStore(db)
    store.write_batch(
        [
            span_row(
                now - 3_600 * 10**9,
                model="acme-llm-2",
                provider="vllm",
                pricing_status="unknown_model",
                input_tokens=700,
                output_tokens=70,
            ),
            span_row(
                now - 1_800 * 10**9,
                model="acme-llm-2",
                provider="vllm",
                pricing_status="unknown_model",
                input_tokens=300,
                output_tokens=30,
            ),
            span_row(now - 600 * 10**9, pricing_status="priced", cost_nano_usd=1000),
        ]
    )
    store.close()
    code, out = run("prices", "unknown", "--since", "7d", "--db", str(db), "--format", "json")
    assert code == 0, out
    assert json.loads(out) == [
        {"provider": "vllm", "model": "acme-llm-2", "attempts": 2, "input_tokens": 1000, "output_tokens": 100}
    ]
    code, out = run("prices", "unknown", "--since", "7d", "--db", str(db), "--format", "yaml")
    assert code == 0
    snippet = tmp_path / "overrides.yaml"
    snippet.write_text(out)
    parsed = PriceOverrides.from_file(snippet)  # pastes into an override file as it is
    assert [m.model for m in parsed.models] == ["acme-llm-2"]
    assert yaml.safe_load(out)["models"][0]["provider"] == "vllm"
