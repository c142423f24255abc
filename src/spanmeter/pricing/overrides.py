"""Local price overrides: aliases, custom models, newer prices and negotiated discounts.

genai-prices knows public list prices. What it cannot know lives in one YAML file, loaded
with :meth:`PriceOverrides.from_file` (or :meth:`PriceBook.from_file
<spanmeter.pricing.PriceBook.from_file>`, or the ``SPANMETER_PRICING_FILE`` environment
variable through :meth:`PriceBook.from_env <spanmeter.pricing.PriceBook.from_env>`).
Every key is optional; an empty file is valid::

    version: 1                      # optional; 1 is the only version

    aliases:                        # name on the span -> model to price it as
      prod-gpt4o:                   # an Azure deployment name
        provider: openai            # optional: keeps the span's provider when omitted
        model: gpt-4o
      "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3":
        provider: anthropic         # a full ARN, or just the id after its last "/"
        model: claude-3-5-sonnet-20241022

    models:                         # custom models and prices newer than the package
      - provider: vllm              # an OTel provider name, a genai-prices id or any name
        model: llama-3.1-70b-internal
        match:                      # optional; the model name itself always matches
          equals: [llama-70b-prod]  # more exact names (string or list)
          starts_with: llama-3.1-70b-internal-   # string or list
          regex: '^llama-3\\.1-70b-(?:internal|ft)-\\d+$'
        prices:                     # one or more, each in force from its date (UTC)
          - effective_from: 2025-01-01
            input_mtok: "0.20"      # USD per million tokens; strings or numbers
            output_mtok: "0.60"
            cache_read_mtok: "0.05"     # optional, default: the input price
            cache_write_mtok: "0.25"    # optional, default: the input price
            reasoning_mtok: "0.60"      # optional, default: the output price

    discounts:                      # negotiated discounts, applied to every rate
      - provider: openai            # required; matches the provider that bills the span
        model: gpt-4o               # optional; a model discount replaces a provider one
        percent: 15                 # 0 < percent <= 100
        effective_from: 2026-01-01  # optional, inclusive
        effective_until: 2026-12-31 # optional, inclusive (the last day it applies)

Rules worth knowing:

* Names compare case-insensitively. A ``regex`` is searched in the lowercased name.
* An override model wins over genai-prices for the names it matches, from its first
  ``effective_from`` on; before that date genai-prices prices the model (or, for a model it
  does not know, the span is ``unknown_model``).
* Prices are read into :class:`~decimal.Decimal` exactly: YAML numbers via their text
  (``0.1`` is 0.1, not the float next to it). Quote them to be explicit.
* Matching tolerates spellings: an override or a discount naming ``gpt-4o`` also covers
  ``openai/gpt-4o`` and ``gpt-4o-2024-08-06`` (see :func:`~spanmeter.pricing.name_variants`).
  An override model's ``provider`` must be one the span's provider maps to (``openai``
  covers ``azure.ai.openai`` spans); spans without a provider match on the name alone.
* A discount's ``provider`` is the one that bills the span: the span's own provider
  (``azure.ai.openai`` even when OpenAI's table prices it), else the provider whose table
  matched. Discounts apply to genai-prices and override prices alike; they never stack.

Any problem raises :class:`ValueError` naming the file, the entry and the field.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Final, cast

import yaml

from ._yaml import Where, as_date, as_decimal, as_list, as_mapping, as_names, as_str, kind, load_yaml
from .matching import alias_keys, provider_ids

__all__ = ["Discount", "ModelAlias", "OverrideModel", "OverridePrice", "PriceOverrides"]

_HASH_CHARS: Final = 12
"""Short content hash in provenance: enough to tell file versions apart in a report."""

_TOP_KEYS: Final = frozenset({"version", "aliases", "models", "discounts"})
_ALIAS_KEYS: Final = frozenset({"provider", "model"})
_MODEL_KEYS: Final = frozenset({"provider", "model", "match", "prices"})
_MATCH_KEYS: Final = frozenset({"equals", "starts_with", "regex"})
_PRICE_KEYS: Final = frozenset(
    {"effective_from", "input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "reasoning_mtok"}
)
_DISCOUNT_KEYS: Final = frozenset({"provider", "model", "percent", "effective_from", "effective_until"})


@dataclass(frozen=True, slots=True)
class ModelAlias:
    """Price spans naming an alias as this model."""

    model: str
    provider: str | None = None
    """Provider to look the model up under; None keeps the span's provider."""


@dataclass(frozen=True, slots=True)
class OverridePrice:
    """Per-million-token prices in force from ``effective_from`` (UTC date) on."""

    effective_from: date
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    """None: cache reads cost the input price."""
    cache_write_mtok: Decimal | None = None
    """None: cache writes cost the input price."""
    reasoning_mtok: Decimal | None = None
    """None: reasoning tokens cost the output price."""


@dataclass(frozen=True, slots=True)
class OverrideModel:
    """A model priced by the override file."""

    provider: str
    """Provider as written in the file."""
    model: str
    """Model id, reported as ``matched_model``."""
    prices: tuple[OverridePrice, ...]
    """Ascending by ``effective_from``; never empty."""
    equals: frozenset[str] = frozenset()
    """Lowercased exact names, the model's own included."""
    starts_with: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None
    provider_id: str = field(init=False)
    """The provider as a genai-prices id when it names one, else lowercased."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "provider_id", provider_ids(self.provider)[0])

    def matches(self, name: str) -> bool:
        """Whether a lowercased model name is this model."""
        if name in self.equals or any(name.startswith(prefix) for prefix in self.starts_with):
            return True
        return self.regex is not None and self.regex.search(name) is not None

    def price_on(self, day: date) -> OverridePrice | None:
        """The price in force on ``day``; None before the first one."""
        current = None
        for price in self.prices:
            if price.effective_from > day:
                break
            current = price
        return current


@dataclass(frozen=True, slots=True)
class Discount:
    """A negotiated discount on a provider's (or one of its models') prices."""

    provider: str
    percent: Decimal
    model: str | None = None
    effective_from: date | None = None
    """First day it applies (inclusive); None: always has."""
    effective_until: date | None = None
    """Last day it applies (inclusive); None: open-ended."""
    provider_id: str = field(init=False)
    """The provider as a genai-prices id when it names one, else lowercased."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "provider_id", provider_ids(self.provider)[0])

    def active_on(self, day: date) -> bool:
        """Whether the discount applies to a span that ended on ``day`` (UTC)."""
        if self.effective_from is not None and day < self.effective_from:
            return False
        return self.effective_until is None or day <= self.effective_until

    @property
    def factor(self) -> Decimal:
        """What is left to pay, e.g. 0.85 for 15 %."""
        return (100 - self.percent) / 100

    @property
    def label(self) -> str:
        """Short description for :attr:`PriceResult.discount`, e.g. ``openai -15%``."""
        scope = self.provider if self.model is None else f"{self.provider}/{self.model}"
        return f"{scope} -{self.percent.normalize():f}%"


@dataclass(frozen=True, slots=True)
class PriceOverrides:
    """The parsed override file. Build it with :meth:`from_file` or :meth:`from_yaml`."""

    aliases: Mapping[str, ModelAlias] = field(default_factory=lambda: dict[str, ModelAlias]())
    """Lowercased alias -> model."""
    models: tuple[OverrideModel, ...] = ()
    discounts: tuple[Discount, ...] = ()
    source_version: str | None = None
    """Short content hash of the file, reported as ``source_version`` of override prices."""
    origin: str | None = None
    """Where the overrides came from (the file path), for messages."""

    @classmethod
    def from_file(cls, path: str | Path) -> PriceOverrides:
        """Read and validate an override file.

        Raises:
            ValueError: The file cannot be read, is not YAML, or breaks the documented shape;
                the message names the file, the entry and the field.
        """
        origin = str(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"{origin}: cannot read the price override file: {exc}") from exc
        return cls.from_yaml(raw, origin=origin)

    @classmethod
    def from_yaml(cls, text: str | bytes, *, origin: str = "<string>") -> PriceOverrides:
        """Parse and validate override YAML (see the module docstring for the shape).

        Raises:
            ValueError: As for :meth:`from_file`.
        """
        raw = text.encode() if isinstance(text, str) else text
        version = hashlib.sha256(raw).hexdigest()[:_HASH_CHARS]
        try:
            data = load_yaml(raw)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ValueError(f"{origin}: not valid YAML: {exc}") from exc
        return cls.from_mapping(data, origin=origin, source_version=version)

    @classmethod
    def from_mapping(cls, data: object, *, origin: str, source_version: str | None) -> PriceOverrides:
        """Validate already-parsed data (e.g. from a larger config file).

        Raises:
            ValueError: As for :meth:`from_file`.
        """
        if data is None:
            return cls(source_version=source_version, origin=origin)
        top = as_mapping(data, Where(origin, "the top level"), _TOP_KEYS)
        version: object = top.get("version", 1)
        if isinstance(version, bool) or version != 1:
            Where(origin, "the top level").fail("version", f"must be 1, got {version!r}")
        aliases = _aliases(top.get("aliases"), origin)
        models = tuple(
            _model(raw, Where(origin, f"models[{i}]"))
            for i, raw in enumerate(as_list(top.get("models"), Where(origin, "the top level"), "models"))
        )
        discounts = tuple(
            _discount(raw, Where(origin, f"discounts[{i}]"))
            for i, raw in enumerate(
                as_list(top.get("discounts"), Where(origin, "the top level"), "discounts")
            )
        )
        return cls(aliases, models, discounts, source_version, origin)

    def alias_for(self, model: str) -> ModelAlias | None:
        """The alias declared for a model name on a span, if any."""
        if not self.aliases:
            return None
        for key in alias_keys(model):
            alias = self.aliases.get(key)
            if alias is not None:
                return alias
        return None


def _aliases(raw: object, origin: str) -> dict[str, ModelAlias]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        Where(origin, "the top level").fail("aliases", f"must be a mapping of names, got {kind(raw)}")
    out: dict[str, ModelAlias] = {}
    entries = cast(Mapping[object, object], raw)
    for name, value in entries.items():
        where = Where(origin, f"aliases[{name!r}]")
        if not isinstance(name, str) or not name.strip():
            where.fail("name", "must be a non-empty string")
        key = name.strip().lower()
        if key in out:
            where.fail("name", "is declared twice (names compare case-insensitively)")
        entry = as_mapping(value, where, _ALIAS_KEYS)
        model = as_str(entry.get("model"), where, "model", required=True)
        provider = as_str(entry.get("provider"), where, "provider")
        assert model is not None  # required=True
        out[key] = ModelAlias(model=model, provider=provider)
    return out


def _model(raw: object, where: Where) -> OverrideModel:
    entry = as_mapping(raw, where, _MODEL_KEYS)
    provider = as_str(entry.get("provider"), where, "provider", required=True)
    model = as_str(entry.get("model"), where, "model", required=True)
    assert provider is not None and model is not None  # required=True
    where = where.named(f"provider {provider!r}, model {model!r}")
    equals = {model.lower()}
    starts_with: tuple[str, ...] = ()
    regex = None
    raw_match: object = entry.get("match")
    if raw_match is not None:
        match = as_mapping(raw_match, where.child("match"), _MATCH_KEYS)
        equals.update(as_names(match.get("equals"), where, "match.equals"))
        starts_with = as_names(match.get("starts_with"), where, "match.starts_with")
        pattern = as_str(match.get("regex"), where, "match.regex")
        if pattern is not None:
            try:
                regex = re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                where.fail("match.regex", f"is not a valid regular expression: {exc}")
    raw_prices = as_list(entry.get("prices"), where, "prices")
    if not raw_prices:
        where.fail("prices", "needs at least one dated price")
    prices = sorted(
        (_price(item, where.child(f"prices[{i}]")) for i, item in enumerate(raw_prices)),
        key=lambda price: price.effective_from,
    )
    for earlier, later in itertools.pairwise(prices):
        if earlier.effective_from == later.effective_from:
            where.fail("prices", f"two prices take effect on {later.effective_from.isoformat()}")
    return OverrideModel(provider, model, tuple(prices), frozenset(equals), starts_with, regex)


def _price(raw: object, where: Where) -> OverridePrice:
    entry = as_mapping(raw, where, _PRICE_KEYS)
    effective_from = as_date(entry.get("effective_from"), where, "effective_from", required=True)
    input_mtok = as_decimal(entry.get("input_mtok"), where, "input_mtok", required=True)
    output_mtok = as_decimal(entry.get("output_mtok"), where, "output_mtok", required=True)
    assert effective_from is not None and input_mtok is not None and output_mtok is not None
    return OverridePrice(
        effective_from=effective_from,
        input_mtok=input_mtok,
        output_mtok=output_mtok,
        cache_read_mtok=as_decimal(entry.get("cache_read_mtok"), where, "cache_read_mtok"),
        cache_write_mtok=as_decimal(entry.get("cache_write_mtok"), where, "cache_write_mtok"),
        reasoning_mtok=as_decimal(entry.get("reasoning_mtok"), where, "reasoning_mtok"),
    )


def _discount(raw: object, where: Where) -> Discount:
    entry = as_mapping(raw, where, _DISCOUNT_KEYS)
    provider = as_str(entry.get("provider"), where, "provider", required=True)
    model = as_str(entry.get("model"), where, "model")
    assert provider is not None
    where = where.named(f"provider {provider!r}" + (f", model {model!r}" if model else ""))
    percent = as_decimal(entry.get("percent"), where, "percent", required=True)
    assert percent is not None
    if not 0 < percent <= 100:
        where.fail("percent", f"must be more than 0 and at most 100, got {percent}")
    start = as_date(entry.get("effective_from"), where, "effective_from")
    until = as_date(entry.get("effective_until"), where, "effective_until")
    if start is not None and until is not None and until < start:
        where.fail("effective_until", f"{until.isoformat()} is before effective_from {start.isoformat()}")
    return Discount(provider, percent, model, start, until)
