"""Environment variables only: OTEL_PYTHON_CONFIGURATOR=spanmeter under opentelemetry-instrument."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

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
