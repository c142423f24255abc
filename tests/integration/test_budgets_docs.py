"""The budgets examples of README.md and docs/budgets.md work as written.

Each example's budgets file and its commands are read from the document and run in order in
an empty directory: ``export`` lines set the environment, ``spanmeter serve`` starts a real
receiver (on free ports instead of 4317/4318, which the later ``--url`` commands are pointed
at), every other ``spanmeter`` command runs through the real CLI and must succeed, and the
output a ``console`` block shows must be printed. Between ``serve`` and the next command one
tenant spends past its daily budget over OTLP, so the inbox has the alert the commands read.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanmeter.cli import main
from support.budget_helpers import genai_attributes

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_URL = "http://127.0.0.1:4318"
_BLOCK = re.compile(r"^```(yaml|bash|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)

Step = tuple[list[str], list[str]]
"""A command's words and the output lines the document shows under it."""


def example(doc: str, heading: str) -> tuple[str, list[Step]]:
    """The first YAML block of the section and the commands of its shell blocks, in order."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    section = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    budgets_file: str | None = None
    steps: list[Step] = []
    for lang, block in _BLOCK.findall(section):
        if lang == "yaml":
            budgets_file = budgets_file or block
            continue
        for line in block.replace("\\\n", " ").splitlines():
            if lang == "console" and not line.startswith("$ "):
                if line.strip():
                    steps[-1][1].append(line.strip())
                continue
            words = shlex.split(line.removeprefix("$ "), comments=True)
            if words:
                steps.append((words, []))
    assert budgets_file is not None, f"{doc}: no budgets file"
    return budgets_file, steps


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(args: list[str], cwd: Path) -> Iterator[str]:
    http_port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spanmeter",
            *args,
            "--grpc-port",
            str(free_port()),
            "--http-port",
            str(http_port),
        ],
        cwd=cwd,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                assert time.monotonic() < deadline, "receiver did not become ready"
                time.sleep(0.05)
        yield url
    finally:
        process.kill()
        process.wait(30)
        if process.stderr:
            process.stderr.close()


def overspend(url: str) -> None:
    """Tenant t1 spends 50 USD (20M gpt-4o input tokens): twice the 25 USD of tenant-daily."""
    provider = TracerProvider(resource=Resource.create({"service.name": "docs-example"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url + "/v1/traces")))
    attributes = genai_attributes("gpt-4o", 20_000_000, 0, tenant_id="t1", endpoint_tag="search")
    with provider.get_tracer("docs").start_as_current_span("chat gpt-4o", attributes=attributes):
        pass
    provider.shutdown()


@pytest.mark.parametrize(
    ("doc", "heading"),
    [("README.md", "## Budgets and alerts"), ("docs/budgets.md", "## Quick start")],
)
def test_the_budgets_example_runs_as_written(
    doc: str, heading: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    budgets_file, steps = example(doc, heading)
    assert any(words[:2] == ["spanmeter", "serve"] for words, _ in steps), f"{doc}: no receiver started"
    for name in [n for n in os.environ if n.startswith("SPANMETER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SPANMETER_USER_ID_HASH_KEY", "docs-test-key")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "budgets.yaml").write_text(budgets_file, encoding="utf-8")
    runner = CliRunner()
    ran: list[str] = []
    with contextlib.ExitStack() as stack:
        url: str | None = None
        for words, shown in steps:
            if words[0] == "export":
                name, _, value = words[1].partition("=")
                monkeypatch.setenv(name, value)
                continue
            assert words[0] == "spanmeter", f"{doc}: {shlex.join(words)}"
            if words[1] == "serve":
                url = stack.enter_context(serve(words[1:], tmp_path))
                overspend(url)
                continue
            args = [url if w == DOCUMENTED_URL and url else w for w in words[1:]]
            assert DOCUMENTED_URL not in args, f"{doc}: {shlex.join(words)} runs before the receiver starts"
            result = runner.invoke(main, args)
            assert result.exit_code == 0, (doc, shlex.join(words), result.output)
            for line in shown:
                assert line in result.output, (doc, shlex.join(words), result.output)
            ran.append(shlex.join(words[:3]))
            if words[1:3] == ["alerts", "list"]:
                assert "budget.exceeded" in result.output, result.output
            if words[1:3] == ["budgets", "status"]:
                assert "exceeded" in result.output, result.output
    assert "spanmeter budgets check-config" in ran


def test_a_missing_secret_is_named_with_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    budgets_file, _ = example("README.md", "## Budgets and alerts")
    monkeypatch.delenv("SPANMETER_WEBHOOK_SECRET", raising=False)
    path = tmp_path / "budgets.yaml"
    path.write_text(budgets_file, encoding="utf-8")
    result = CliRunner().invoke(main, ["budgets", "check-config", str(path)])
    assert result.exit_code == 1
    assert "secret_env: environment variable SPANMETER_WEBHOOK_SECRET is not set" in result.output
    assert "export SPANMETER_WEBHOOK_SECRET=..." in result.output
