"""Provider spellings -> one canonical provider name.

Every instrumentation names the provider its own way: the old ``gen_ai.system`` enum
(``az.ai.openai``, ``vertex_ai``, ``xai``), the newer ``gen_ai.provider.name`` enum
(``azure.ai.openai``, ``gcp.vertex_ai``, ``x_ai``), OpenInference's ``llm.provider`` /
``llm.system`` pair (``azure`` + ``openai``), the Vercel AI SDK's provider ids with an API
suffix (``openai.chat``, ``google.vertex.chat``, ``amazon-bedrock``) and the short ids users
put in payloads (``bedrock``, ``azure``). Budgets, reports and price lookups need ONE
name per provider, and the ``gen_ai.provider.name`` enum value is that name::

    >>> canonical_provider("az.ai.openai"), canonical_provider("openai.chat")
    ('azure.ai.openai', 'openai')
    >>> canonical_provider(" Together ")  # unknown: lower-cased and stripped only
    'together'
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["PROVIDER_ALIASES", "canonical_provider", "openinference_provider"]

PROVIDER_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        # gen_ai.provider.name enum values map to themselves (the canonical set).
        "openai": "openai",
        "anthropic": "anthropic",
        "aws.bedrock": "aws.bedrock",
        "azure.ai.openai": "azure.ai.openai",
        "azure.ai.inference": "azure.ai.inference",
        "cohere": "cohere",
        "deepseek": "deepseek",
        "gcp.gemini": "gcp.gemini",
        "gcp.gen_ai": "gcp.gen_ai",
        "gcp.vertex_ai": "gcp.vertex_ai",
        "groq": "groq",
        "ibm.watsonx.ai": "ibm.watsonx.ai",
        "mistral_ai": "mistral_ai",
        "moonshot_ai": "moonshot_ai",
        "perplexity": "perplexity",
        "x_ai": "x_ai",
        # gen_ai.system enum values that the rename (semantic-conventions #2046) changed.
        "az.ai.openai": "azure.ai.openai",
        "az.ai.inference": "azure.ai.inference",
        "vertex_ai": "gcp.vertex_ai",
        "gemini": "gcp.gemini",
        "xai": "x_ai",
        "ibm.watson.ai": "ibm.watsonx.ai",  # OpenLIT's spelling
        # OpenInference llm.provider / llm.system values (alone; pairs: openinference_provider).
        "azure": "azure.ai.openai",
        "aws": "aws.bedrock",
        "google": "gcp.gen_ai",
        "vertexai": "gcp.vertex_ai",
        "mistralai": "mistral_ai",
        # Vercel AI SDK provider ids, after the API suffix is removed (see _API_KINDS).
        "amazon-bedrock": "aws.bedrock",
        "azure-openai": "azure.ai.openai",
        "google.generative-ai": "gcp.gemini",
        "google.vertex": "gcp.vertex_ai",
        "google.vertex.anthropic": "gcp.vertex_ai",
        "vertex.anthropic": "gcp.vertex_ai",
        "mistral": "mistral_ai",
        # Short ids seen in payloads and older instrumentations.
        "bedrock": "aws.bedrock",
        "aws_bedrock": "aws.bedrock",
        "azure_openai": "azure.ai.openai",
        "vertex": "gcp.vertex_ai",
        "watsonx": "ibm.watsonx.ai",
        "moonshot": "moonshot_ai",
        "moonshotai": "moonshot_ai",
    }
)
"""Lower-cased provider spelling -> canonical ``gen_ai.provider.name`` value."""

_API_KINDS: Final = frozenset(
    {
        "chat",
        "completion",
        "completions",
        "embedding",
        "embeddings",
        "image",
        "messages",
        "responses",
        "speech",
        "transcription",
    }
)
"""Last dotted segment of a Vercel AI SDK provider id that names the API, not the provider
(``openai.responses``, ``anthropic.messages``, ``azure.embeddings``). Only these are
stripped: stripping any last segment would turn ``aws.sagemaker`` into ``aws`` (Bedrock)."""

# OpenInference's own llm.provider/llm.system -> gen_ai.provider.name conversion
# (openinference-instrumentation _genai_conversion.py), mirrored so both agree.
_OI_AZURE_OPENAI: Final = "azure.ai.openai"
_OI_AZURE_OTHER: Final = "azure.ai.inference"


def canonical_provider(value: str) -> str:
    """Map any known provider spelling to its ``gen_ai.provider.name`` enum value.

    Args:
        value: A provider name as found on a span or payload, any case.

    Returns:
        The canonical name; unknown names are returned lower-cased and stripped, unchanged
        otherwise, so a self-hosted ``vllm`` still groups consistently and can be priced
        by a local override.
    """
    key = value.strip().lower()
    known = PROVIDER_ALIASES.get(key)
    if known is not None:
        return known
    base, dot, kind = key.rpartition(".")
    if dot and kind in _API_KINDS:
        known = PROVIDER_ALIASES.get(base)
        if known is not None:
            return known
    return key


def openinference_provider(provider: str | None, system: str | None) -> str | None:
    """Resolve OpenInference's ``llm.provider`` + ``llm.system`` pair to one provider.

    ``llm.provider`` says who hosts the model and ``llm.system`` which family it is, so
    the pair is needed to tell Azure OpenAI from other Azure AI models, and Vertex AI from
    the generic Google endpoint; the host decides the price, so it wins otherwise.

    Args:
        provider: ``llm.provider`` value, already a stripped string, or None.
        system: ``llm.system`` value, already a stripped string, or None.

    Returns:
        The canonical provider, or None when neither is given.
    """
    p = provider.lower() if provider else None
    s = system.lower() if system else None
    if p == "azure":
        return _OI_AZURE_OPENAI if s == "openai" else _OI_AZURE_OTHER
    if p == "google" and s == "vertexai":
        return "gcp.vertex_ai"
    if p is not None:
        return canonical_provider(p)
    if s is not None:
        return canonical_provider(s)
    return None
