"""``spanmeter demo``: the whole product on a laptop in seconds, with a real incident in it.

A receiver on the embedded store, with budgets and an alert rule, receives two days of
GenAI traffic from an app instrumented with the real OTel SDK and ``spanmeter.configure()``
(spans carry their own past times, so two days take seconds). In the second day a prompt
deploy doubles the tokens per call of one endpoint; the demo then shows what an operator
would see: the spend ranking, the exceeded budget, the alerts, and the investigation that
names the deploy.

Example::

    from pathlib import Path
    from spanmeter.demo import DemoSession, DemoSettings, render_result

    with DemoSession(DemoSettings(db=Path("demo.db"))) as session:
        session.drive()
        session.settle()
        print(render_result(session.results()))
"""

from __future__ import annotations

from . import scenario
from .render import keep_running_command, live_urls, next_commands, render_intro, render_result
from .scenario import *  # noqa: F403  (the scenario's names, listed once in its __all__)
from .session import DemoError, DemoResult, DemoSession, DemoSettings
from .webhook import AlertSink

__all__ = [
    "AlertSink",
    "DemoError",
    "DemoResult",
    "DemoSession",
    "DemoSettings",
    "keep_running_command",
    "live_urls",
    "next_commands",
    "render_intro",
    "render_result",
]
__all__ += scenario.__all__
