"""spanmeter's price overlay: corrections and additions to genai-prices, shipped in the package.

genai-prices is the source of truth for list prices, but a release lags the providers: an
alias moves to a new model, a discount ends, a long-context tier is missing, a model is
not there yet. The overlay (``spanmeter/pricing/data/overlay.yaml``) holds what we have
checked against the provider's own published pricing page and genai-prices does not (yet)
say, each entry with that page, the date it was checked and the date it takes effect.

Layers, later wins: genai-prices -> this overlay -> the user's override file
(``SPANMETER_PRICING_FILE``, :mod:`.overrides`).

An entry is a genai-prices model (same ``match`` clauses, same per-million-token prices,
tiers included) put *before* the provider's own models, so it wins for the names it
matches and nothing else. A correction names its ``upstream`` model: before
``effective_from`` that model's prices still apply (the old price was right then). When
genai-prices catches up, ``spanmeter prices check`` lists the entry as redundant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, cast

from genai_prices.data_snapshot import DataSnapshot, find_provider_by_id
from genai_prices.types import (
    ClauseAnd,
    ClauseContains,
    ClauseEndsWith,
    ClauseEquals,
    ClauseOr,
    ClauseRegex,
    ClauseStartsWith,
    ConditionalPrice,
    MatchLogic,
    ModelInfo,
    ModelPrice,
    Provider,
    StartDateConstraint,
    Tier,
    TieredPrices,
)

from ._yaml import Where, as_date, as_decimal, as_list, as_mapping, as_str, load_yaml

__all__ = ["OVERLAY", "AppliedOverlay", "OverlayEntry", "PriceOverlay"]

_logger = logging.getLogger(__name__)

OVERLAY: Final = "spanmeter-overlay"
"""``pricing_source`` of a span priced by an overlay entry."""

_DATA: Final = "overlay.yaml"
_HASH_CHARS: Final = 12
_ENTRY_KEYS: Final = frozenset(
    {
        "provider",
        "model",
        "match",
        "upstream",
        "effective_from",
        "source",
        "checked",
        "note",
        "prices",
        "examples",
    }
)
_PRICE_KEYS: Final = frozenset(
    {"input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok", "output_reasoning_mtok"}
)
_CLAUSES: Final = {
    "equals": ClauseEquals,
    "starts_with": ClauseStartsWith,
    "ends_with": ClauseEndsWith,
    "contains": ClauseContains,
    "regex": ClauseRegex,
}


@dataclass(frozen=True, slots=True)
class OverlayEntry:
    """One checked correction or addition."""

    provider: str
    """genai-prices provider id whose table the entry joins."""
    model: str
    """The entry's model id (provenance: ``spanmeter.pricing.model``)."""
    match: MatchLogic
    upstream: str | None
    """For a correction: the genai-prices model that priced these names, still in force
    before ``effective_from``. None for an addition."""
    effective_from: date
    source: str
    """The provider's published pricing page the figures come from."""
    checked: date
    note: str
    prices: ModelPrice
    examples: tuple[str, ...]
    """Span model names that this entry prices (a test prices each)."""

    @property
    def kind(self) -> str:
        """``correction`` or ``addition``."""
        return "correction" if self.upstream is not None else "addition"


class PriceOverlay:
    """The overlay's entries, and a genai-prices snapshot with them applied."""

    def __init__(self, entries: Sequence[OverlayEntry], version: str) -> None:
        self.entries: tuple[OverlayEntry, ...] = tuple(entries)
        self.version = version
        """Content hash of the overlay file: provenance of the prices it gave."""

    @classmethod
    def bundled(cls) -> PriceOverlay:
        """The overlay shipped in the package (parsed once per process: ~40 ms)."""
        return _bundled()

    @classmethod
    def from_file(cls, path: str | Path) -> PriceOverlay:
        """An overlay file (tests, and a maintainer checking a new entry)."""
        return cls.parse(Path(path).read_text(encoding="utf-8"), str(path))

    @classmethod
    def parse(cls, text: str, name: str) -> PriceOverlay:
        """Parse overlay YAML text (the override file's strict reader: exact decimals, real
        dates, no duplicate or unknown keys).

        Raises:
            ValueError: The text is not a valid overlay (the message names the entry and field).
        """
        document = load_yaml(text.encode())
        top = as_mapping(
            document if document is not None else {}, Where(name, "top level"), ("version", "entries")
        )
        if top.get("version", 1) != 1:
            raise ValueError(f"{name}: version must be 1")
        raw_entries = as_list(top.get("entries"), Where(name, "top level"), "entries")
        entries = [_entry(raw, Where(name, f"entries[{i}]")) for i, raw in enumerate(raw_entries)]
        seen: set[tuple[str, str]] = set()
        for entry in entries:
            key = (entry.provider, entry.model.lower())
            if key in seen:
                raise ValueError(f"{name}: {entry.provider}/{entry.model} listed twice")
            seen.add(key)
        version = hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]
        return cls(entries, version)

    def apply(self, snapshot: DataSnapshot) -> AppliedOverlay:
        """A snapshot whose provider tables start with the overlay's models.

        An entry whose provider or upstream model the snapshot lacks (a newer genai-prices
        renamed it) is left out and listed in :attr:`AppliedOverlay.problems`, logged once
        per price book: this runs in the app's process, where a price table must never stop
        the app. ``spanmeter prices check`` fails on it.
        """
        by_provider: dict[str, list[ModelInfo]] = {}
        by_model: dict[int, OverlayEntry] = {}
        problems: list[str] = []
        for entry in self.entries:
            table = find_provider_by_id(snapshot.providers, entry.provider)
            if table is None:
                problems.append(f"{entry.model}: no genai-prices provider {entry.provider!r}")
                continue
            try:
                model = _model_info(entry, table)
            except ValueError as error:
                problems.append(str(error))
                continue
            by_provider.setdefault(entry.provider, []).append(model)
            by_model[id(model)] = entry
        providers = [
            dataclasses.replace(table, models=[*by_provider[table.id], *table.models])
            if table.id in by_provider
            else table
            for table in snapshot.providers
        ]
        if problems:
            _logger.warning("spanmeter: price overlay entries left out: %s", "; ".join(problems))
        applied = DataSnapshot(providers=providers, from_auto_update=snapshot.from_auto_update)
        return AppliedOverlay(self, applied, by_model, problems)


@dataclass(frozen=True, slots=True)
class AppliedOverlay:
    """An overlay applied to one snapshot: the snapshot, and which of its models are ours."""

    overlay: PriceOverlay
    snapshot: DataSnapshot
    by_model: Mapping[int, OverlayEntry]
    """``id()`` of each overlay model in :attr:`snapshot` (alive as long as it is) -> entry."""
    problems: list[str]
    """Entries left out, and why."""

    def entry_for(self, model: ModelInfo) -> OverlayEntry | None:
        """The entry behind a model of :attr:`snapshot`, or None for genai-prices' own."""
        return self.by_model.get(id(model))


@cache
def _bundled() -> PriceOverlay:
    text = (
        resources.files(__name__.rpartition(".")[0])
        .joinpath("data")
        .joinpath(_DATA)
        .read_text(encoding="utf-8")
    )
    return PriceOverlay.parse(text, f"spanmeter/pricing/data/{_DATA}")


def _model_info(entry: OverlayEntry, table: Provider) -> ModelInfo:
    since = ConditionalPrice(
        constraint=StartDateConstraint(start_date=entry.effective_from), prices=entry.prices
    )
    if entry.upstream is None:
        # an addition: one dated price; before its date the resolver gives no price (the
        # model was not sold, or at another price nobody has checked)
        return ModelInfo(id=entry.model, match=entry.match, name=entry.note or None, prices=[since])
    upstream = next((model for model in table.models if model.id == entry.upstream), None)
    if upstream is None:
        raise ValueError(f"{entry.model}: no genai-prices model {entry.provider}/{entry.upstream}")
    earlier = upstream.prices
    history = (
        [ConditionalPrice(constraint=None, prices=earlier)]
        if isinstance(earlier, ModelPrice)
        else list(earlier)
    )
    return ModelInfo(id=entry.model, match=entry.match, name=entry.note or None, prices=[*history, since])


def _entry(raw: object, where: Where) -> OverlayEntry:
    fields = as_mapping(raw, where, _ENTRY_KEYS)
    model = _text(fields, where, "model")
    match = (
        _match(fields["match"], where.child("match")) if "match" in fields else ClauseEquals(model.lower())
    )
    where = where.named(f"{fields.get('provider')}/{model}")
    source = _text(fields, where, "source")
    if not source.startswith("https://"):
        where.fail("source", "must be the https:// address of the provider's pricing page")
    return OverlayEntry(
        provider=_text(fields, where, "provider"),
        model=model,
        match=match,
        upstream=as_str(fields.get("upstream"), where, "upstream"),
        effective_from=_day(fields, where, "effective_from"),
        source=source,
        checked=_day(fields, where, "checked"),
        note=as_str(fields.get("note"), where, "note") or "",
        prices=_prices(fields.get("prices"), where.child("prices")),
        examples=tuple(_name(item, where) for item in as_list(fields.get("examples"), where, "examples")),
    )


def _text(fields: Mapping[str, Any], where: Where, field: str) -> str:
    return cast(str, as_str(fields.get(field), where, field, required=True))


def _day(fields: Mapping[str, Any], where: Where, field: str) -> date:
    return cast(date, as_date(fields.get(field), where, field, required=True))


def _name(value: object, where: Where) -> str:
    return cast(str, as_str(value, where, "examples", required=True))


def _prices(value: object, where: Where) -> ModelPrice:
    fields = as_mapping(value, where, _PRICE_KEYS)
    if "input_mtok" not in fields or "output_mtok" not in fields:
        where.fail("input_mtok", "and output_mtok are required")
    return ModelPrice(**{key: _price(fields[key], where, key) for key in fields})


def _price(value: object, where: Where, field: str) -> Decimal | TieredPrices:
    if not isinstance(value, Mapping):
        return cast(Decimal, as_decimal(value, where, field, required=True))
    tiered = as_mapping(cast("Mapping[str, object]", value), where.child(field), ("base", "tiers"))
    tiers: list[Tier] = []
    for i, raw in enumerate(as_list(tiered.get("tiers"), where.child(field), "tiers")):
        tier = as_mapping(raw, where.child(f"{field}.tiers[{i}]"), ("start", "price"))
        start = tier.get("start")
        if not isinstance(start, int) or isinstance(start, bool) or start <= 0:
            where.child(f"{field}.tiers[{i}]").fail("start", "must be a positive token count")
        price = cast(
            Decimal, as_decimal(tier.get("price"), where.child(f"{field}.tiers[{i}]"), "price", required=True)
        )
        tiers.append(Tier(start=start, price=price))
    if not tiers:
        where.child(field).fail("tiers", "must list at least one tier")
    base = cast(Decimal, as_decimal(tiered.get("base"), where.child(field), "base", required=True))
    return TieredPrices(base=base, tiers=tiers)


def _match(value: object, where: Where) -> MatchLogic:
    """genai-prices match clauses from YAML (``equals``, ``starts_with``... ``or``, ``and``)."""
    fields = as_mapping(value, where, (*_CLAUSES, "or", "and"))
    if len(fields) != 1:
        raise ValueError(f"{where.origin}: {where.entry}: one clause per mapping")
    ((kind, operand),) = fields.items()
    if kind in _CLAUSES:
        return _CLAUSES[kind](cast(str, as_str(operand, where, kind, required=True)).lower())
    parts = [
        _match(part, where.child(f"{kind}[{i}]")) for i, part in enumerate(as_list(operand, where, kind))
    ]
    if not parts:
        where.fail(kind, "must list at least one clause")
    return ClauseOr(parts) if kind == "or" else ClauseAnd(parts)
