"""Environment variables only: OTEL_PYTHON_CONFIGURATOR=spanmeter under opentelemetry-instrument.

The README's lines are read from README.md and run as written (the host replaced by a real
receiver on a free port), in a clean environment: no OTEL_* or SPANMETER_* variable but
theirs, and no opentelemetry-distro to fill in defaults.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from spanmeter.service import ReceiverService, ServeConfig
from support.openai_stub import StubUsage, openai_stub
from support.otlp_capture import otlp_capture

APP = textwrap.dedent(
    """
    import sys
    import openai
    import spanmeter

    client = openai.OpenAI(base_url=sys.argv[1], api_key="test", max_retries=0)
    with spanmeter.attribution(endpoint_tag="support.reply", tenant_id="t_env", user_id="erin"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    print("app done")
    """
)


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.mark.parametrize("exporter", ["otlp", "spanmeter"])
def test_env_only_setup_prices_and_attributes(tmp_path: Path, exporter: str) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    with (
        otlp_capture() as receiver,
        openai_stub(
            StubUsage(prompt_tokens=1000, cached_tokens=0, completion_tokens=200, model="gpt-4o-2024-08-06")
        ) as (stub_url, _),
    ):
        env = {
            **os.environ,
            "OTEL_PYTHON_CONFIGURATOR": "spanmeter",
            "OTEL_SERVICE_NAME": "env-only-app",
            "OTEL_TRACES_EXPORTER": exporter,
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "SPANMETER_ENDPOINT": receiver.url,
            "SPANMETER_USER_ID_HASH_KEY": "test-key",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        done = subprocess.run(
            [_bin("opentelemetry-instrument"), sys.executable, str(app), stub_url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "app done" in done.stdout
        deadline = time.monotonic() + 10
        while not any(s.name.startswith("chat") for s in receiver.spans) and time.monotonic() < deadline:
            time.sleep(0.05)
    (chat,) = [s for s in receiver.spans if s.name.startswith("chat")]
    assert chat.resource["service.name"] == "env-only-app"
    # gpt-4o: $2.50 input, $10.00 output per 1M tokens
    assert chat.attributes["spanmeter.cost.nano_usd"] == 1000 * 2500 + 200 * 10_000
    assert chat.attributes["spanmeter.pricing.model"] == "gpt-4o"
    assert chat.attributes["spanmeter.endpoint_tag"] == "support.reply"
    assert chat.attributes["spanmeter.tenant_id"] == "t_env"
    assert chat.attributes["user.id"].startswith("uh_")


# --- the README's lines, as written, against a real receiver -------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"
DOCUMENTED_HOST = "http://spanmeter:4318"

ENV_APP = textwrap.dedent(
    """
    import openai
    import spanmeter

    client = openai.OpenAI(max_retries=0)  # OPENAI_BASE_URL and OPENAI_API_KEY
    with spanmeter.attribution(endpoint_tag="support.reply", tenant_id="t_env"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    print("app done")
    """
)


def readme_env_only_lines() -> tuple[dict[str, str], list[str]]:
    """The variables and the command of README's "Environment variables only" block."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Environment variables only", 1)[1]
    blocks = [part.split("```", 1)[0] for part in section.split("```bash\n")[1:]]
    (block,) = [b for b in blocks[:3] if "OTEL_PYTHON_CONFIGURATOR" in b]
    words = shlex.split(block.replace("\\\n", " "))
    env: dict[str, str] = {}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def clean_environ() -> dict[str, str]:
    """This process's environment without any OTEL_* or SPANMETER_* setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPANMETER_"))}


def stored_by_endpoint(service: ReceiverService) -> dict[str, dict[str, object]]:
    url = f"http://127.0.0.1:{service.http_port}/api/v1/top?by=endpoint_tag&since=1h"
    with urllib.request.urlopen(url, timeout=10) as response:
        return {group["endpoint_tag"]: group for group in json.loads(response.read())["groups"]}


def test_the_readme_block_is_the_one_tested() -> None:
    env, command = readme_env_only_lines()
    assert env == {
        "OTEL_PYTHON_CONFIGURATOR": "spanmeter",
        "OTEL_SERVICE_NAME": "checkout",
        "OTEL_EXPORTER_OTLP_ENDPOINT": DOCUMENTED_HOST,
    }
    assert command == ["opentelemetry-instrument", "python", "app.py"]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({}, id="readme-as-written"),
        pytest.param({"OTEL_TRACES_EXPORTER": "otlp"}, id="otlp-named-defaults-to-http"),
        pytest.param({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, id="grpc-protocol-honoured"),
        pytest.param({"OTEL_TRACES_EXPORTER": "spanmeter", "SPANMETER_ENDPOINT": "http"}, id="spanmeter"),
    ],
)
def test_env_only_lines_store_priced_spans_in_a_real_receiver(tmp_path: Path, extra: dict[str, str]) -> None:
    app = tmp_path / "app.py"
    app.write_text(ENV_APP)
    documented, command = readme_env_only_lines()
    config = ServeConfig(db=str(tmp_path / "spans.db"), grpc_port=0, http_port=0, store_process=False)
    with (
        ReceiverService(config) as service,
        openai_stub(
            StubUsage(prompt_tokens=1000, cached_tokens=0, completion_tokens=200, model="gpt-4o-2024-08-06")
        ) as (stub_url, _),
    ):
        http_url = f"http://127.0.0.1:{service.http_port}"
        grpc_url = f"http://127.0.0.1:{service.grpc_port}"
        env = clean_environ() | {"OPENAI_BASE_URL": stub_url, "OPENAI_API_KEY": "test"}
        env |= {k: v.replace(DOCUMENTED_HOST, http_url) for k, v in documented.items()}
        if extra.get("OTEL_EXPORTER_OTLP_PROTOCOL") == "grpc":  # the gRPC port, named as such
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = grpc_url
        env |= {k: http_url if v == "http" else v for k, v in extra.items()}
        done = subprocess.run(
            [_bin(command[0]), sys.executable, str(app)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "app done" in done.stdout
        # the exporter had its answer, so the span is committed: no waiting
        stored = stored_by_endpoint(service)
    assert stored["support.reply"]["attempts"] == 1
    assert stored["support.reply"]["cost_nano_usd"] == 1000 * 2500 + 200 * 10_000
    assert "no span will be exported" not in done.stderr


def run_instrumented(tmp_path: Path, env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "app.py"
    app.write_text(code)
    return subprocess.run(
        [_bin("opentelemetry-instrument"), sys.executable, str(app)],
        env=clean_environ() | {"OTEL_PYTHON_CONFIGURATOR": "spanmeter"} | env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_nothing_to_export_is_warned_once_and_the_app_runs(tmp_path: Path) -> None:
    code = "from opentelemetry import trace\n"
    code += "with trace.get_tracer('t').start_as_current_span('work'): pass\nprint('app done')\n"
    done = run_instrumented(tmp_path, {"OTEL_SERVICE_NAME": "quiet"}, code)
    assert done.returncode == 0, done.stderr
    assert "app done" in done.stdout
    assert done.stderr.count("spanmeter: no span will be exported") == 1, done.stderr
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://<spanmeter host>:4318" in done.stderr


def test_where_spans_go_is_logged_once_at_info(tmp_path: Path) -> None:
    # the configurator runs before the app, so logging is set up the way it would be
    # with the SDK's logging auto-instrumentation: here, by initialising by hand
    code = textwrap.dedent(
        """
        import logging
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        from opentelemetry.instrumentation.auto_instrumentation import initialize
        initialize()
        print("app done")
        """
    )
    env = clean_environ() | {
        "OTEL_PYTHON_CONFIGURATOR": "spanmeter",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    }
    app = tmp_path / "app.py"
    app.write_text(code)
    done = subprocess.run(
        [sys.executable, str(app)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    line = "INFO spanmeter: traces exported to OTLP/HTTP http://127.0.0.1:9/v1/traces"
    assert done.stderr.count(line) == 1, done.stderr
    assert "no span will be exported" not in done.stderr


def test_a_failing_setup_is_logged_and_the_app_runs(tmp_path: Path) -> None:
    # http/json: a protocol the Python SDK has no exporter for, so its setup raises
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
    done = run_instrumented(tmp_path, env, "print('app done')\n")
    assert done.returncode == 0, done.stderr
    assert "app done" in done.stdout
    assert done.stderr.count("spanmeter: configuring OpenTelemetry failed") == 1, done.stderr
    assert "Unsupported OTLP protocol 'http/json'" in done.stderr


def test_the_instrument_extra_brings_the_opentelemetry_instrument_command() -> None:
    requirements = importlib.metadata.requires("spanmeter") or []
    (instrument,) = [r for r in requirements if "extra == 'instrument'" in r or 'extra == "instrument"' in r]
    assert instrument.startswith("opentelemetry-instrumentation>=")
    spec = instrument.split(";")[0].strip()
    assert any(r.startswith(spec) and "extra == 'dev'" in r for r in requirements)  # so CI has it
    scripts = importlib.metadata.distribution("opentelemetry-instrumentation").entry_points
    assert "opentelemetry-instrument" in {e.name for e in scripts if e.group == "console_scripts"}
