"""The environment-only plan: what the configurator fills in, and the line it logs."""

from __future__ import annotations

import pytest

from spanmeter.otel_exporter.env_plan import plan_trace_export

HTTP = "http://spanmeter:4318"


@pytest.mark.parametrize(
    ("env", "defaults", "summary"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": HTTP},
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
            "OTLP/HTTP http://spanmeter:4318/v1/traces",
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
            "OTLP/gRPC http://collector:4317",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": HTTP},
            {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
            "OTLP/HTTP http://spanmeter:4318/v1/traces",
        ),
        (  # a protocol that is set is honoured, whatever the port
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": HTTP},
            {"OTEL_TRACES_EXPORTER": "otlp"},
            "OTLP/gRPC http://spanmeter:4318",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://spanmeter:4318/v1/traces"},
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
            "OTLP/HTTP http://spanmeter:4318/v1/traces",
        ),
        (  # the backend on gRPC, spanmeter on HTTP: each its own protocol
            {
                "OTEL_TRACES_EXPORTER": "otlp,spanmeter",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://tempo:4317",
                "SPANMETER_ENDPOINT": HTTP,
            },
            {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "SPANMETER_PROTOCOL": "http/protobuf"},
            "OTLP/gRPC http://tempo:4317; spanmeter exporter (http/protobuf) http://spanmeter:4318",
        ),
        (
            {"SPANMETER_ENDPOINT": HTTP, "SPANMETER_PROTOCOL": "http/protobuf"},
            {"OTEL_TRACES_EXPORTER": "spanmeter"},
            "spanmeter exporter (http/protobuf) http://spanmeter:4318",
        ),
        ({"OTEL_TRACES_EXPORTER": "console"}, {}, "exporter 'console'"),
    ],
)
def test_plan_fills_only_what_is_unset(env: dict[str, str], defaults: dict[str, str], summary: str) -> None:
    plan = plan_trace_export(env)
    assert plan.warning is None
    assert plan.environ_defaults == defaults
    assert not set(defaults) & set(env)
    assert plan.summary() == "spanmeter: traces exported to " + summary


def test_nothing_set_is_a_warning_naming_the_variable() -> None:
    plan = plan_trace_export({"OTEL_SERVICE_NAME": "checkout"})
    assert plan.environ_defaults == {}
    assert plan.warning is not None
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://<spanmeter host>:4318" in plan.warning


def test_none_is_honoured_without_a_warning() -> None:
    plan = plan_trace_export({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": HTTP})
    assert plan.warning is None
    assert plan.environ_defaults == {}
    assert plan.summary() == "spanmeter: traces are not exported (OTEL_TRACES_EXPORTER=none)"
