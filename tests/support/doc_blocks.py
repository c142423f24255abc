"""The fenced code blocks of the docs, and the bash script that runs a shell block as a reader would.

Why a module of its own: the doc test (``tests/integration/test_docs.py``) keeps only its tables
(placeholders, known failures, what a Python block may assume); reading Markdown fences, telling
a command from the output a ``console`` block shows under it, and running long-lived commands in
the background are mechanics that should not hide those tables.

Fence info strings: the first word is the language (``bash``, ``sh``, ``shell``, ``console``,
``python``...); ``no-run: REASON`` after it marks a block that cannot run on a test machine
(it needs otelcol-contrib, Grafana, or recurses into the test suite). GitHub highlights such a
block by its first word as usual.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PYTHON_LANGS",
    "SHELL_LANGS",
    "Block",
    "Command",
    "read_blocks",
    "shell_commands",
    "shell_script",
    "shell_words",
    "single_line",
]

SHELL_LANGS = frozenset({"bash", "sh", "shell", "console"})
PYTHON_LANGS = frozenset({"python"})
_OPEN = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^`]*)$")
_CLOSE = re.compile(r"^[ \t]*```[ \t]*$")
_NO_RUN = "no-run:"
_TRAILING_COMMENT = re.compile(r"\s+#[^'\"]*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, and its text without the fence's indent."""

    path: str
    line: int
    lang: str
    no_run: str | None
    text: str

    @property
    def id(self) -> str:
        """``README.md:55``: the file and the line of the opening fence."""
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Command:
    """A command as written (continuation lines kept) and the output a console block shows under it."""

    text: str
    expected: tuple[str, ...] = ()


def read_blocks(root: Path, files: Iterable[Path]) -> list[Block]:
    """Every fenced block of ``files`` (paths below ``root``), in order."""
    found: list[Block] = []
    for file in files:
        lines = file.read_text(encoding="utf-8").splitlines()
        index = 0
        while index < len(lines):
            opening = _OPEN.match(lines[index])
            if opening is None:
                index += 1
                continue
            start, indent = index, len(opening["indent"])
            words = opening["info"].strip().split(None, 1)
            lang = words[0].lower() if words else ""
            rest = words[1].strip() if len(words) > 1 else ""
            no_run = rest[len(_NO_RUN) :].strip() if rest.startswith(_NO_RUN) else None
            body: list[str] = []
            index += 1
            while index < len(lines) and not _CLOSE.match(lines[index]):
                line = lines[index]
                body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
                index += 1
            index += 1
            text = "\n".join(body) + "\n"
            found.append(Block(str(file.relative_to(root)), start + 1, lang, no_run, text))
    return found


def shell_commands(block: Block) -> list[Command]:
    """The commands of a shell block.

    In a ``console`` block that has ``$ `` prompts, the prompted lines (and their ``\\``
    continuations) are the commands and the other lines the output shown for the command above
    them; otherwise every line that is not blank or a comment is a command.
    """
    lines = block.text.splitlines()
    prompted = block.lang == "console" and any(line.startswith("$ ") for line in lines)
    commands: list[Command] = []
    current: list[str] = []
    expected: list[str] = []

    def flush() -> None:
        if current:
            commands.append(Command("\n".join(current), tuple(expected)))
        current.clear()
        expected.clear()

    for line in lines:
        if current and current[-1].rstrip().endswith("\\"):
            current.append(line)
        elif prompted and line.startswith("$ "):
            flush()
            current.append(line[2:])
        elif prompted:
            if line.strip() and current:
                expected.append(line.rstrip())
        elif line.strip() and not line.lstrip().startswith("#"):
            flush()
            current.append(line)
    flush()
    return commands


def single_line(command: str) -> str:
    """The command with its ``\\`` continuations joined."""
    return re.sub(r"\\\n\s*", " ", command)


def shell_words(command: str) -> list[str]:
    """The command's words, comments dropped."""
    return shlex.split(single_line(command), comments=True)


_PRELUDE = r"""set -e -o pipefail
_doc_pids=()
_doc_stop() {
  local rc=$? pid code
  for pid in "${_doc_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${_doc_pids[@]}"; do
    code=0; wait "$pid" || code=$?
    if [ "$code" -ne 0 ]; then
      echo "doc-test: a background command (pid $pid) exited $code after SIGTERM" >&2
      [ "$rc" -ne 0 ] || rc=1
    fi
  done
  exit "$rc"
}
trap _doc_stop EXIT
_doc_ready() {  # PID LOG: wait until the command says where it listens; DOC_HTTP_PORT is that port
  local pid=$1 log=$2 i port
  for ((i = 0; i < 1800; i++)); do
    port=$(sed -n -E 's#READY_PATTERN#\2#p' "$log" 2>/dev/null | head -n 1 || true)
    if [ -n "$port" ]; then DOC_HTTP_PORT=$port; return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "doc-test: the background command exited before it was ready" >&2; return 1
    fi
    sleep 0.1
  done
  echo "doc-test: the background command was not ready after 180 s" >&2; return 1
}
"""


def shell_script(commands: list[Command], *, background: Callable[[str], bool], ready: str) -> str:
    """A bash script running ``commands`` in order, each one's output in ``$DOC_LOG/<index>``.

    ``$DOC_LOG/current`` holds the index of the command running, so a failure names it. A
    command ``background`` selects (a receiver) runs in the background until the script ends,
    then gets SIGTERM and must exit 0. The script goes on once its output matches ``ready``
    (a ``sed -E`` pattern whose group 2 is the HTTP port, stored in ``DOC_HTTP_PORT``);
    consecutive background commands start together, then are waited for in order.
    """
    parts = [_PRELUDE.replace("READY_PATTERN", ready)]
    waiting: list[str] = []

    def wait_for_started() -> None:
        for index in waiting:
            parts.append(f'echo {index} > "$DOC_LOG/current"')
            parts.append(f'_doc_ready "$_doc_pid_{index}" "$DOC_LOG/{index}"')
        waiting.clear()

    for index, command in enumerate(commands):
        log = f'"$DOC_LOG/{index}"'
        if background(single_line(command.text)):
            lines = command.text.splitlines()
            lines[-1] = _TRAILING_COMMENT.sub("", lines[-1])
            parts.append(f'echo {index} > "$DOC_LOG/current"')
            parts.append("\n".join(lines) + f" > {log} 2>&1 < /dev/null &")
            parts.append(f"_doc_pid_{index}=$!; _doc_pids+=($!)")
            waiting.append(str(index))
            continue
        wait_for_started()
        parts.append(f'echo {index} > "$DOC_LOG/current"')
        parts.append(f"{{\n{command.text}\n}} > {log} 2>&1 < /dev/null")
    wait_for_started()
    parts.append('echo done > "$DOC_LOG/current"')
    return "\n".join(parts) + "\n"
