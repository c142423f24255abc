"""The Node.js project under ``tests/node_otlp`` (the OpenTelemetry JS SDK's exporters), made
ready for a test: node and npm are found, and ``npm ci`` installs the locked packages into
its ``node_modules`` once per lockfile (a stamp holding the lockfile's hash says it is done,
so later runs cost nothing and a changed lockfile reinstalls).

node and npm missing is a failure, not a skip: the Node SDK's interoperability is part of
what the suite proves, and ``make test`` installs them (``scripts/install-system-deps``).
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["NODE_PROJECT", "NodeProject", "node_project"]

NODE_PROJECT = Path(__file__).resolve().parents[1] / "node_otlp"
"""The project: package.json, package-lock.json and export.js."""

MINIMUM_NODE = (18, 19)
"""The pinned OpenTelemetry JS packages declare ``node: ^18.19.0 || >=20.6.0``."""

_INSTALL = (
    "install them (Debian: `apt-get install nodejs npm`, which `make system-deps` runs; "
    "elsewhere Node.js 18.19+ or 20.6+ with npm from https://nodejs.org), then run the tests again"
)


@dataclass(frozen=True)
class NodeProject:
    """A ready project: the node binary and the directory to run scripts in."""

    node: str
    directory: Path


def _node_version(node: str) -> tuple[int, int]:
    done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True)
    match = re.match(r"v(\d+)\.(\d+)", done.stdout.strip())
    if match is None:
        pytest.fail(f"cannot read the version of {node}: {done.stdout!r}")
    return int(match.group(1)), int(match.group(2))


def _lock_hash(directory: Path) -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((directory / name).read_bytes())
    return digest.hexdigest()


def node_project(directory: Path = NODE_PROJECT) -> NodeProject:
    """node and the project with its locked packages installed, or a failed test saying what
    to install."""
    node, npm = shutil.which("node"), shutil.which("npm")
    missing = [name for name, path in (("node", node), ("npm", npm)) if path is None]
    if node is None or npm is None:
        pytest.fail(
            f"{' and '.join(missing)} not found on PATH; the Node OTel SDK test needs them: {_INSTALL}"
        )
    version = _node_version(node)
    if version < MINIMUM_NODE:
        pytest.fail(f"node {version[0]}.{version[1]} is too old for the OpenTelemetry JS SDK: {_INSTALL}")

    stamp = directory / "node_modules" / ".spanmeter-lock-sha256"
    wanted = _lock_hash(directory)
    with open(directory / ".npm-install.lock", "w") as lock:  # one installer at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.read_text() != wanted:
            done = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
                cwd=directory,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                pytest.fail(
                    f"npm ci in {directory} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
                )
            stamp.write_text(wanted)
    return NodeProject(node=node, directory=directory)
