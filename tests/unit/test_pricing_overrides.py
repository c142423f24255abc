"""The override file: the shipped example loads, and every kind of mistake is named."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import pytest

from spanmeter.environment_variables import SPANMETER_PRICING_FILE
from spanmeter.pricing import PriceBook, PriceOverrides, PricingStatus


def example_text() -> str:
    return (files("spanmeter.pricing") / "example-overrides.yaml").read_text(encoding="utf-8")


def test_example_loads() -> None:
    overrides = PriceOverrides.from_yaml(example_text(), origin="example-overrides.yaml")
    assert set(overrides.aliases) == {
        "prod-gpt4o",
        "prod-gpt4o-mini",
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
    }
    assert overrides.aliases["prod-gpt4o"].model == "gpt-4o"
    llama = overrides.models[0]
    assert (llama.provider, llama.model) == ("vllm", "llama-3.1-70b-internal")
    assert [p.effective_from for p in llama.prices] == [date(2025, 1, 1), date(2025, 7, 1)]
    assert llama.prices[1].input_mtok == Decimal("0.15")
    assert llama.matches("llama-3.1-70b-internal-2025-06")
    assert llama.matches("ft-llama-70b-42")
    assert not llama.matches("llama-3.1-70b")
    assert [d.label for d in overrides.discounts] == [
        "azure.ai.openai -12%",
        "anthropic -10%",
        "anthropic/claude-3-5-haiku -25%",
    ]
    assert overrides.source_version is not None and len(overrides.source_version) == 12


def test_example_prices_spans() -> None:
    book = PriceBook(PriceOverrides.from_yaml(example_text()))
    when = datetime(2025, 9, 1, tzinfo=timezone.utc)
    aliased = book.price("azure.ai.openai", "prod-gpt4o", input_tokens=1_000_000, output_tokens=0, at=when)
    assert aliased.matched_model == "gpt-4o"
    assert aliased.discount == "azure.ai.openai -12%"
    assert aliased.total_nano_usd == 2_200_000_000  # $2.50 less 12 %
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    profile = book.price("aws.bedrock", arn, input_tokens=1_000_000, output_tokens=0, at=when)
    assert profile.matched_provider == "aws"
    assert profile.total_nano_usd == 3_000_000_000


def test_arn_alias_may_name_only_the_id() -> None:
    book = PriceBook(
        PriceOverrides.from_yaml("aliases:\n  a1b2c3: {provider: anthropic, model: claude-3-haiku}\n")
    )
    arn = "arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/a1b2c3"
    result = book.price("aws.bedrock", arn, input_tokens=100, output_tokens=10)
    assert (result.matched_provider, result.matched_model) == ("anthropic", "claude-3-haiku")


def test_yaml_numbers_are_read_as_written() -> None:
    text = """
models:
  - provider: vllm
    model: m
    prices:
      - {effective_from: 2025-01-01, input_mtok: 0.1, output_mtok: 3, cache_read_mtok: "0.01875"}
"""
    price = PriceOverrides.from_yaml(text).models[0].prices[0]
    assert price.input_mtok == Decimal("0.1")  # not 0.1000000000000000055511151231257827
    assert price.output_mtok == Decimal(3)
    assert price.cache_read_mtok == Decimal("0.01875")


def test_empty_file_is_no_overrides() -> None:
    overrides = PriceOverrides.from_yaml("# nothing yet\n")
    assert (dict(overrides.aliases), overrides.models, overrides.discounts) == ({}, (), ())


def test_source_version_follows_content() -> None:
    a = PriceOverrides.from_yaml("aliases: {x: {model: gpt-4o}}")
    b = PriceOverrides.from_yaml("aliases: {x: {model: gpt-4o-mini}}")
    assert a.source_version != b.source_version


MODEL = "models:\n  - provider: vllm\n    model: m\n"
PRICE = "    prices:\n      - effective_from: 2025-01-01\n"

INVALID = [
    ("not yaml", "models: [", ["not valid YAML"]),
    ("top level list", "- a\n- b\n", ["the top level", "must be a mapping"]),
    ("unknown top key", "model: {}\n", ["unknown field 'model'"]),
    ("bad version", "version: 2\n", ["field 'version'", "must be 1"]),
    ("duplicate key", "aliases: {}\naliases: {}\n", ["not valid YAML", "duplicate key 'aliases'"]),
    (
        "alias without model",
        "aliases:\n  prod: {provider: openai}\n",
        ["aliases['prod']", "field 'model' is required"],
    ),
    (
        "alias twice",
        "aliases:\n  Prod: {model: a}\n  prod: {model: b}\n",
        ["aliases['prod']", "declared twice"],
    ),
    ("alias not mapping", "aliases:\n  prod: gpt-4o\n", ["aliases['prod']", "must be a mapping"]),
    ("models not list", "models: {provider: x}\n", ["field 'models' must be a list"]),
    ("model without provider", "models:\n  - model: m\n", ["models[0]", "field 'provider' is required"]),
    (
        "model without prices",
        MODEL,
        ["models[0] (provider 'vllm', model 'm')", "field 'prices' needs at least one"],
    ),
    (
        "price without input",
        MODEL + PRICE + "        output_mtok: 1\n",
        ["models[0] (provider 'vllm', model 'm').prices[0]", "field 'input_mtok' is required"],
    ),
    (
        "negative price",
        MODEL + PRICE + "        input_mtok: -1\n        output_mtok: 1\n",
        ["field 'input_mtok'", "finite number >= 0"],
    ),
    (
        "price not a number",
        MODEL + PRICE + "        input_mtok: abc\n        output_mtok: 1\n",
        ["must be a number"],
    ),
    (
        "price is a bool",
        MODEL + PRICE + "        input_mtok: true\n        output_mtok: 1\n",
        ["must be a number"],
    ),
    ("price is infinite", MODEL + PRICE + "        input_mtok: .inf\n        output_mtok: 1\n", ["finite"]),
    (
        "price field typo",
        MODEL + PRICE + "        input_mtoks: 1\n        output_mtok: 1\n",
        ["prices[0]", "unknown field 'input_mtoks'"],
    ),
    (
        "bad date",
        MODEL + "    prices:\n      - {effective_from: 2025-13-01, input_mtok: 1, output_mtok: 1}\n",
        ["field 'effective_from'", "must be a date"],
    ),
    (
        "timestamp not date",
        MODEL + "    prices:\n      - {effective_from: 2025-01-01T10:00:00, input_mtok: 1, output_mtok: 1}\n",
        ["field 'effective_from'", "not a timestamp"],
    ),
    (
        "two prices same day",
        MODEL
        + "    prices:\n"
        + "      - {effective_from: 2025-01-01, input_mtok: 1, output_mtok: 1}\n"
        + "      - {effective_from: 2025-01-01, input_mtok: 2, output_mtok: 2}\n",
        ["field 'prices'", "two prices take effect on 2025-01-01"],
    ),
    (
        "bad regex",
        MODEL
        + "    match: {regex: 'llama-('}\n"
        + "    prices: [{effective_from: 2025-01-01, input_mtok: 1, output_mtok: 1}]\n",
        ["field 'match.regex'", "not a valid regular expression"],
    ),
    (
        "bad starts_with",
        MODEL
        + "    match: {starts_with: [ok, 3]}\n"
        + "    prices: [{effective_from: 2025-01-01, input_mtok: 1, output_mtok: 1}]\n",
        ["field 'match.starts_with'", "must be a string or a list of strings"],
    ),
    (
        "unknown match clause",
        MODEL
        + "    match: {contains: x}\n"
        + "    prices: [{effective_from: 2025-01-01, input_mtok: 1, output_mtok: 1}]\n",
        ["match", "unknown field 'contains'"],
    ),
    (
        "discount without provider",
        "discounts:\n  - {percent: 10}\n",
        ["discounts[0]", "field 'provider' is required"],
    ),
    (
        "discount over 100",
        "discounts:\n  - {provider: openai, percent: 150}\n",
        ["field 'percent'", "at most 100"],
    ),
    ("discount of 0", "discounts:\n  - {provider: openai, percent: 0}\n", ["field 'percent'", "more than 0"]),
    (
        "discount window reversed",
        "discounts:\n"
        "  - {provider: openai, percent: 5, effective_from: 2025-06-01, effective_until: 2025-01-01}\n",
        ["discounts[0] (provider 'openai')", "field 'effective_until'", "before effective_from"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_invalid_file_names_the_problem(text: str, expected: list[str], tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        PriceOverrides.from_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in expected:
        assert fragment in message


def test_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ValueError, match=r"nope\.yaml: cannot read"):
        PriceBook.from_file(path)


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv(SPANMETER_PRICING_FILE, raising=False)
    assert PriceBook.from_env().overrides is None

    path = tmp_path / "prices.yaml"
    path.write_text("aliases:\n  prod-gpt4o: {provider: openai, model: gpt-4o}\n", encoding="utf-8")
    monkeypatch.setenv(SPANMETER_PRICING_FILE, str(path))
    book = PriceBook.from_env()
    assert book.overrides is not None and book.overrides.origin == str(path)
    result = book.price("azure.ai.openai", "prod-gpt4o", input_tokens=10, output_tokens=1)
    assert result.status is PricingStatus.PRICED and result.matched_model == "gpt-4o"

    # a bad file must not stop the host app: a warning, list prices, and the reason kept
    path.write_text("aliases: [\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="spanmeter.pricing"):
        fallback = PriceBook.from_env()
    assert fallback.overrides is None
    assert fallback.overrides_error is not None and "not valid YAML" in fallback.overrides_error
    assert "price overrides not used" in caplog.text
    with pytest.raises(ValueError, match=r"prices\.yaml: not valid YAML"):
        PriceBook.from_env(strict=True)
