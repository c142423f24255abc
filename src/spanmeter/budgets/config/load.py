"""The budgets file: YAML in, a validated :class:`~spanmeter.budgets.BudgetsConfig` out.

Every problem is reported at once, each naming the file, the entry and the field, e.g.
``budgets.yaml: budgets[2] 'tenant-daily': window: unknown window 'dai' ...``, because
people fix config files in one pass, not one error per restart. Unknown keys are errors:
a typo (``limit_usb``) must not silently mean "no limit".

The shape (every key but ``budgets[].name``, ``window`` and ``limit_usd`` optional)::

    timezone: Europe/Paris          # calendar windows' default zone (UTC if omitted)
    evaluate_every: 60s             # alert rules' schedule
    public_url: http://spanmeter.internal:4318
    budgets:
      - name: tenant-daily
        scope: {tenant_id: "*"}     # one budget per tenant; default data_mode: real
        window: day                 # day | week | month | {rolling: 6h}
        limit_usd: 25
        warn_at: [50%, 80%]
        forecast: true
    rules:
      - kind: cost_per_request_drift
        by: endpoint_tag
        threshold: 30%
    delivery:
      webhooks: [{name: ops, url: https://..., secret_env: OPS_WEBHOOK_SECRET}]
      slack: [{name: finops, url_env: SLACK_WEBHOOK_URL, kinds: ["budget.*"]}]
      log: true
      retry: {initial: 1s, max: 5m, give_up_after: 24h}

The rule kinds and their keys are in :mod:`spanmeter.budgets.rules.config`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, cast

import yaml

from ...identity import default_hasher
from ...timeunits import NS_PER_HOUR, NS_PER_MINUTE, NS_PER_SECOND
from ..definitions.model import DIMENSIONS, WILDCARD, Budget, BudgetsConfig, Channel, RetryPolicy
from ..definitions.values import BudgetConfigError, ConfigErrors, duration_ns, fraction, usd
from ..definitions.windows import WindowSpec, zone
from ..rules.config import parse_rules

__all__ = ["BudgetConfigError", "load_config", "parse_config"]

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_TOP_KEYS: Final = frozenset({"timezone", "evaluate_every", "public_url", "budgets", "rules", "delivery"})
_BUDGET_KEYS: Final = frozenset(
    {
        "name",
        "scope",
        "window",
        "limit_usd",
        "warn_at",
        "forecast",
        "forecast_min_elapsed",
        "timezone",
        "channels",
        "description",
    }
)
_SEVERITIES: Final = ("info", "warning", "critical")
_DEFAULT_FORECAST_SHARE: Final = Decimal("0.1")
"""Default share of a window that must pass before a forecast is trusted."""


def _window(value: object, timezone_name: str) -> WindowSpec:
    if isinstance(value, str) and value in ("day", "week", "month"):
        return WindowSpec.calendar(value, timezone_name)  # type: ignore[arg-type]
    rolling: object = None
    if isinstance(value, Mapping):
        value = cast(Mapping[str, Any], value)
        if set(value) == {"rolling"}:
            rolling = value["rolling"]
        elif set(value) == {"rolling_hours"}:
            rolling = f"{value['rolling_hours']}h"
    elif isinstance(value, str) and value.startswith("rolling"):
        rolling = value.removeprefix("rolling").strip(" :")
    if rolling is None:
        raise ValueError(f"unknown window {value!r}: use day, week, month, or {{rolling: 6h}}")
    ns = duration_ns(rolling)
    hours, rest = divmod(ns, NS_PER_HOUR)
    if rest or hours < 1:
        raise ValueError(f"a rolling window is a whole number of hours (at least 1h), got {rolling!r}")
    return WindowSpec.rolling(hours)


def _scope(errors: ConfigErrors, where: str, value: object) -> dict[str, str]:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        errors.add(where, f"expected a mapping of dimension: value, got {value!r}")
        return {}
    scope: dict[str, str] = {}
    for dim, raw in cast(Mapping[Any, Any], value).items():
        if dim not in DIMENSIONS:
            errors.add(where, f"unknown dimension {dim!r} (use {', '.join(DIMENSIONS)})")
            continue
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)) or str(raw) == "":
            errors.add(f"{where}.{dim}", f"expected a value or '*', got {raw!r}")
            continue
        scope[dim] = str(raw)
        if dim == "user_id" and scope[dim] != WILDCARD:
            # Spans carry hashed user ids: a raw id here would never match (an id already
            # hashed is kept as is).
            scope[dim] = default_hasher()(scope[dim])
    scope.setdefault("data_mode", "real")  # test and demo traffic never spend a real budget
    return scope


def _budget(errors: ConfigErrors, index: int, value: object, timezone_name: str) -> Budget | None:
    found = errors.entry(f"budgets[{index}]", value, "name")
    if found is None:
        return None
    entry, where = found
    name = entry.get("name")
    before = len(errors.errors)
    errors.unknown_keys(where, entry, _BUDGET_KEYS)
    if not isinstance(name, str) or not _NAME.match(name):
        errors.add(where, f"name: required, letters, digits and ._:- only (got {name!r})")
    for key in ("window", "limit_usd"):
        if key not in entry:
            errors.add(where, f"{key}: required")
    tz_name = str(entry.get("timezone", timezone_name))
    errors.guard(f"{where}: timezone", lambda: zone(tz_name))
    window = (
        errors.guard(f"{where}: window", lambda: _window(entry["window"], tz_name))
        if "window" in entry
        else None
    )
    limit = (
        errors.guard(f"{where}: limit_usd", lambda: usd(entry["limit_usd"])) if "limit_usd" in entry else None
    )
    scope = _scope(errors, f"{where}: scope", entry.get("scope"))
    warn = _warn_levels(errors, where, entry.get("warn_at", ["50%", "80%"]))
    forecast, min_elapsed = _forecast(errors, where, entry, window)
    channels = _channel_names(errors, where, entry.get("channels"))
    if len(errors.errors) > before or window is None or limit is None or not isinstance(name, str):
        return None
    return Budget(
        name=name,
        scope=scope,
        window=window,
        limit_usd=limit,
        warn_at=tuple(sorted(set(warn))),
        forecast=bool(forecast),
        forecast_min_elapsed_ns=min_elapsed,
        channels=tuple(channels) if channels is not None else None,
        description=str(entry.get("description", "")),
    )


def _warn_levels(errors: ConfigErrors, where: str, raw: object) -> list[Decimal]:
    """The warning levels, each a fraction below 1 (the limit itself is the last level)."""
    warn: list[Decimal] = []
    if not isinstance(raw, list):
        errors.add(f"{where}: warn_at", f"expected a list such as [50%, 80%], got {raw!r}")
        return warn
    for position, item in enumerate(cast(list[Any], raw)):
        value = errors.guard(f"{where}: warn_at[{position}]", lambda item=item: fraction(item))
        if value is not None and value >= 1:
            errors.add(
                f"{where}: warn_at[{position}]",
                "a warning must be below 100% (the limit is the last level)",
            )
        elif value is not None:
            warn.append(value)
    return warn


def _forecast(
    errors: ConfigErrors, where: str, entry: Mapping[str, Any], window: WindowSpec | None
) -> tuple[object, int]:
    """Whether to forecast (by default for calendar windows: a rolling one has no end to
    project to) and how long into the window before a forecast is trusted (by default
    :data:`_DEFAULT_FORECAST_SHARE` of it, so the first minutes' noise is not projected)."""
    forecast = entry.get("forecast", window is not None and not window.is_rolling)
    if not isinstance(forecast, bool):
        errors.add(f"{where}: forecast", f"expected true or false, got {forecast!r}")
    elif forecast and window is not None and window.is_rolling:
        errors.add(f"{where}: forecast", "a rolling window has no end to project to; remove forecast")
    min_elapsed = 0
    if "forecast_min_elapsed" in entry:
        min_elapsed = (
            errors.guard(f"{where}: forecast_min_elapsed", lambda: duration_ns(entry["forecast_min_elapsed"]))
            or 0
        )
    elif window is not None and not window.is_rolling:
        start, end = window.current(0)
        min_elapsed = int((end - start) * _DEFAULT_FORECAST_SHARE)
    return forecast, min_elapsed


def _channel_names(errors: ConfigErrors, where: str, channels: object) -> list[str] | None:
    """The channels a budget alerts (None: every channel, also after a malformed value)."""
    if channels is not None and (
        not isinstance(channels, list) or not all(isinstance(c, str) for c in cast(list[Any], channels))
    ):
        errors.add(f"{where}: channels", f"expected a list of channel names, got {channels!r}")
        return None
    return cast(list[str] | None, channels)


def _secret(
    errors: ConfigErrors, where: str, entry: Mapping[str, Any], key: str, environ: Mapping[str, str]
) -> str | None:
    """``key`` given inline or as ``key_env`` naming an environment variable."""
    if key in entry and f"{key}_env" in entry:
        errors.add(where, f"give {key} or {key}_env, not both")
        return None
    if f"{key}_env" in entry:
        name = str(entry[f"{key}_env"])
        value = environ.get(name)
        if not value:
            errors.add(
                where,
                f"{key}_env: environment variable {name} is not set "
                f"(export {name}=... where spanmeter runs, or give {key} in the file)",
            )
        return value or None
    value = entry.get(key)
    return None if value is None else str(value)


def _channels(errors: ConfigErrors, delivery: Mapping[str, Any], environ: Mapping[str, str]) -> list[Channel]:
    channels: list[Channel] = []
    allowed = frozenset(
        {"name", "url", "url_env", "secret", "secret_env", "kinds", "min_severity", "headers"}
    )
    for group, kind in (("webhooks", "webhook"), ("slack", "slack")):
        entries = delivery.get(group, [])
        if not isinstance(entries, list):
            errors.add(f"delivery.{group}", f"expected a list, got {entries!r}")
            continue
        for index, entry in enumerate(cast(list[Any], entries)):
            where = f"delivery.{group}[{index}]"
            entry = errors.mapping(where, entry)
            if entry is None:
                continue
            errors.unknown_keys(
                where, entry, allowed if kind == "webhook" else allowed - {"secret", "secret_env"}
            )
            name = entry.get("name")
            if not isinstance(name, str) or not _NAME.match(name):
                errors.add(where, f"name: required, letters, digits and ._:- only (got {name!r})")
                continue
            url = _secret(errors, f"{where} {name!r}", entry, "url", environ)
            if not url or not url.startswith(("http://", "https://")):
                errors.add(f"{where} {name!r}", f"url: required, http:// or https:// (got {url!r})")
            secret = (
                _secret(errors, f"{where} {name!r}", entry, "secret", environ) if kind == "webhook" else None
            )
            if kind == "webhook" and not secret:
                errors.add(f"{where} {name!r}", "secret (or secret_env): required to sign deliveries")
            kinds = entry.get("kinds", ["*"])
            severity = str(entry.get("min_severity", "info"))
            if severity not in _SEVERITIES:
                errors.add(f"{where} {name!r}", f"min_severity: use one of {', '.join(_SEVERITIES)}")
            headers = entry.get("headers", {})
            channels.append(
                Channel(
                    name=name,
                    type=kind,  # type: ignore[arg-type]
                    url=url,
                    secret=secret,
                    kinds=tuple(str(k) for k in cast(list[Any], kinds))
                    if isinstance(kinds, list)
                    else (str(kinds),),
                    min_severity=severity,
                    headers={str(k): str(v) for k, v in cast(Mapping[Any, Any], headers).items()}
                    if isinstance(headers, Mapping)
                    else {},
                )
            )
    log = delivery.get("log", True)
    if log is True or isinstance(log, Mapping):
        log_entry: Mapping[str, Any] = cast(Mapping[str, Any], log) if isinstance(log, Mapping) else {}
        kinds = log_entry.get("kinds", ["*"])
        channels.append(Channel(name="log", type="log", kinds=tuple(str(k) for k in cast(list[Any], kinds))))
    elif log is not False:
        errors.add("delivery.log", f"expected true, false or {{kinds: [...]}}, got {log!r}")
    return channels


def _retry(errors: ConfigErrors, value: object) -> RetryPolicy:
    if value is None:
        return RetryPolicy()
    value = errors.mapping("delivery.retry", value)
    if value is None:
        return RetryPolicy()
    errors.unknown_keys("delivery.retry", value, frozenset({"initial", "max", "give_up_after", "timeout"}))
    seconds: dict[str, float] = {}
    for key, field_name in (
        ("initial", "initial_s"),
        ("max", "max_s"),
        ("give_up_after", "give_up_after_s"),
        ("timeout", "timeout_s"),
    ):
        if key in value:
            ns = errors.guard(f"delivery.retry.{key}", lambda key=key: duration_ns(value[key]))
            if ns is not None:
                seconds[field_name] = ns / NS_PER_SECOND
    return RetryPolicy(**seconds)


def parse_config(
    document: object, source: str = "<budgets>", *, environ: Mapping[str, str] | None = None
) -> BudgetsConfig:
    """Validate a parsed YAML document.

    Raises:
        BudgetConfigError: listing every problem.
    """
    environ = os.environ if environ is None else environ
    errors = ConfigErrors(source)
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise BudgetConfigError(source, [f"{source}: expected a mapping with budgets, rules and delivery"])
    document = cast(Mapping[str, Any], document)
    errors.unknown_keys("top level", document, _TOP_KEYS)
    timezone_name = str(document.get("timezone", "UTC"))
    errors.guard("timezone", lambda: zone(timezone_name))
    budgets = _budgets(errors, document.get("budgets") or [], timezone_name)
    rules = parse_rules(errors, document.get("rules"))
    channels, retry = _delivery(errors, document.get("delivery") or {}, budgets, environ)
    every = errors.guard("evaluate_every", lambda: duration_ns(document.get("evaluate_every", "60s")))
    public_url = document.get("public_url")
    if public_url is not None and not str(public_url).startswith(("http://", "https://")):
        errors.add("public_url", f"expected an http(s) URL, got {public_url!r}")
    if errors.errors:
        raise BudgetConfigError(source, errors.errors)
    return BudgetsConfig(
        budgets=tuple(budgets),
        rules=tuple(rules),
        channels=tuple(channels),
        retry=retry,
        evaluate_every_s=(every or NS_PER_MINUTE) / NS_PER_SECOND,
        public_url=None if public_url is None else str(public_url).rstrip("/"),
        timezone=timezone_name,
        source=source,
    )


def _budgets(errors: ConfigErrors, raw: object, timezone_name: str) -> list[Budget]:
    """The valid budgets; names must be unique (alerts and the ledger key on them)."""
    budgets: list[Budget] = []
    if not isinstance(raw, list):
        errors.add("budgets", f"expected a list, got {raw!r}")
    else:
        for index, entry in enumerate(cast(list[Any], raw)):
            budget = _budget(errors, index, entry, timezone_name)
            if budget is not None:
                budgets.append(budget)
    names = [budget.name for budget in budgets]
    for name in sorted({n for n in names if names.count(n) > 1}):
        errors.add("budgets", f"name {name!r} is used more than once")
    return budgets


def _delivery(
    errors: ConfigErrors, delivery: object, budgets: list[Budget], environ: Mapping[str, str]
) -> tuple[list[Channel], RetryPolicy]:
    """The delivery channels (uniquely named, and every channel a budget names must exist)
    and the retry policy."""
    delivery = errors.mapping("delivery", delivery) or {}
    errors.unknown_keys("delivery", delivery, frozenset({"webhooks", "slack", "log", "retry"}))
    channels = _channels(errors, delivery, environ)
    channel_names = [channel.name for channel in channels]
    for name in sorted({n for n in channel_names if channel_names.count(n) > 1}):
        errors.add("delivery", f"channel name {name!r} is used more than once")
    for budget in budgets:
        for name in budget.channels or ():
            if name not in channel_names:
                errors.add(f"budget {budget.name!r}: channels", f"no channel named {name!r}")
    return channels, _retry(errors, delivery.get("retry"))


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> BudgetsConfig:
    """Read and validate a budgets file.

    Raises:
        BudgetConfigError: unreadable, not YAML, or invalid (every problem listed).
    """
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise BudgetConfigError(source, [f"{source}: cannot read: {error.strerror or error}"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BudgetConfigError(source, [f"{source}: not valid YAML: {error}"]) from None
    return parse_config(document, source, environ=environ)
