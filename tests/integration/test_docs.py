"""Every shell and Python block of README.md and docs/*.md runs, so a doc cannot drift again.

How a block is run:

* Shell blocks (```bash, sh, shell, console) run with bash (``set -e -o pipefail``) in a
  temporary directory, the virtualenv's ``bin`` first on ``PATH``. The directory holds a copy
  of a store made by ``spanmeter demo`` as ``spanmeter.db`` (the CLI's default store), links
  to the repository's ``collector_config/``, ``deploy/``, ``scripts/`` and ``src/``, and every
  YAML block of the same doc that opens with a ``# NAME.yaml`` comment, written as that file.
  A ``spanmeter demo --keep-running`` receiver on free ports serves the same store for the
  ``--url`` commands. Documented placeholders (``127.0.0.1:4318``, ``spanmeter:4318``,
  ``/var/lib/spanmeter/``, alert ``42``) are replaced by the explicit tables below, never by
  rewriting the docs. ``spanmeter serve`` and ``demo --keep-running`` run in the background
  (``SPANMETER_HTTP_PORT``/``SPANMETER_GRPC_PORT`` are 0, so they take free ports) until the
  block ends, then get SIGTERM and must exit 0; a later ``127.0.0.1:4318`` in the same block
  means the receiver the block started. Under a ``$ `` command of a ``console`` block, the
  output shown must appear in what the command printed (``...`` matches anything).
* Python blocks run in a subprocess after :data:`PYTHON_PRELUDE`, which defines the names the
  docs take from the reader's app (``account``, ``user``, ``client``, ``guard``...). A block
  with a top-level ``return`` (a handler's body) is run as a function's body.
* A block that cannot run here carries ``no-run: REASON`` in its fence info string, e.g.
  ```` ```bash no-run: needs otelcol-contrib ````. It is checked structurally instead: its
  ``spanmeter`` commands parse with the real CLI, its ``make`` targets exist, the repository
  paths it names exist, the Collector configurations it starts pass ``collector-config
  --check`` and get every ``${env:...}`` they use, and the entry points it names are installed.
* :data:`KNOWN_FAILING` lists blocks that fail today, with the reason; they are strict xfails,
  so the fix of a doc or of the code has to remove its entry. Ids are ``FILE:LINE`` of the
  opening fence: a stale id (the doc moved) fails :func:`test_tables_name_existing_blocks`.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml

from spanmeter.cli import main
from spanmeter.collector_config.validate import check_file
from spanmeter.store import SQLiteStore
from support.doc_blocks import (
    PYTHON_LANGS,
    SHELL_LANGS,
    Block,
    Command,
    read_blocks,
    shell_commands,
    shell_script,
    shell_words,
    single_line,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
BLOCKS = read_blocks(ROOT, DOCS)

# Blocks that fail today, and why. Strict xfail: when one passes, remove its entry.

KNOWN_FAILING: dict[str, str] = {}

# Placeholders of shell blocks -> what they mean here (regex, replacement), applied in order.
SHELL_PLACEHOLDERS: list[tuple[str, str]] = [
    # a command that names the default ports: free ports instead (it prints the one it took)
    (r"--http-port 4318\b", "--http-port 0"),
    (r"--grpc-port 4317\b", "--grpc-port 0"),
    # the receiver: the block's own `serve`/`demo --keep-running`, else the test's demo receiver
    (r"\b(?:127\.0\.0\.1|localhost|spanmeter):4318\b", "127.0.0.1:${DOC_HTTP_PORT}"),
    # a system path: below the block's directory
    (r"/var/lib/spanmeter/", "var/lib/spanmeter/"),
    # an example alert id: an alert of the demo's store
    (r"\balerts (ack|show) 42\b", r"alerts \1 ${DOC_ALERT_ID}"),
]
# Commands that serve until stopped: run in the background.
LONG_RUNNING = re.compile(r"\bspanmeter (?:serve\b|demo\b.*--keep-running)")
# What a background receiver prints once it listens (sed -E; group 2: its HTTP port).
READY = r".*(receiving OTLP on .*|add --url )http://[0-9.]+:([0-9]+).*"
# Placeholders of Python blocks.
PYTHON_PLACEHOLDERS: list[tuple[str, str]] = [
    (r"http://spanmeter:4318\b", "{url}"),
]
# The names Python blocks take from the reader's app; {url} is the demo receiver's.
PYTHON_PRELUDE = """
import time
from types import SimpleNamespace

from opentelemetry import trace

import spanmeter
from spanmeter.budgets import sign


class HTTPException(Exception):
    def __init__(self, status, detail, headers=None):
        super().__init__(status, detail, headers)


class _Completions:
    # what an instrumented client does: one GenAI span, in the caller's context

    def create(self, *args, **kwargs):
        with trace.get_tracer("doc-test").start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attribute("gen_ai.provider.name", "openai")
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("gen_ai.usage.input_tokens", 100)
            span.set_attribute("gen_ai.usage.output_tokens", 20)
        return SimpleNamespace(choices=[])


account = SimpleNamespace(id="t_0001")
user = SimpleNamespace(email="alice@example.com")
request_id = "req-1"
client = SimpleNamespace(chat=SimpleNamespace(completions=_Completions()))
tenant, endpoint, model = "t_0001", "support.reply", "gpt-4o-mini"
messages = [{{"role": "user", "content": "hello"}}]
NON_CRITICAL = {{"support.reply"}}
secret, body = "s3cret", b'{{"kind": "budget.exceeded"}}'
_timestamp = str(int(time.time()))
headers = {{
    "X-Spanmeter-Timestamp": _timestamp,
    "X-Spanmeter-Signature": sign(secret, _timestamp, body),
    "Idempotency-Key": "alert-1",
}}


def seen(key):
    return False


def quota_exceeded_page(budget):
    return 429


_doc_result = _doc_raised = None
guard = spanmeter.BudgetGuard("{url}", start=False)
guard.refresh()
decision = guard.check(tenant_id=tenant, endpoint_tag=endpoint)
assert decision.fresh, guard.last_error
"""
# Checks after a Python block ran (``_doc_result``: what a block run as a function returned).
PYTHON_CHECKS: dict[str, str] = {
    "docs/budgets.md:206": "assert _doc_result is None, f'the handler refused a signed delivery: {_doc_result}'",
    # the demo's support.reply budget is exceeded: the recipe must throttle it
    "docs/budgets.md:275": "assert _doc_raised is not None and _doc_raised.args[0] == 429, _doc_raised",
}
# The reader's app that `opentelemetry-instrument python app.py` runs: one GenAI span.
APP_PY = """
from opentelemetry import trace

import spanmeter

with spanmeter.attribution(endpoint_tag="doc-test.app"):
    with trace.get_tracer("app").start_as_current_span("chat gpt-4o-mini") as span:
        span.set_attribute("gen_ai.provider.name", "openai")
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        span.set_attribute("gen_ai.usage.input_tokens", 100)
        span.set_attribute("gen_ai.usage.output_tokens", 20)
"""
# Blocks whose app sends the test's demo receiver a span: the endpoint tag it must store.
RECEIVED: dict[str, str] = {
    "README.md:80": "checkout.ai_summary",
    "README.md:109": "doc-test.app",
}
# Repository entries linked into a shell block's directory.
REPO_ENTRIES = ("collector_config", "deploy", "scripts", "src")


def _marked(block: Block) -> object:
    reason = KNOWN_FAILING.get(block.id)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(block, id=block.id, marks=marks)


def _runnable(langs: frozenset[str]) -> list[object]:
    return [_marked(block) for block in BLOCKS if block.lang in langs and block.no_run is None]


def _not_runnable() -> list[object]:
    return [_marked(block) for block in BLOCKS if block.no_run is not None]


# ---------------------------------------------------------------------------------------
# The receiver and store the blocks ask


@dataclass(frozen=True)
class DemoStore:
    url: str
    http_port: int
    store: Path
    alert_id: int


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStore]:
    """``spanmeter demo --keep-running`` on free ports: its receiver, and a copy of its store."""
    directory = tmp_path_factory.mktemp("demo")
    log_path = directory / "demo.log"
    env = {**_clean_environment(), "SPANMETER_USER_ID_HASH_KEY": "test-key"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "spanmeter"), "demo", "--keep-running", "--db", str(directory / "demo.db")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        found = None
        while found is None:
            found = re.search(r"add --url (http://127\.0\.0\.1:(\d+))", log_path.read_text())
            if found is None:
                assert process.poll() is None, (
                    f"the demo exited {process.returncode}:\n{log_path.read_text()}"
                )
                assert time.monotonic() < deadline, f"the demo was not ready:\n{log_path.read_text()}"
                time.sleep(0.2)
        copy = directory / "store.db"
        with sqlite3.connect(f"file:{directory / 'demo.db'}?mode=ro", uri=True) as source:
            with sqlite3.connect(copy) as target:
                source.backup(target)
        store = SQLiteStore(str(copy))
        try:
            alert_ids = [alert.id for alert in store.budget_store.list_alerts()]
        finally:
            store.close()
        assert alert_ids, "the demo's store has no alerts"
        yield DemoStore(found[1], int(found[2]), copy, max(alert_ids))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _clean_environment() -> dict[str, str]:
    """The test's environment without spanmeter's and OTel's settings, the virtualenv first on PATH."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SPANMETER_", "OTEL_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    return env


def _substitute(text: str, table: list[tuple[str, str]], **values: str) -> str:
    for pattern, replacement in table:
        text = re.sub(pattern, replacement.format(**values) if values else replacement, text)
    return text


def _doc_files(block: Block) -> dict[str, str]:
    """The YAML blocks of the block's doc that name their file (``# budgets.yaml``): name -> text."""
    files: dict[str, str] = {}
    for other in BLOCKS:
        if other.path == block.path and other.lang in ("yaml", "yml"):
            named = re.match(r"#\s*([\w.-]+\.ya?ml)\b", other.text)
            if named:
                files.setdefault(named[1], other.text)
    return files


def _workdir(block: Block, demo: DemoStore, directory: Path) -> None:
    for entry in REPO_ENTRIES:
        (directory / entry).symlink_to(ROOT / entry)
    shutil.copyfile(demo.store, directory / "spanmeter.db")
    (directory / "var/lib/spanmeter").mkdir(parents=True)
    (directory / "app.py").write_text(APP_PY)
    for name, text in _doc_files(block).items():
        (directory / name).write_text(text)


def _matches(expected: str, lines: list[str]) -> int | None:
    """Index of the first of ``lines`` that ``expected`` describes (``...``: anything)."""
    pattern = re.compile(
        r"\s*" + r".*?".join(re.escape(" ".join(part.split())) for part in expected.split("...")) + r"\s*"
    )
    for index, line in enumerate(lines):
        if pattern.fullmatch(" ".join(line.split())):
            return index
    return None


# ---------------------------------------------------------------------------------------
# Runnable blocks


_EXPORT = re.compile(r"^\s*(?:\$\s+)?export\s+([A-Z][A-Z0-9_]*)=([^\s#]+)", re.M)


def _session_exports(block: Block) -> dict[str, str]:
    """Variables an earlier shell block of the same doc exported: a reader follows a doc in
    one shell session, so a later block may rely on them (e.g. the webhook secret)."""
    exported: dict[str, str] = {}
    for earlier in BLOCKS:
        if earlier.path == block.path and earlier.line < block.line and earlier.lang in SHELL_LANGS:
            exported.update({name: value.strip("'\"") for name, value in _EXPORT.findall(earlier.text)})
    return exported


@pytest.mark.parametrize("block", _runnable(SHELL_LANGS))
def test_shell_block_runs(block: Block, demo: DemoStore, tmp_path: Path) -> None:
    commands = [Command(_substitute(c.text, SHELL_PLACEHOLDERS), c.expected) for c in shell_commands(block)]
    assert commands, f"{block.id}: no command"
    _workdir(block, demo, tmp_path)
    logs = tmp_path / ".doc-test"
    logs.mkdir()
    script = shell_script(commands, background=lambda line: bool(LONG_RUNNING.search(line)), ready=READY)
    env = {
        **_clean_environment(),
        **_session_exports(block),
        "SPANMETER_USER_ID_HASH_KEY": "test-key",
        "SPANMETER_HTTP_PORT": "0",
        "SPANMETER_GRPC_PORT": "0",
        "DOC_HTTP_PORT": str(demo.http_port),
        "DOC_ALERT_ID": str(demo.alert_id),
        "DOC_LOG": str(logs),
    }
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=240)
    finally:
        if process.poll() is None:  # a timeout: the block's whole process group goes
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    current = (logs / "current").read_text().strip() if (logs / "current").exists() else "0"
    if process.returncode != 0:
        index = int(current) if current.isdigit() else len(commands) - 1
        log = logs / str(index)
        printed = log.read_text()[-4000:] if log.exists() else ""
        pytest.fail(
            f"{block.id}: exit {process.returncode} at\n  {single_line(commands[index].text)}\n"
            f"--- its output ---\n{printed}\n--- the script's ---\n{output[-2000:]}"
        )
    assert current == "done"
    for index, command in enumerate(commands):
        lines = (logs / str(index)).read_text().splitlines()
        for expected in command.expected:
            at = _matches(expected, lines)
            assert at is not None, (
                f"{block.id}: `{single_line(command.text)}` did not print\n  {expected}\n"
                f"--- it printed ---\n" + "\n".join(lines)
            )
            lines = lines[at + 1 :]
    _assert_received(block, demo)


@pytest.mark.parametrize("block", _runnable(PYTHON_LANGS))
def test_python_block_runs(block: Block, demo: DemoStore, tmp_path: Path) -> None:
    code = _substitute(block.text, PYTHON_PLACEHOLDERS, url=demo.url)
    try:
        compile(code, block.id, "exec")
    except SyntaxError as error:
        assert "outside function" in str(error), f"{block.id}: {error}"
        code = "def _doc_block():\n" + textwrap.indent(code, "    ") + "\n_doc_result = _doc_block()\n"
    # An app's HTTPException is how a block answers a request: kept, for PYTHON_CHECKS to judge.
    code = f"try:\n{textwrap.indent(code, '    ')}\nexcept HTTPException as _doc_error:\n    _doc_raised = _doc_error\n"
    check = PYTHON_CHECKS.get(block.id, "assert _doc_raised is None, _doc_raised")
    program = "\n".join([PYTHON_PRELUDE.format(url=demo.url), "# --- the block ---", code, check])
    (tmp_path / "block.py").write_text(program)
    env = {**_clean_environment(), "SPANMETER_USER_ID_HASH_KEY": "test-key"}
    done = subprocess.run(
        [sys.executable, "block.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{block.id}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, f"{block.id}:\n{done.stderr}"
    _assert_received(block, demo)


def _assert_received(block: Block, demo: DemoStore) -> None:
    """The span a block's app sent is in the receiver's store (an export can fail silently)."""
    tag = RECEIVED.get(block.id)
    if tag is None:
        return
    url = f"{demo.url}/api/v1/top?by=endpoint_tag&since=1h&where=endpoint_tag={tag}"
    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(url, timeout=5) as answer:
            groups = json.load(answer)["groups"]
        if any(group["endpoint_tag"] == tag for group in groups) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [group["endpoint_tag"] for group in groups] == [tag], f"{block.id}: no span of {tag} was stored"


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id) for b in BLOCKS if b.lang in ("yaml", "yml")])
def test_yaml_block_parses(block: Block) -> None:
    assert isinstance(yaml.safe_load(block.text), dict), f"{block.id}: not a YAML mapping"


# ---------------------------------------------------------------------------------------
# Blocks that cannot run here: structural checks


_REPO_DIRS = frozenset({"collector_config", "deploy", "scripts", "src", "tests"})


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


def _spanmeter_parses(words: list[str]) -> str | None:
    """Whether ``spanmeter WORDS`` parses; in a synopsis, ``[...]`` groups only need their options."""
    line = " ".join(words)
    optional = re.findall(r"\[([^\]]*)\]", line)
    words = re.sub(r"\[[^\]]*\]", " ", line).split()
    command: click.Command = main
    path = ["spanmeter"]
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    if isinstance(command, click.Group):
        return f"{' '.join(path)} needs a subcommand"
    known = {name for param in command.params for name in getattr(param, "opts", [])}
    unknown = [word for group in optional for word in re.findall(r"--?[\w-]+", group) if word not in known]
    if unknown:
        return f"{' '.join(path)}: no option {', '.join(unknown)}"
    try:
        with command.make_context(" ".join(path), words):
            return None
    except click.ClickException as error:
        return f"{' '.join(path)}: {error.format_message()}"


def _entry_points(group: str) -> set[str]:
    return {point.name for point in importlib.metadata.entry_points(group=group)}


def structural_problems(block: Block) -> list[str]:
    """What is wrong with a block that cannot run here, as far as this machine can tell."""
    problems: list[str] = []
    commands = [shell_words(command.text) for command in shell_commands(block)]
    assigned = {
        word.split("=", 1)[0] for words in commands for word in words if re.match(r"[A-Z_][A-Z0-9_]*=", word)
    }
    for words in commands:
        env = dict(word.split("=", 1) for word in words if re.match(r"[A-Z_][A-Z0-9_]*=", word))
        rest = [word for word in words if not re.match(r"[A-Z_][A-Z0-9_]*=", word)]
        program, args = (rest[0], rest[1:]) if rest else ("", [])
        for word in rest:
            if word.split("/", 1)[0] in _REPO_DIRS and not list(ROOT.glob(word)):
                problems.append(f"{word}: no such file in the repository")
        if program == "spanmeter":
            problem = _spanmeter_parses(args)
            if problem:
                problems.append(problem)
        elif program == "make":
            problems += [f"make {t}: no such target" for t in args if t not in _makefile_targets()]
        elif program == "otelcol-contrib":
            config = ROOT / args[args.index("--config") + 1]
            problems += [f"{config.name}: {line}" for line in check_file(config)]
            for name in sorted(set(re.findall(r"\$\{env:(\w+)\}", config.read_text())) - assigned):
                problems.append(f"{config.name} reads ${{env:{name}}}, which the block does not set")
        elif program == "opentelemetry-instrument":
            if not (BIN / program).exists():
                problems.append("opentelemetry-instrument is not installed with spanmeter[dev]")
            configurator = env.get("OTEL_PYTHON_CONFIGURATOR")
            if configurator and configurator not in _entry_points("opentelemetry_configurator"):
                problems.append(f"no OTel configurator entry point named {configurator}")
            exporters = _entry_points("opentelemetry_traces_exporter")
            for name in filter(None, env.get("OTEL_TRACES_EXPORTER", "").split(",")):
                if name not in exporters:
                    problems.append(f"no OTel traces exporter entry point named {name}")
        elif program == "scripts/test-instrumentations":
            groups = {p.name for p in (ROOT / "tests/instrumentations").iterdir() if p.is_dir()}
            if args and not args[0].startswith("-") and args[0] not in groups:
                problems.append(f"no instrumentation group {args[0]}")
        elif program in ("cp", "mkdir", "export", ""):
            pass
        else:
            problems.append(f"{program}: no structural check for it (add one to test_docs.py)")
    return problems


@pytest.mark.parametrize("block", _not_runnable())
def test_block_that_cannot_run_here_is_sound(block: Block) -> None:
    assert block.lang in SHELL_LANGS, f"{block.id}: no-run is for shell blocks"
    assert block.no_run, f"{block.id}: no-run needs a reason"
    problems = structural_problems(block)
    assert not problems, f"{block.id} ({block.no_run}):\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------------------
# The harness itself


def test_the_docs_have_blocks_to_run() -> None:
    runnable = [b for b in BLOCKS if b.lang in SHELL_LANGS | PYTHON_LANGS and b.no_run is None]
    assert len(runnable) >= 15
    assert any(b.path == "README.md" and "spanmeter demo" in b.text for b in runnable)


def test_tables_name_existing_blocks() -> None:
    ids = {b.id: b for b in BLOCKS}
    stale = [key for key in [*KNOWN_FAILING, *PYTHON_CHECKS, *RECEIVED] if key not in ids]
    assert not stale, f"no block opens at {stale}: a doc moved, update the table"
