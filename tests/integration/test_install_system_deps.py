"""scripts/install-system-deps (what `make test` runs first): it installs what is missing when
it can, and otherwise fails saying what is missing, why, and what to run.

The script runs for real under bash, with a PATH holding only stubs of the system commands
it asks about (id, sudo, apt-get, the packages' binaries), so each situation is exact.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-system-deps"
BASH = shutil.which("bash") or "/bin/bash"


def stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{BASH}\n{body}\n")
    path.chmod(0o755)


def run(
    tmp_path: Path, *, uid: int, commands: dict[str, str], node: tuple[str, ...] = ("node", "npm")
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run the script with stub commands (``node`` and ``npm`` present unless left out of
    ``node``); returns the result and the stubs' call log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    stub(bin_dir, "id", f"echo {uid}")
    for name in node:
        stub(bin_dir, name, "")
    for name, body in commands.items():
        stub(bin_dir, name, f'echo "{name} $*" >> {log}\n{body}')
    done = subprocess.run(
        [BASH, str(SCRIPT)],
        env={"PATH": str(bin_dir)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done, log.read_text() if log.exists() else ""


INSTALLED = {"chromium": "", "prometheus": "", "promtool": ""}


def test_nothing_missing_installs_nothing(tmp_path: Path) -> None:
    done, calls = run(tmp_path, uid=1000, commands={**INSTALLED, "apt-get": "exit 1"})
    assert done.returncode == 0, done.stderr
    assert calls == ""


def test_as_root_with_apt_get_it_installs_what_is_missing(tmp_path: Path) -> None:
    done, calls = run(tmp_path, uid=0, commands={"chromium": "", "apt-get": "", "env": 'shift; "$@"'})
    assert done.returncode == 0, done.stderr
    assert "apt-get update -qq" in calls
    assert "apt-get install -y -qq prometheus" in calls  # promtool is missing: its package
    assert "chromium" not in calls.split("install", 1)[1]


def test_without_apt_get_it_says_what_to_install(tmp_path: Path) -> None:
    done, calls = run(tmp_path, uid=0, commands={"prometheus": "", "promtool": ""})
    assert done.returncode == 1
    assert "install-system-deps: missing: chromium" in done.stderr
    assert "No apt-get here" in done.stderr
    assert "then run make test again" in done.stderr
    assert "weekly report" in done.stderr  # why it is needed
    assert calls == ""


def test_not_root_without_sudo_it_says_to_run_as_root(tmp_path: Path) -> None:
    done, calls = run(tmp_path, uid=1000, commands={"apt-get": "exit 1"})
    assert done.returncode == 1
    assert "missing: chromium prometheus" in done.stderr
    assert "run, as root, apt-get install -y chromium prometheus" in done.stderr
    assert "apt-get" not in calls


@pytest.mark.parametrize("sudo_works", [False, True], ids=["sudo-needs-a-password", "passwordless-sudo"])
def test_not_root_with_sudo(tmp_path: Path, sudo_works: bool) -> None:
    sudo = 'shift; if [ "$1" = true ]; then exit 1; fi; "$@"' if not sudo_works else 'shift; "$@"'
    commands = {"apt-get": "", "env": 'shift; "$@"', "sudo": sudo}
    done, calls = run(tmp_path, uid=1000, commands=commands)
    if sudo_works:
        assert done.returncode == 0, done.stderr
        assert "sudo -n apt-get install" in calls or "sudo -n env DEBIAN_FRONTEND" in calls
        assert "apt-get install -y -qq chromium prometheus" in calls
    else:
        assert done.returncode == 1
        assert "sudo needs a password: run sudo ./scripts/install-system-deps" in done.stderr
        assert "apt-get" not in calls


def test_a_failing_install_says_what_to_run(tmp_path: Path) -> None:
    apt = 'if [ "$1" = install ]; then echo "E: Unable to locate package chromium" >&2; exit 100; fi'
    done, _ = run(tmp_path, uid=0, commands={"apt-get": apt, "env": 'shift; "$@"'})
    assert done.returncode == 1
    assert "Unable to locate package chromium" in done.stderr
    assert "apt-get install failed" in done.stderr
    assert "sudo apt-get install -y chromium prometheus yourself" in done.stderr


@pytest.mark.parametrize(
    ("present", "installed"), [((), "nodejs npm"), (("node",), "npm")], ids=["no-node", "no-npm"]
)
def test_node_and_npm_are_installed_when_missing(
    tmp_path: Path, present: tuple[str, ...], installed: str
) -> None:
    commands = {**INSTALLED, "apt-get": "", "env": 'shift; "$@"'}
    done, calls = run(tmp_path, uid=0, commands=commands, node=present)
    assert done.returncode == 0, done.stderr
    assert f" {installed} with apt-get" in done.stderr
    assert "OpenTelemetry JS SDK" in done.stderr  # why it is needed
    install = calls.splitlines()[-1]
    assert install.endswith(f" {installed}") and "chromium" not in install
