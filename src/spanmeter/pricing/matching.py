"""Turn the provider and model names that spans carry into names a price table knows.

Spans name providers with the OTel ``gen_ai.provider.name`` enum (``aws.bedrock``,
``azure.ai.openai``, ``gcp.vertex_ai``...), while genai-prices keys its tables by its own
ids (``aws``, ``azure``, ``google``...). Model names arrive in every shape a client, proxy
or cloud invents: ``openai/gpt-4o`` (LiteLLM, OpenRouter), ``claude-3-5-sonnet@20240620``
(Vertex), ``us.anthropic.claude-3-5-sonnet-20240620-v1:0`` or a full Bedrock ARN, dated
snapshots and ``-latest`` aliases. genai-prices' own match clauses already understand many
of them, so the exact name is always tried first; the variants produced here are fallbacks,
tried in order from the least to the most rewritten, and the first one that matches wins.

This module is pure (no price data, no I/O), so the rules can be tested as tables::

    >>> provider_ids("azure.ai.openai")
    ('azure', 'openai')
    >>> [v for v, _ in name_variants("openai/gpt-4o-2024-08-06")]
    ['openai/gpt-4o-2024-08-06', 'gpt-4o-2024-08-06', 'openai/gpt-4o', 'gpt-4o']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["PROVIDER_IDS", "alias_keys", "name_variants", "provider_ids"]

PROVIDER_IDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        # gen_ai.provider.name values (OTel GenAI semantic conventions)
        "openai": ("openai",),
        "anthropic": ("anthropic",),
        "aws.bedrock": ("aws",),
        # Azure OpenAI lists few models of its own; genai-prices falls back to OpenAI's table,
        # and so do we when azure has no such model.
        "azure.ai.openai": ("azure", "openai"),
        "azure.ai.inference": ("azure",),
        "gcp.vertex_ai": ("google",),
        "gcp.gemini": ("google",),
        "gcp.gen_ai": ("google",),
        "mistral_ai": ("mistral",),
        "x_ai": ("x-ai",),
        "moonshot_ai": ("moonshotai",),
        "deepseek": ("deepseek",),
        "groq": ("groq",),
        "cohere": ("cohere",),
        "perplexity": ("perplexity",),
        # older gen_ai.system spellings and vendor spellings seen in the wild
        "az.ai.openai": ("azure", "openai"),
        "az.ai.inference": ("azure",),
        "azure_openai": ("azure", "openai"),
        "azure": ("azure", "openai"),
        "vertex_ai": ("google",),
        "vertex": ("google",),
        "gemini": ("google",),
        "google": ("google",),
        "bedrock": ("aws",),
        "aws_bedrock": ("aws",),
        "aws": ("aws",),
        "xai": ("x-ai",),
        "x-ai": ("x-ai",),
        "mistral": ("mistral",),
        "mistralai": ("mistral",),
        "moonshot": ("moonshotai",),
        "moonshotai": ("moonshotai",),
        "together_ai": ("together",),
        "fireworks_ai": ("fireworks",),
    }
)
"""Provider name on the span -> genai-prices provider ids to look in, in order. Names not
listed are passed through lowercased, so genai-prices ids (``openrouter``, ``groq``...) work
as they are and unknown providers (a self-hosted ``vllm``) can still be named by overrides."""

_MAX_VARIANTS: Final = 32
"""A pathological name could multiply variants; a few dozen lookups is the most a cold miss
should cost."""

_ARN_RE: Final = re.compile(r"^arn:aws[\w-]*:bedrock:[^:]*:[^:]*:[\w-]+/(.+)$")
_REGION_RE: Final = re.compile(r"^(?:us|eu|apac|global|us-gov|jp|au|ca|regional)\.(?=[a-z0-9-]+\.)")
_VENDOR_RE: Final = re.compile(
    r"^(?:anthropic|meta|mistral|amazon|cohere|ai21|deepseek|openai|qwen|writer|google|nvidia|moonshotai)\."
)
_BEDROCK_VERSION_RE: Final = re.compile(r"(?:-v\d+(?::\d+)?|:\d+)$")
_VERTEX_VERSION_RE: Final = re.compile(r"@([\w.-]+)$")
_DATE_SUFFIX_RE: Final = re.compile(r"-(?:20\d{2}-\d{2}-\d{2}|20\d{6})$")
_LATEST_SUFFIX_RE: Final = re.compile(r"-latest$")


def provider_ids(provider: str | None) -> tuple[str, ...]:
    """genai-prices provider ids for a provider name from a span, best first.

    Args:
        provider: ``gen_ai.provider.name`` value, legacy ``gen_ai.system`` value or a
            genai-prices id; None when the span names no provider.

    Returns:
        The ids to look in; empty when ``provider`` is None or blank.
    """
    if provider is None:
        return ()
    key = provider.strip().lower()
    if not key:
        return ()
    return PROVIDER_IDS.get(key, (key,))


def alias_keys(model: str) -> tuple[str, ...]:
    """Keys under which an alias for ``model`` may be declared, most specific first.

    An alias may name the exact string on the span (an Azure deployment name, a Bedrock
    application inference profile ARN) or, for ARNs, just the resource id after the last
    ``/``, which is what people copy from the console.
    """
    key = model.strip().lower()
    match = _ARN_RE.match(key)
    if match is not None:
        return (key, match.group(1))
    return (key,)


def _arn(name: str) -> list[tuple[str, str | None]]:
    match = _ARN_RE.match(name)
    return [(match.group(1), "aws")] if match is not None else []


def _path_suffixes(name: str) -> list[tuple[str, str | None]]:
    # ``openrouter/anthropic/claude-3.5-sonnet`` -> ``anthropic/claude-3.5-sonnet`` (hint
    # openrouter), ``claude-3.5-sonnet`` (hint anthropic): the segment just before the model
    # is the most specific provider a proxy prefix names.
    parts = name.split("/")
    return [("/".join(parts[i:]), parts[i - 1]) for i in range(1, len(parts)) if parts[i]]


def _bedrock(name: str) -> list[tuple[str, str | None]]:
    # Bedrock ids: ``[region.]vendor.model[-vN[:M]]``. Region and version are not part of
    # the price; the ``vendor.model`` shape is distinctive enough to hint ``aws``.
    if "/" in name or name.startswith("arn:"):
        return []
    out: list[tuple[str, str | None]] = []
    stripped = _REGION_RE.sub("", name, count=1)
    if stripped != name:
        out.append((stripped, "aws"))
    versionless = _BEDROCK_VERSION_RE.sub("", stripped, count=1)
    if versionless != stripped and "." in versionless:
        out.append((versionless, "aws"))
    vendorless = _VENDOR_RE.sub("", versionless, count=1)
    if vendorless != versionless:
        # ``anthropic.claude-...`` names its model vendor, a good provider hint on its own
        out.append((vendorless, versionless.split(".", 1)[0]))
    return out


def _vertex(name: str) -> list[tuple[str, str | None]]:
    # ``claude-3-5-sonnet@20240620`` is Vertex's spelling of ``claude-3-5-sonnet-20240620``
    match = _VERTEX_VERSION_RE.search(name)
    if match is None:
        return []
    base = name[: match.start()]
    return [(f"{base}-{match.group(1)}", None), (base, None)]


def _snapshot(name: str) -> list[tuple[str, str | None]]:
    # a dated snapshot or ``-latest`` alias priced like its base model, only when the price
    # source does not list the snapshot itself (the exact name is always tried first)
    for pattern in (_DATE_SUFFIX_RE, _LATEST_SUFFIX_RE):
        stripped = pattern.sub("", name, count=1)
        if stripped != name:
            return [(stripped, None)]
    return []


_TRANSFORMS: Final[tuple[Callable[[str], list[tuple[str, str | None]]], ...]] = (
    _arn,
    _path_suffixes,
    _bedrock,
    _vertex,
    _snapshot,
)


def name_variants(model: str) -> tuple[tuple[str, str | None], ...]:
    """Lowercased spellings of ``model`` to look up, each with a provider hint.

    The first variant is always the name itself. Each rewrite (ARN -> resource id, proxy
    prefix -> bare name, Bedrock region/vendor/version stripped, Vertex ``@version``,
    snapshot date or ``-latest`` stripped) is applied to every variant found so far, so
    combinations such as ``vertex_ai/claude-3-5-sonnet@20240620`` are covered.

    Args:
        model: Model name as reported on the span.

    Returns:
        ``(variant, provider_hint)`` pairs; the hint is a provider named by the rewrite (the
        proxy prefix, ``aws`` for an ARN) or the hint of the variant it came from.
    """
    first = model.strip().lower()
    variants: list[tuple[str, str | None]] = [(first, None)]
    seen = {first}
    for transform in _TRANSFORMS:
        for name, hint in list(variants):
            for new_name, new_hint in transform(name):
                if new_name and new_name not in seen and len(variants) < _MAX_VARIANTS:
                    seen.add(new_name)
                    variants.append((new_name, new_hint if new_hint is not None else hint))
    return tuple(variants)
