"""The spend an alert describes, as a time window.

An alert is raised after the spend it is about, sometimes much later (a rolling budget
crossing its limit at 00:30 describes the 24 hours before; a re-evaluation or the demo
raises alerts about past traffic), so a report that files alerts by the moment they were
raised puts them next to the wrong spend. This is the one reading of an alert's window
that the weekly report and the alert context share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ...store import AlertRecord
from ...timeunits import NS_PER_SECOND, TimeWindow, parse_instant

__all__ = ["alert_spend_window"]


def alert_spend_window(alert: AlertRecord) -> TimeWindow:
    """[start, end) of the spend ``alert`` describes.

    A calendar window is stored exactly; a rolling one only as text in the details, to the
    second and rounded down, so its text end stands for the whole second after it. A window
    still running when the alert was raised (a rolling budget's always is) covers the spend
    up to and including the alert's moment, and no less than a minute. An alert without any
    window describes the moment it was raised.
    """
    window = cast(Mapping[str, Any], alert.details.get("window") or {})
    if alert.window_start_ns is not None:
        start = alert.window_start_ns
    elif window.get("from"):
        start = parse_instant(str(window["from"]))
    else:
        return TimeWindow(alert.occurred_at_ns, alert.occurred_at_ns + 1)
    if alert.window_end_ns is not None:
        end = alert.window_end_ns
    elif window.get("to"):
        end = parse_instant(str(window["to"])) + NS_PER_SECOND
    else:
        end = alert.occurred_at_ns + 1
    return TimeWindow(start, min(end, max(alert.occurred_at_ns + 1, start + 60 * NS_PER_SECOND)))
