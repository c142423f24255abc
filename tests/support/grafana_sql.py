"""Grafana's expansion of a PostgreSQL panel's raw SQL, so the tests can run the dashboards'
queries against a real server exactly as Grafana would send them.

Three steps, in Grafana's order:

1. ``$__interval`` (and ``$__interval_ms``) become the panel's interval, such as ``1h``;
2. template variables are formatted as Grafana's SQL datasources format them: a variable that
   is neither multi-value nor has "All" is inserted as is (quotes doubled), otherwise each value
   is quoted and the values joined by commas; "All" with a custom all value inserts that value
   unformatted (Grafana skips formatting of custom all values);
3. the macros, as Grafana's PostgreSQL macro engine writes them without TimescaleDB
   (``pkg/tsdb/grafana-postgresql-datasource/macros.go``): ``$__timeFilter(c)`` is
   ``c BETWEEN '<from>' AND '<to>'`` (RFC 3339, UTC), ``$__timeGroup(c, 1h)`` is
   ``floor(extract(epoch from c)/3600)*3600`` and ``$__timeGroupAlias`` adds ``AS "time"``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = ["ALL", "expand", "interval_seconds", "rfc3339"]

ALL: Final = "$__all"
"""The value of a variable set to "All"."""

_MACRO: Final = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_VARIABLE: Final = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_UNITS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "y": 31_536_000}


def rfc3339(moment: dt.datetime) -> str:
    """Go's ``time.RFC3339Nano`` of a UTC instant (trailing zeros of the fraction dropped)."""
    utc = moment.astimezone(dt.timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def interval_seconds(text: str) -> float:
    """An interval such as ``1m``, ``1h`` or ``1d`` in seconds (``gtime.ParseInterval``)."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|y)", text.strip().strip("'"))
    if not match:
        raise ValueError(f"bad interval {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _number(seconds: float) -> str:
    """Go's ``%v`` of a float64 number of seconds."""
    return str(int(seconds)) if seconds == int(seconds) else repr(seconds)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _variable(definition: Mapping[str, Any], value: str | Sequence[str]) -> str:
    if value == ALL:
        if definition.get("allValue"):
            return str(definition["allValue"])
        raise ValueError(f"{definition['name']}: All without a custom all value needs the options")
    if definition.get("multi") or definition.get("includeAll"):
        values = [value] if isinstance(value, str) else list(value)
        return ",".join(_quote(v) for v in values)
    if not isinstance(value, str):
        raise ValueError(f"{definition['name']} takes one value")
    return value.replace("'", "''")


def _macro(name: str, args: list[str], start: dt.datetime, end: dt.datetime) -> str:
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{rfc3339(start)}' AND '{rfc3339(end)}'"
    if name == "__timeFrom":
        return f"'{rfc3339(start)}'"
    if name == "__timeTo":
        return f"'{rfc3339(end)}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) != 2:
            raise ValueError(f"${name} with a fill value is not expanded here: {args!r}")
        seconds = _number(interval_seconds(args[1]))
        group = f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"
        return group + ' AS "time"' if name == "__timeGroupAlias" else group
    raise ValueError(f"unknown macro ${name}")


def expand(
    raw_sql: str,
    *,
    start: dt.datetime,
    end: dt.datetime,
    interval: str = "1m",
    templating: Sequence[Mapping[str, Any]] = (),
    values: Mapping[str, str | Sequence[str]] | None = None,
) -> str:
    """``raw_sql`` as Grafana sends it for the range ``[start, end]`` (Grafana's range is
    inclusive at both ends), the panel interval ``interval``, and ``values`` of the dashboard's
    variables (``templating``: its ``templating.list``; a variable not in ``values`` keeps its
    current value)."""
    text = raw_sql.replace("$__interval_ms", str(int(interval_seconds(interval) * 1000)))
    text = text.replace("$__interval", interval)
    definitions = {str(d["name"]): d for d in templating}
    chosen = {name: d["current"]["value"] for name, d in definitions.items()} | dict(values or {})

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in definitions:
            return match.group(0)
        return _variable(definitions[name], chosen[name])

    text = _VARIABLE.sub(variable, text)

    def macro(match: re.Match[str]) -> str:
        args = [arg.strip() for arg in match.group(2).split(",")]
        return _macro(match.group(1), args, start, end)

    text = _MACRO.sub(macro, text)
    if "$" in text:
        raise ValueError(f"left unexpanded: {text!r}")
    return text
