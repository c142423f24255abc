"""Top-level ``spanmeter`` command group."""

from __future__ import annotations

import logging
from importlib.metadata import version

import click

from .alerts import alerts
from .audit import audit
from .budgets import budgets
from .collector_config import collector_config
from .compare import compare
from .demo import demo
from .doctor import doctor
from .economics import economics
from .export import export
from .investigate import investigate
from .keys import keys
from .prices import prices
from .quickstart import quickstart
from .report import report
from .reprice import reprice
from .serve import serve
from .store import store
from .top import top

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("spanmeter"), prog_name="spanmeter")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """spanmeter: LLM cost attribution and budgets on OpenTelemetry."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


main.add_command(alerts)
main.add_command(budgets)
main.add_command(collector_config)
main.add_command(demo)
main.add_command(quickstart)
main.add_command(serve)
main.add_command(top)
main.add_command(investigate)
main.add_command(compare)
main.add_command(economics)
main.add_command(doctor)
main.add_command(reprice)
main.add_command(report)
main.add_command(export)
main.add_command(prices)
main.add_command(store)
main.add_command(keys)
main.add_command(audit)
