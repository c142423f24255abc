"""``spanmeter collector-config``: write an OTel Collector configuration, or check one."""

from __future__ import annotations

from pathlib import Path

import click

from ..collector_config import KINDS, build, check_file, render

__all__ = ["collector_config"]


@click.command("collector-config")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default="fanout",
    show_default=True,
    help="fanout: all spans to the backend, GenAI spans to spanmeter; normalize: the same, with vendor "
    "names copied to OTel gen_ai.* names; loadbalance: GenAI spans spread over several spanmeter replicas.",
)
@click.option(
    "--endpoint",
    metavar="HOST:PORT",
    help="spanmeter's OTLP/gRPC address (for loadbalance: a DNS name of every replica) "
    "[default: ${env:SPANMETER_GRPC_ENDPOINT}, expanded by the Collector].",
)
@click.option(
    "--backend",
    metavar="HOST:PORT",
    help="The existing trace backend's OTLP/gRPC address [default: ${env:BACKEND_ENDPOINT}].",
)
@click.option(
    "--replicas",
    metavar="A,B,C",
    help="loadbalance only: a fixed, comma-separated list of spanmeter replicas (HOST:PORT each).",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to FILE instead of stdout."
)
@click.option(
    "--check",
    "check",
    type=click.Path(exists=True, dir_okay=False),
    multiple=True,
    help="Validate FILE (repeatable) instead of generating; exit 1 on any problem.",
)
def collector_config(
    kind: str,
    endpoint: str | None,
    backend: str | None,
    replicas: str | None,
    output: str | None,
    check: tuple[str, ...],
) -> None:
    """Generate an OTel Collector (contrib) configuration that feeds spanmeter, or check one.

    Without addresses the output reads them from environment variables when the Collector
    starts, and is the file shipped in collector_config/.
    """
    if check:
        failed = False
        for path in check:
            problems = check_file(path)
            if problems:
                failed = True
                click.echo(f"{path}: {len(problems)} problem(s)")
                for problem in problems:
                    click.echo(f"  - {problem}")
            else:
                click.echo(f"{path}: OK")
        if failed:
            raise SystemExit(1)
        return
    replica_list = [r for r in (replicas or "").split(",") if r.strip()]
    try:
        text = render(build(kind, endpoint=endpoint, backend=backend, replicas=replica_list))  # type: ignore[arg-type]
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output} ({kind})", err=True)
