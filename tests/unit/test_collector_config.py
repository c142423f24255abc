"""Collector configurations: shipped files, the generator, the validator and the CLI.

The shipped files must be exactly what the generator writes with its defaults (so a
change to the generator shows up as a diff of the files people read), they must pass the
validator, and the validator must reject each kind of mistake with a message that names it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from spanmeter.cli.main import main
from spanmeter.collector_config import (
    KINDS,
    build,
    check_file,
    generate,
    shipped,
    validate,
    validate_text,
)

REPO_DIR = Path(__file__).resolve().parents[2] / "collector_config"
REGENERATE = (
    "regenerate with: spanmeter collector-config --kind {kind} -o <file> (package copy and collector_config/)"
)


def _load(kind: str) -> dict[str, Any]:
    return yaml.safe_load(generate(kind))  # type: ignore[arg-type]


# --- shipped files -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_shipped_files_are_the_generator_output(kind: str) -> None:
    expected = generate(kind)  # type: ignore[arg-type]
    package_copy = shipped(kind)  # type: ignore[arg-type]
    repo_copy = (REPO_DIR / f"{kind}.yaml").read_text(encoding="utf-8")
    assert package_copy == expected, REGENERATE.format(kind=kind)
    assert repo_copy == expected, REGENERATE.format(kind=kind)


def test_the_repository_directory_ships_nothing_else() -> None:
    assert sorted(p.name for p in REPO_DIR.glob("*.yaml")) == sorted(f"{k}.yaml" for k in KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_shipped_file_passes_the_validator(kind: str) -> None:
    assert check_file(REPO_DIR / f"{kind}.yaml") == []


def _network_exporters(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return list(config["exporters"].items())


@pytest.mark.parametrize("kind", KINDS)
def test_every_exporter_compresses_queues_retries_and_times_out(kind: str) -> None:
    config = _load(kind)
    for name, exporter in _network_exporters(config):
        transport = exporter["protocol"]["otlp"] if name.startswith("loadbalancing") else exporter
        assert transport["compression"] == "gzip", name
        assert transport["timeout"].endswith("s"), name
        assert exporter["sending_queue"]["enabled"] is True, name
        assert exporter["sending_queue"]["queue_size"] > 0, name
        retry = exporter["retry_on_failure"]
        assert retry["enabled"] is True, name
        assert retry["max_elapsed_time"] != "0s", f"{name}: unbounded retries pin memory forever"
    assert config["service"]["extensions"] == ["health_check"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_value_that_is_not_a_default_is_explained(kind: str) -> None:
    lines = generate(kind).splitlines()  # type: ignore[arg-type]
    comments = "\n".join(line for line in lines if line.lstrip().startswith("#"))
    for topic in ("soft limit", "queue_size", "timeout", "retries", "insecure", "request"):
        assert topic in comments, f"no comment explains {topic!r}"
    # each component definition (second level, before the service section) has a comment
    for index, line in enumerate(lines[: lines.index("service:")]):
        is_component = line.startswith("  ") and not line.startswith(("   ", "  #")) and line.endswith(":")
        if is_component:
            assert lines[index - 1].lstrip().startswith("#"), f"{line.strip()} has no comment above it"


def test_the_spanmeter_side_keeps_genai_spans_only() -> None:
    fanout = _load("fanout")
    assert fanout["service"]["pipelines"]["traces/spanmeter"]["processors"] == [
        "memory_limiter",
        "filter/genai_only",
        "batch",
    ]
    assert fanout["service"]["pipelines"]["traces/backend"]["processors"] == ["memory_limiter", "batch"]
    route = _load("normalize")["connectors"]["routing/genai"]
    assert route["table"][0]["pipelines"] == ["traces/backend", "traces/spanmeter"]
    assert route["default_pipelines"] == ["traces/backend"]


# --- the generator ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("fanout", {"endpoint": "spanmeter.internal:4317", "backend": "tempo.observability:4317"}),
        ("normalize", {"endpoint": "10.0.0.7:4317", "backend": "[::1]:4317"}),
        ("loadbalance", {"replicas": ["sm-0.sm:4317", "sm-1.sm:4317", "sm-2.sm:4317"]}),
        ("loadbalance", {"endpoint": "spanmeter-headless.obs.svc.cluster.local:14317"}),
    ],
)
def test_generated_configurations_round_trip_through_the_validator(
    kind: str, options: dict[str, Any]
) -> None:
    text = generate(kind, **options)  # type: ignore[arg-type]
    assert validate_text(text) == []
    config = yaml.safe_load(text)
    assert config == build(kind, **options).as_dict()  # type: ignore[arg-type]
    assert "${env:SPANMETER_GRPC_ENDPOINT}" not in text
    if "backend" in options:
        assert config["exporters"]["otlp/backend"]["endpoint"] == options["backend"]
        assert "${env:BACKEND_ENDPOINT}" not in text


def test_loadbalance_resolvers() -> None:
    static = build("loadbalance", replicas=["a:4317", "b:4317"]).as_dict()
    assert static["exporters"]["loadbalancing/spanmeter"]["resolver"] == {
        "static": {"hostnames": ["a:4317", "b:4317"]}
    }
    dns = build("loadbalance", endpoint="sm.svc:14317").as_dict()["exporters"]["loadbalancing/spanmeter"]
    assert dns["resolver"]["dns"]["hostname"] == "sm.svc"
    assert dns["resolver"]["dns"]["port"] == "14317"
    assert dns["routing_key"] == "traceID"
    default = _load("loadbalance")["exporters"]["loadbalancing/spanmeter"]["resolver"]["dns"]
    assert default["hostname"] == "${env:SPANMETER_HEADLESS_SERVICE}"


@pytest.mark.parametrize(
    ("kind", "options", "message"),
    [
        ("fanout", {"endpoint": "spanmeter"}, "HOST:PORT"),
        ("fanout", {"endpoint": "http://spanmeter:4317"}, "HOST:PORT"),
        ("fanout", {"backend": "tempo:99999"}, "HOST:PORT"),
        ("fanout", {"replicas": ["a:4317"]}, "loadbalance only"),
        ("loadbalance", {"endpoint": "a:1", "replicas": ["b:4317"]}, "not both"),
        ("sideways", {}, "unknown kind"),
    ],
)
def test_the_generator_rejects_bad_arguments(kind: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(kind, **options)  # type: ignore[arg-type]


# --- the validator: each mistake is caught and named -----------------------------------------


def _mutated(kind: str, change: Any) -> list[str]:
    config = copy.deepcopy(_load(kind))
    change(config)
    return validate(config)


def _pipeline(config: dict[str, Any], name: str) -> dict[str, Any]:
    return config["service"]["pipelines"][name]


def _drop_spanmeter_pipeline(config: dict[str, Any]) -> None:
    del config["service"]["pipelines"]["traces/spanmeter"]


MUTATIONS = [
    (
        "undefined processor",
        "fanout",
        lambda c: _pipeline(c, "traces/spanmeter")["processors"].insert(1, "filter/typo"),
        "'filter/typo' is not defined in processors",
    ),
    (
        "undefined exporter",
        "fanout",
        lambda c: _pipeline(c, "traces/backend").update(exporters=["otlp/jaeger"]),
        "'otlp/jaeger' is not defined in exporters or connectors",
    ),
    (
        "undefined extension",
        "fanout",
        lambda c: c["service"]["extensions"].append("pprof"),
        "'pprof' is not defined in extensions",
    ),
    (
        "memory_limiter not first",
        "fanout",
        lambda c: _pipeline(c, "traces/backend").update(processors=["batch", "memory_limiter"]),
        "traces/backend.processors: memory_limiter must come first",
    ),
    (
        "no batch before a network exporter",
        "normalize",
        lambda c: _pipeline(c, "traces/spanmeter").update(processors=["memory_limiter"]),
        "add batch before the exporters ['otlp/spanmeter']",
    ),
    (
        "unknown key",
        "fanout",
        lambda c: c["exporters"]["otlp/spanmeter"].update(compresion="gzip"),
        "exporters.otlp/spanmeter: unknown key 'compresion'",
    ),
    (
        "unknown nested key",
        "loadbalance",
        lambda c: c["exporters"]["loadbalancing/spanmeter"]["resolver"].update(consul={"service": "x"}),
        "resolver: unknown key 'consul'",
    ),
    (
        "unknown queue key",
        "fanout",
        lambda c: c["exporters"]["otlp/backend"]["sending_queue"].update(size=5),
        "sending_queue: unknown key 'size'",
    ),
    (
        "unknown component type",
        "fanout",
        lambda c: c["processors"].update({"tail_sampler": {}}),
        "unknown processor type 'tail_sampler'",
    ),
    (
        "memory_limiter without a limit",
        "fanout",
        lambda c: c["processors"]["memory_limiter"].pop("limit_percentage"),
        "needs 'limit_mib' or 'limit_percentage'",
    ),
    (
        "dangling connector",
        "normalize",
        _drop_spanmeter_pipeline,
        "routes to 'traces/spanmeter', which does not receive from 'routing/genai'",
    ),
    (
        "connector nobody exports to",
        "normalize",
        lambda c: _pipeline(c, "traces/in").update(exporters=["otlp/backend"]),
        "connectors.routing/genai: received from by ['traces/backend', 'traces/spanmeter'] but no pipeline exports to it",
    ),
    (
        "pipeline without exporters",
        "fanout",
        lambda c: _pipeline(c, "traces/backend").update(exporters=[]),
        "service.pipelines.traces/backend: has no exporters",
    ),
    (
        "pipeline without receivers",
        "fanout",
        lambda c: _pipeline(c, "traces/backend").pop("receivers"),
        "service.pipelines.traces/backend: has no receivers",
    ),
    (
        "bad signal",
        "fanout",
        lambda c: c["service"]["pipelines"].update({"spans/x": c["service"]["pipelines"]["traces/backend"]}),
        "service.pipelines.spans/x: the pipeline's signal must be one of",
    ),
    (
        "no health check",
        "fanout",
        lambda c: c["service"].update(extensions=[]),
        "enable the health_check extension",
    ),
    (
        "route row without a condition",
        "normalize",
        lambda c: c["connectors"]["routing/genai"]["table"][0].pop("condition"),
        "table[0]: needs 'statement' or 'condition'",
    ),
]


@pytest.mark.parametrize(("name", "kind", "change", "message"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_the_validator_names_each_mistake(name: str, kind: str, change: Any, message: str) -> None:
    problems = _mutated(kind, change)
    assert any(message in problem for problem in problems), problems


def test_the_validator_rejects_what_is_not_a_configuration() -> None:
    assert validate([]) == ["the configuration must be a mapping of sections"]
    assert validate_text("receivers: [")[0].startswith("not valid YAML")
    assert any(
        "service: missing" in p for p in validate({"receivers": {"otlp": {"protocols": {"grpc": None}}}})
    )


def test_policy_checks_can_be_turned_off() -> None:
    config = _load("fanout")
    _pipeline(config, "traces/backend")["processors"] = []
    config["service"]["extensions"] = []
    assert validate(config, policy=False) == []
    assert len(validate(config)) == 3  # memory_limiter, batch, health_check


# --- the CLI ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_cli_writes_the_shipped_file_by_default(kind: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["collector-config", "--kind", kind])
    assert result.exit_code == 0, result.output
    assert result.output == (REPO_DIR / f"{kind}.yaml").read_text(encoding="utf-8")
    out = tmp_path / "otelcol.yaml"
    result = CliRunner().invoke(main, ["collector-config", "--kind", kind, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == generate(kind)  # type: ignore[arg-type]


def test_cli_replicas_and_addresses(tmp_path: Path) -> None:
    args = [
        "collector-config",
        "--kind",
        "loadbalance",
        "--replicas",
        "a:4317, b:4317",
        "--backend",
        "tempo:4317",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.output)
    assert config["exporters"]["loadbalancing/spanmeter"]["resolver"]["static"]["hostnames"] == [
        "a:4317",
        "b:4317",
    ]
    assert config["exporters"]["otlp/backend"]["endpoint"] == "tempo:4317"


def test_cli_rejects_a_bad_address() -> None:
    result = CliRunner().invoke(main, ["collector-config", "--endpoint", "spanmeter"])
    assert result.exit_code == 2
    assert "HOST:PORT" in result.output


def test_cli_check(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(generate("fanout"), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(generate("fanout").replace("compression: gzip", "compresion: gzip", 1), encoding="utf-8")
    result = CliRunner().invoke(main, ["collector-config", "--check", str(good)])
    assert result.exit_code == 0
    assert result.output == f"{good}: OK\n"
    result = CliRunner().invoke(main, ["collector-config", "--check", str(good), "--check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: 1 problem(s)" in result.output
    assert "unknown key 'compresion'" in result.output
