"""``spanmeter demo``: a receiver with budgets, two days of traffic with an incident, and what
an operator sees: top spend, budget posture, the alert, the investigation.

The work is in :mod:`spanmeter.demo`; this command picks the store and ports, shows
progress (a bar on a terminal, plain lines otherwise), prints the sections and the
commands to run next, and with ``--keep-running`` serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from ..demo import (
    DemoError,
    DemoSession,
    DemoSettings,
    keep_running_command,
    live_urls,
    next_commands,
    render_intro,
    render_result,
)
from ..environment_variables import SPANMETER_USER_ID_HASH_KEY

__all__ = ["demo"]

_DB_NAME = "spanmeter-demo.db"


def _store_path(db: str | None, force: bool) -> Path:
    """A fresh store: a new temporary directory by default; never silently replace a file."""
    if db is None:
        return Path(tempfile.mkdtemp(prefix="spanmeter-demo-")) / _DB_NAME
    path = Path(db).absolute()
    if path.exists():
        if not force:
            raise click.ClickException(f"{path} exists: pass --force to replace it, or choose another --db")
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def _progress(total: int) -> Generator[Callable[[int, int], None], None, None]:
    """A progress bar on a terminal; a line every 12 hours of traffic otherwise (logs, CI)."""
    if sys.stdout.isatty():
        with click.progressbar(length=total, label="app: sending traffic", show_pos=True) as bar:
            shown = 0

            def update(done: int, sent: int) -> None:
                nonlocal shown
                bar.label = f"app: {sent:,} spans"
                bar.update(done - shown)
                shown = done

            yield update
        return
    last = 0

    def line(done: int, sent: int) -> None:
        nonlocal last
        if done // 12 > last // 12 or done == total:
            click.echo(f"app: {done}/{total} hours of traffic sent, {sent:,} spans")
        last = done

    yield line


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command()
@click.option("--db", help=f"Store to create [default: {_DB_NAME} in a new temporary directory].")
@click.option("--force", is_flag=True, help="Replace the --db file if it exists.")
@click.option(
    "--grpc-port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0: any free port."
)
@click.option(
    "--http-port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0: any free port."
)
@click.option(
    "--keep-running", is_flag=True, help="Keep the receiver up (for Grafana, Prometheus, curl) until Ctrl-C."
)
def demo(db: str | None, force: bool, grpc_port: int, http_port: int, keep_running: bool) -> None:
    """Run a receiver with budgets, send it two days of GenAI traffic with a prompt-deploy
    incident through the OTel SDK, then show top spend, budgets, alerts and the investigation."""
    # The demo's users are synthetic: a per-run key keeps the "public default key" warning
    # (meant for real deployments) out of the demo's output.
    os.environ.setdefault(SPANMETER_USER_ID_HASH_KEY, secrets.token_hex(16))
    settings = DemoSettings(db=_store_path(db, force), grpc_port=grpc_port, http_port=http_port)
    try:
        with DemoSession(settings) as session:
            scenario = session.scenario
            click.echo(
                render_intro(
                    scenario,
                    db=str(settings.db),
                    budgets_file=str(settings.budgets_file),
                    http_url=session.http_url,
                    grpc=session.grpc_endpoint,
                )
            )
            with _progress(scenario.hours) as progress:
                session.drive(progress)
            session.settle()
            result = session.results()
            click.echo(render_result(result))
            click.echo("Next: ask the same store (copy and paste)")
            for command in next_commands(result):
                click.echo(f"  {command}")
            if not keep_running:
                click.echo(
                    f"\nRun `{keep_running_command()}` to keep the receiver up for Grafana and Prometheus."
                )
                return
            click.echo("\nThe receiver keeps running (Ctrl-C or SIGTERM to stop):")
            for what, url in live_urls(result):
                click.echo(f"  {what + ':':<44}{url}")
            click.echo(
                f"  add --url {result.http_url} instead of --db to the commands above to ask it over HTTP"
            )
            sys.stdout.flush()
            _wait_for_stop()
            click.echo("stopping: every acknowledged span is committed")
    except DemoError as error:
        raise click.ClickException(str(error)) from None
    except OSError as error:
        raise click.ClickException(f"could not start the demo receiver: {error}") from None
