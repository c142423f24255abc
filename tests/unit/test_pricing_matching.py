"""Model matching that tolerates the names real spans carry."""

from __future__ import annotations

import pytest

from spanmeter.pricing import PriceBook, name_variants, provider_ids


@pytest.mark.parametrize(
    ("provider", "ids"),
    [
        ("openai", ("openai",)),
        ("aws.bedrock", ("aws",)),
        ("azure.ai.openai", ("azure", "openai")),
        ("gcp.vertex_ai", ("google",)),
        ("gcp.gemini", ("google",)),
        ("gcp.gen_ai", ("google",)),
        ("x_ai", ("x-ai",)),
        ("mistral_ai", ("mistral",)),
        ("moonshot_ai", ("moonshotai",)),
        ("az.ai.openai", ("azure", "openai")),  # the older gen_ai.system spelling
        ("OpenRouter", ("openrouter",)),  # genai-prices ids pass through
        ("vllm", ("vllm",)),
        (None, ()),
        ("  ", ()),
    ],
)
def test_provider_ids(provider: str | None, ids: tuple[str, ...]) -> None:
    assert provider_ids(provider) == ids


def test_name_variants_try_the_exact_name_first() -> None:
    assert name_variants("GPT-4o")[0] == ("gpt-4o", None)
    assert [v for v, _ in name_variants("openai/gpt-4o-2024-08-06")] == [
        "openai/gpt-4o-2024-08-06",
        "gpt-4o-2024-08-06",
        "openai/gpt-4o",
        "gpt-4o",
    ]
    assert ("claude-3-5-sonnet-20240620", None) in name_variants("claude-3-5-sonnet@20240620")
    assert ("claude-3-5-sonnet-20240620", "anthropic") in name_variants(
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
    )


MATCHES = [
    # (provider on span, model on span) -> (provider id, model id) in genai-prices
    ("openai", "GPT-4o", ("openai", "gpt-4o")),
    ("openai", "gpt-4o-latest", ("openai", "gpt-4o")),
    ("openai", "ft:gpt-4o-mini-2024-07-18:acme::abc123", ("openai", "ft:gpt-4o-mini")),
    ("openai", "anthropic/claude-3-5-sonnet-20241022", ("anthropic", "claude-3-5-sonnet")),  # via a proxy
    ("anthropic", "claude-3-5-sonnet-latest", ("anthropic", "claude-3-5-sonnet")),
    (None, "claude-3-5-sonnet-20241022", ("anthropic", "claude-3-5-sonnet")),
    (None, "openrouter/anthropic/claude-3.5-sonnet", ("openrouter", "anthropic/claude-3.5-sonnet")),
    (None, "vertex_ai/claude-3-5-sonnet@20240620", ("google", "claude-3-5-sonnet")),
    (
        None,
        "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
        ("aws", "regional.anthropic.claude-3-haiku-20240307-v1:0"),
    ),
    (
        None,
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        ("aws", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ),
    (None, "us.meta.llama3-1-70b-instruct-v1:0", ("aws", "meta.llama3-1-70b-instruct-v1:0")),
    (None, "azure/gpt-4o", ("openai", "gpt-4o")),
    (None, "gemini/gemini-2.5-pro", ("google", "gemini-2.5-pro")),
    ("gcp.vertex_ai", "publishers/google/models/gemini-2.0-flash-001", ("google", "gemini-2.0-flash")),
    ("gcp.gemini", "models/gemini-2.5-pro", ("google", "gemini-2.5-pro")),
    (
        "aws.bedrock",
        "apac.anthropic.claude-3-5-sonnet-20240620-v1:0",
        ("aws", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ),
    (
        "aws.bedrock",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        ("aws", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ),
    (
        "aws.bedrock",
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        ("aws", "regional.anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ),
    ("azure.ai.openai", "gpt-4o-mini-2024-07-18", ("openai", "gpt-4o-mini")),
    ("x_ai", "xai/grok-3", ("x-ai", "grok-3")),
    # the alias moved to Mistral Large 3: spanmeter's overlay prices it (genai-prices: Large 2)
    ("mistral_ai", "mistral/mistral-large-latest", ("mistral", "mistral-large-latest")),
    ("moonshot_ai", "kimi-k2", ("moonshotai", "kimi-k2")),
]


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


@pytest.mark.parametrize(("provider", "model", "matched"), MATCHES, ids=[f"{p}:{m}" for p, m, _ in MATCHES])
def test_real_world_names(
    book: PriceBook, provider: str | None, model: str, matched: tuple[str, str]
) -> None:
    result = book.price(provider, model, input_tokens=100, output_tokens=10)
    assert (result.matched_provider, result.matched_model) == matched


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "claude-3-5-sonnet"),  # a known provider does not borrow another's models
        ("aws.bedrock", "gpt-4o"),
        ("ibm.watsonx.ai", "ibm/granite-13b"),
        (None, "my-own-model"),
        ("openai", "gpt-4o-2099-01-01-preview-x"),
    ],
)
def test_no_guessing(book: PriceBook, provider: str | None, model: str) -> None:
    assert book.price(provider, model, input_tokens=100, output_tokens=10).total_nano_usd is None
