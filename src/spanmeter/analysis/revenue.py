"""Tenant revenue CSV import (``tenant,period,revenue``) for tenant profitability.

Periods name a whole span of time, so the cost compared with a revenue figure is the cost
of exactly that span: ``2026-03`` (a UTC month), ``2026-W10`` (an ISO week), ``2026-03-02``
(a UTC day) or ``FROM..TO``. Revenue is USD as a decimal (``1250.00``), kept as integer
nano-USD like every other amount.

Example file::

    tenant,period,revenue
    t_acme,2026-03,1250.00
    t_globex,2026-03,90
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from ..money import NANO_PER_USD
from ..store import RevenueRow
from ..timeunits import NS_PER_SECOND
from .common import parse_range

__all__ = ["parse_period", "parse_revenue_csv"]


def _ns(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()) * NS_PER_SECOND


def parse_period(text: str) -> tuple[int, int]:
    """A period as ``[start_ns, end_ns)``.

    Raises:
        ValueError: Not one of the accepted forms.
    """
    value = text.strip()
    if match := re.fullmatch(r"(\d{4})-(\d{2})", value):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise ValueError(f"invalid month in period {text!r}")
        following = date(year + month // 12, month % 12 + 1, 1)
        return _ns(date(year, month, 1)), _ns(following)
    if match := re.fullmatch(r"(\d{4})-W(\d{2})", value):
        monday = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        return _ns(monday), _ns(monday + timedelta(days=7))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        day = date.fromisoformat(value)
        return _ns(day), _ns(day + timedelta(days=1))
    if ".." in value:
        window = parse_range(value)
        return window.start_ns, window.end_ns
    raise ValueError(f"invalid period {text!r}: use 2026-03, 2026-W10, 2026-03-02 or FROM..TO")


def parse_revenue_csv(text: str) -> list[RevenueRow]:
    """Rows of a revenue CSV with a header naming ``tenant`` (or ``tenant_id``), ``period``
    and ``revenue``.

    Raises:
        ValueError: A missing column or an unreadable line (the message gives the line).
    """
    reader = csv.DictReader(io.StringIO(text))
    fields = {name.strip().lower(): name for name in reader.fieldnames or []}
    tenant_key = fields.get("tenant") or fields.get("tenant_id")
    period_key, revenue_key = fields.get("period"), fields.get("revenue")
    if not (tenant_key and period_key and revenue_key):
        raise ValueError("the revenue CSV needs the columns tenant, period and revenue")
    rows: list[RevenueRow] = []
    for line, record in enumerate(reader, start=2):
        tenant = (record.get(tenant_key) or "").strip()
        period = (record.get(period_key) or "").strip()
        try:
            amount = Decimal((record.get(revenue_key) or "").strip().replace(",", ""))
            start, end = parse_period(period)
        except (InvalidOperation, ValueError) as error:
            raise ValueError(f"line {line}: {error or 'invalid revenue'}") from None
        if not tenant:
            raise ValueError(f"line {line}: empty tenant")
        nano = int((amount * NANO_PER_USD).quantize(Decimal(1), ROUND_HALF_EVEN))
        rows.append(RevenueRow(tenant, period, start, end, nano))
    return rows
