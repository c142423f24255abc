"""Find the price for a (provider, model, day): overrides first, then genai-prices.

This is the cold path. It runs once per distinct (provider, model) for matching and once
per UTC day for rates; :class:`~spanmeter.pricing.PriceBook` caches what it returns, misses
included. Matching calls genai-prices' ``Provider.find_model`` directly rather than
``DataSnapshot.find_provider_model``, whose miss caches grow without bound on junk names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id
from genai_prices.types import ModelInfo, Provider

from ._rates import PriceEntry, Provenance, entry_for_model, entry_for_override
from .matching import name_variants, provider_ids
from .overlay import OVERLAY, AppliedOverlay
from .overrides import Discount, OverrideModel, PriceOverrides

__all__ = ["GENAI_PRICES", "OVERRIDE", "Match", "Resolver"]

GENAI_PRICES: Final = "genai-prices"
OVERRIDE: Final = "override"
_EPOCH: Final = date(1970, 1, 1)
_NO_RANK: Final = 1 << 30


@dataclass(frozen=True, slots=True)
class Match:
    """What a (provider, model) pair on a span resolved to, independent of the day."""

    billing_provider: str | None
    """Provider id that bills the span, for discounts: the span's provider, else the
    provider whose table matched."""
    names: frozenset[str]
    """Lowercased names a model discount may use: the span's model, its alias target and
    the matched model ids."""
    override: OverrideModel | None
    """Override model that names it, if any."""
    genai_provider: str | None
    """genai-prices provider whose table holds the model (after fallbacks)."""
    genai_model: ModelInfo | None


class Resolver:
    """Matching and per-day rate building over one genai-prices snapshot plus overrides."""

    def __init__(
        self,
        snapshot: DataSnapshot,
        overrides: PriceOverrides | None,
        version: str,
        max_cached: int,
        overlay: AppliedOverlay | None = None,
    ) -> None:
        """Create a resolver.

        Args:
            snapshot: genai-prices data (the bundled one, or one set by ``UpdatePrices``);
                ``overlay.snapshot`` instead when there is an overlay.
            overrides: Parsed override file, if any.
            version: genai-prices version, for provenance.
            max_cached: Distinct names whose match is remembered before the memo restarts.
            overlay: spanmeter's shipped corrections, already applied to ``snapshot``.
        """
        self._snapshot = overlay.snapshot if overlay is not None else snapshot
        self._overlay = overlay
        self._overrides = overrides
        self._version = version
        self._max_cached = max_cached
        self._matches: dict[tuple[str | None, str], Match | None] = {}
        self._providers: dict[str, Provider | None] = {}

    def clear(self) -> None:
        """Forget memoised matches."""
        self._matches.clear()
        self._providers.clear()

    def entry(self, provider: str | None, model: str, day: int) -> PriceEntry | None:
        """Rates for spans of ``model`` ending on ``day`` (days since 1970-01-01, UTC).

        Returns:
            None when nothing prices the model on that day.
        """
        match = self.match(provider, model)
        if match is None:
            return None
        when = _EPOCH + timedelta(days=day)
        discount = self._discount(match, when)
        label = discount.label if discount is not None else None
        keep = discount.factor if discount is not None else None
        override = match.override
        if override is not None:
            price = override.price_on(when)
            if price is not None:
                overrides = self._overrides
                assert overrides is not None  # an override model comes from the overrides
                provenance = Provenance(
                    OVERRIDE, overrides.source_version, override.provider_id, override.model, label, keep
                )
                return entry_for_override(price, provenance)
        genai_model = match.genai_model
        if genai_model is not None:
            fix = self._overlay.entry_for(genai_model) if self._overlay is not None else None
            if fix is None:
                provenance = Provenance(
                    GENAI_PRICES, self._version, match.genai_provider, genai_model.id, label, keep
                )
            elif when >= fix.effective_from:
                assert self._overlay is not None
                version = self._overlay.overlay.version
                provenance = Provenance(OVERLAY, version, fix.provider, fix.model, label, keep)
            elif fix.upstream is not None:  # a correction: before it, genai-prices' price was right
                provenance = Provenance(GENAI_PRICES, self._version, fix.provider, fix.upstream, label, keep)
            else:  # an addition: no price of ours before its date
                return None
            return entry_for_model(genai_model, when, provenance)
        return None

    def match(self, provider: str | None, model: str) -> Match | None:
        """Match a span's provider and model (memoised, misses included)."""
        key = (provider, model)
        try:
            return self._matches[key]
        except KeyError:
            pass
        found = self._match(provider, model)
        if len(self._matches) >= self._max_cached:
            self._matches.clear()
        self._matches[key] = found
        return found

    def _match(self, provider: str | None, model: str) -> Match | None:
        name = model
        lookup_provider = provider
        overrides = self._overrides
        alias = overrides.alias_for(model) if overrides is not None else None
        if alias is not None:
            name = alias.model
            if alias.provider is not None:
                lookup_provider = alias.provider
        candidates = provider_ids(lookup_provider)
        variants = name_variants(name)
        override_rank, override = self._override_model(candidates, variants)
        found = self._genai_model(candidates, variants)
        genai_provider: str | None = None
        genai_model: ModelInfo | None = None
        if found is not None:
            genai_rank, genai_provider, genai_model = found
            # The spelling matched with the least rewriting decides: ``gpt-4o-2024-05-13`` is
            # its own model in genai-prices and must not take an override of ``gpt-4o``.
            # An override naming the very model genai-prices matched always applies, so an
            # override of ``gpt-4o`` covers ``gpt-4o-2024-08-06``, which genai-prices calls gpt-4o.
            _, same_model = self._override_model(candidates, ((genai_model.id.lower(), None),))
            if same_model is not None:
                override = same_model
            elif override_rank > genai_rank:
                override = None
        if override is None and genai_model is None:
            return None
        billing = provider_ids(provider)
        # every spelling of the span's model, so a discount on ``claude-3-5-haiku`` covers
        # ``claude-3-5-haiku-20241022`` whatever id the price table uses
        names = {model.strip().lower(), *(variant for variant, _ in variants)}
        if genai_model is not None:
            names.add(genai_model.id.lower())
        if override is not None:
            names.add(override.model.lower())
        return Match(
            billing_provider=billing[0]
            if billing
            else (override.provider_id if override else genai_provider),
            names=frozenset(names),
            override=override,
            genai_provider=genai_provider,
            genai_model=genai_model,
        )

    def _override_model(
        self, candidates: tuple[str, ...], variants: tuple[tuple[str, str | None], ...]
    ) -> tuple[int, OverrideModel | None]:
        """The first override matching a variant, with that variant's rank (lower: closer)."""
        overrides = self._overrides
        if overrides is None or not overrides.models:
            return _NO_RANK, None
        for rank, (variant, _) in enumerate(variants):
            for entry in overrides.models:
                if (not candidates or entry.provider_id in candidates) and entry.matches(variant):
                    return rank, entry
        return _NO_RANK, None

    def _genai_model(
        self, candidates: tuple[str, ...], variants: tuple[tuple[str, str | None], ...]
    ) -> tuple[int, str, ModelInfo] | None:
        """The genai-prices model for the first variant that matches, with its rank."""
        if candidates:
            # The span's provider first, over every spelling; a provider named inside the
            # model name (a proxy prefix such as ``anthropic/...``) only after that.
            for rank, (variant, _) in enumerate(variants):
                if (found := self._find_in(candidates, variant)) is not None:
                    return (rank, *found)
            for rank, (variant, hint) in enumerate(variants, start=len(variants)):
                extra = tuple(pid for pid in provider_ids(hint) if pid not in candidates)
                if extra and (found := self._find_in(extra, variant)) is not None:
                    return (rank, *found)
            return None
        for rank, (variant, hint) in enumerate(variants):
            # no provider on the span: the prefix's provider, else genai-prices' inference
            # from the model name (the first provider whose model_match accepts it)
            ids = provider_ids(hint) + self._infer(variant)
            if (found := self._find_in(ids, variant)) is not None:
                return (rank, *found)
        return None

    def _find_in(self, ids: tuple[str, ...], variant: str) -> tuple[str, ModelInfo] | None:
        providers = self._snapshot.providers
        for pid in ids:
            table = self._provider(pid)
            if table is None:
                continue
            model = table.find_model(variant, all_providers=providers)
            if model is not None:
                return _owner(table, model, providers), model
        return None

    def _provider(self, pid: str) -> Provider | None:
        try:
            return self._providers[pid]
        except KeyError:
            pass
        found = find_provider_by_id(self._snapshot.providers, pid)
        if len(self._providers) >= self._max_cached:
            self._providers.clear()
        self._providers[pid] = found
        return found

    def _infer(self, variant: str) -> tuple[str, ...]:
        for table in self._snapshot.providers:
            if table.model_match is not None and table.model_match.is_match(variant):
                return (table.id,)
        return ()

    def _discount(self, match: Match, day: date) -> Discount | None:
        overrides = self._overrides
        if overrides is None or not overrides.discounts or match.billing_provider is None:
            return None
        provider_wide = None
        for discount in overrides.discounts:
            if discount.provider_id != match.billing_provider or not discount.active_on(day):
                continue
            if discount.model is None:
                provider_wide = provider_wide or discount
            elif discount.model.lower() in match.names:
                return discount  # a model's discount replaces the provider's
        return provider_wide


def _owner(table: Provider, model: ModelInfo, providers: list[Provider]) -> str:
    """The provider whose table lists ``model`` (genai-prices may have used a fallback)."""
    if any(candidate is model for candidate in table.models):
        return table.id
    for fallback_id in table.fallback_model_providers or ():
        for other in providers:
            if other.id == fallback_id and any(candidate is model for candidate in other.models):
                return other.id
    return table.id
