"""The deploy examples (deploy/compose, deploy/kubernetes) hold together.

Docker cannot run containers in the test environment, so the examples are checked as files:
every YAML parses, both Collector configurations pass ``collector-config --check`` and are
what the generator makes, and the names and ports agree across files (Collector -> replicas
on 4317, Prometheus -> replicas on 4318, replicas -> the postgres service, Service ->
Deployment pods). The replica command itself runs against a real PostgreSQL server.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from click.testing import CliRunner

from spanmeter.cli import main
from spanmeter.collector_config import build

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
K8S_DIR = DEPLOY / "kubernetes"
YAML_FILES = sorted([*COMPOSE_DIR.glob("*.y*ml"), *K8S_DIR.glob("*.y*ml")])
SPANMETER = Path(sys.executable).parent / "spanmeter"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _compose() -> dict[str, Any]:
    return _load(COMPOSE_DIR / "docker-compose.yaml")


def _replicas(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Compose services that run ``spanmeter serve``."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if list(svc.get("command", []))[:2] == ["spanmeter", "serve"]
    }


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def _k8s(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    docs = list(yaml.safe_load_all((K8S_DIR / name).read_text()))
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def _collector_in_configmap() -> tuple[dict[str, Any], str]:
    configmap = _k8s("collector.yaml")[("ConfigMap", "otel-collector-config")]
    (key,) = configmap["data"]
    return configmap, key


def _check(path: Path) -> None:
    result = CliRunner().invoke(main, ["collector-config", "--check", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: OK" in result.output


def test_examples_exist_and_every_yaml_parses() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in YAML_FILES}
    assert {
        "compose/docker-compose.yaml",
        "compose/otelcol.yaml",
        "compose/prometheus.yml",
        "kubernetes/spanmeter.yaml",
        "kubernetes/collector.yaml",
    } <= names
    for path in YAML_FILES:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert docs and all(isinstance(d, dict) and d for d in docs), path
    configmap, key = _collector_in_configmap()
    assert isinstance(yaml.safe_load(configmap["data"][key]), dict)
    assert (COMPOSE_DIR / "README.md").is_file() and (K8S_DIR / "README.md").is_file()


def test_collector_configs_pass_check(tmp_path: Path) -> None:
    _check(COMPOSE_DIR / "otelcol.yaml")
    configmap, key = _collector_in_configmap()
    copy = tmp_path / key
    copy.write_text(configmap["data"][key])
    _check(copy)


def test_collector_configs_are_the_generated_ones() -> None:
    """The compose file is the generator's output for the three replicas and Jaeger (plus
    plaintext to Jaeger); the ConfigMap is the shipped DNS-resolver file. Comments aside."""
    replicas = sorted(_replicas(_compose()))
    expected = build("loadbalance", backend="jaeger:4317", replicas=[f"{r}:4317" for r in replicas]).as_dict()
    expected["exporters"]["otlp/backend"]["tls"] = {"insecure": True}
    assert _load(COMPOSE_DIR / "otelcol.yaml") == expected
    configmap, key = _collector_in_configmap()
    assert yaml.safe_load(configmap["data"][key]) == build("loadbalance").as_dict()
    # budgets do not run on a PostgreSQL store yet: no example may say they are global
    for text in ((COMPOSE_DIR / "otelcol.yaml").read_text(), configmap["data"][key]):
        assert "budgets and dedupe are global" not in text


def test_compose_replicas_use_the_postgres_service() -> None:
    compose = _compose()
    services = compose["services"]
    postgres = services["postgres"]
    assert str(postgres["image"]).startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    env = postgres["environment"]
    replicas = _replicas(compose)
    assert len(replicas) == 3
    for name, svc in replicas.items():
        command = list(svc["command"])
        url = urlsplit(_option(command, "--store"))
        assert url.scheme == "postgresql", name
        assert (url.hostname, url.port) == ("postgres", 5432), name
        assert (url.username, url.password) == (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"]), name
        assert url.path == f"/{env['POSTGRES_DB']}", name
        assert _option(command, "--host") == "0.0.0.0", name
        assert "--budgets" not in command  # refused on a PostgreSQL store
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert "/readyz" in " ".join(svc["healthcheck"]["test"]), name
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (COMPOSE_DIR / svc["build"]["context"]).resolve() == ROOT
    # one image and one user-id hash key for all (hashes agree across replicas)
    assert len({svc["image"] for svc in replicas.values()}) == 1
    assert len({svc["environment"]["SPANMETER_USER_ID_HASH_KEY"] for svc in replicas.values()}) == 1


def test_compose_collector_routes_to_the_replicas_and_the_backend() -> None:
    compose = _compose()
    services = compose["services"]
    collector = services["otel-collector"]
    assert "opentelemetry-collector-contrib" in collector["image"]
    config_path = _option([*collector["command"][0].split("=", 1)], "--config")
    (mount,) = [v for v in collector["volumes"] if v.split(":")[1] == config_path]
    assert (COMPOSE_DIR / mount.split(":")[0]).resolve() == COMPOSE_DIR / "otelcol.yaml"
    config = _load(COMPOSE_DIR / "otelcol.yaml")
    resolver = config["exporters"]["loadbalancing/spanmeter"]["resolver"]
    assert set(resolver["static"]["hostnames"]) == {f"{r}:4317" for r in _replicas(compose)}
    backend_host, backend_port = config["exporters"]["otlp/backend"]["endpoint"].split(":")
    assert backend_host in services and backend_port == "4317"
    assert set(collector["depends_on"]) >= set(_replicas(compose))


def test_compose_prometheus_scrapes_every_replica() -> None:
    compose = _compose()
    prometheus = compose["services"]["prometheus"]
    (mount,) = [v for v in prometheus["volumes"] if v.split(":")[1] == "/etc/prometheus/prometheus.yml"]
    assert (COMPOSE_DIR / mount.split(":")[0]).resolve() == COMPOSE_DIR / "prometheus.yml"
    config = _load(COMPOSE_DIR / "prometheus.yml")
    (job,) = config["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{r}:4318" for r in _replicas(compose)}


def test_compose_grafana_provisions_the_shipped_dashboards() -> None:
    compose = _compose()
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[1]: (COMPOSE_DIR / v.split(":")[0]).resolve() for v in grafana["volumes"]}
    grafana_dir = DEPLOY / "grafana"
    assert mounts["/etc/grafana/provisioning/datasources"] == grafana_dir / "provisioning" / "datasources"
    assert mounts["/etc/grafana/provisioning/dashboards"] == grafana_dir / "provisioning" / "dashboards"
    provider = _load(grafana_dir / "provisioning" / "dashboards" / "spanmeter.yaml")
    (dashboards,) = [p["options"]["path"] for p in provider["providers"]]
    assert mounts[dashboards] == grafana_dir / "dashboards"
    assert list((grafana_dir / "dashboards").glob("*.json"))
    datasources = _load(grafana_dir / "provisioning" / "datasources" / "spanmeter.yaml")["datasources"]
    env = grafana["environment"]
    for datasource in datasources:
        variable = re.fullmatch(r"\$\{(\w+)\}", datasource["url"])
        assert variable, datasource["url"]
        url = urlsplit(env[variable.group(1)])
        if datasource["type"] == "prometheus":
            assert (url.hostname, url.port) == ("prometheus", 9090)
        else:
            assert datasource["type"] in env["GF_INSTALL_PLUGINS"].split(",")
            assert url.hostname in _replicas(compose) and url.port == 4318
            # the read key its Authorization header is built from (empty without keys)
            assert "SPANMETER_READ_KEY" in env and "${SPANMETER_READ_KEY" in str(env["SPANMETER_READ_KEY"])


def test_compose_grafana_reaches_the_store_views() -> None:
    compose = _compose()
    env = compose["services"]["grafana"]["environment"]
    (source,) = _load(DEPLOY / "grafana" / "provisioning" / "datasources" / "spanmeter-postgres.yaml")[
        "datasources"
    ]
    settings = {
        "host": source["url"],
        "user": source["user"],
        "database": source["jsonData"]["database"],
        "password": source["secureJsonData"]["password"],
        "sslmode": source["jsonData"]["sslmode"],
    }
    values = {}
    for name, reference in settings.items():
        variable = re.fullmatch(r"\$\{(\w+)\}", reference)
        assert variable, (name, reference)
        values[name] = str(env[variable.group(1)])
    store = urlsplit(compose["services"]["spanmeter-1"]["command"][3])
    assert values["host"] == f"{store.hostname}:{store.port}"
    assert (values["user"], values["password"]) == (store.username, store.password)
    assert values["database"] == store.path.lstrip("/")
    assert values["sslmode"] in ("disable", "require", "verify-ca", "verify-full")


def test_dockerfile_installs_the_postgres_extra_from_the_source() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install '\./\[postgres\]'", text, re.M)
    copied = re.findall(r"^COPY (.+) \S+$", text, re.M)
    sources = [s for line in copied for s in line.split()]
    assert sources and all((ROOT / s).exists() for s in sources)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert all(f"!{s}" in ignore or f"!{s}/" in ignore for s in sources)
    assert re.search(r"^EXPOSE 4317 4318$", text, re.M)
    assert '"--host", "0.0.0.0"' in text


def test_kubernetes_service_selects_the_deployment_and_its_ports() -> None:
    objects = _k8s("spanmeter.yaml")
    deployment = objects[("Deployment", "spanmeter")]
    service = objects[("Service", "spanmeter-headless")]
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert sorted(ports.values()) == [4317, 4318]
    for port in service["spec"]["ports"]:
        assert ports[port["targetPort"]] == port["port"]
    assert {p["port"] for p in service["spec"]["ports"]} == {4317, 4318}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert container[probe]["httpGet"]["path"] == path
        assert ports[container[probe]["httpGet"]["port"]] == 4318
    env = {e["name"]: e for e in container["env"]}
    assert env["SPANMETER_STORE"]["valueFrom"]["secretKeyRef"]["key"] == "url"
    assert _option(container["command"], "--host") == "0.0.0.0"
    assert "--budgets" not in container["command"]


def test_kubernetes_collector_resolves_the_headless_service() -> None:
    objects = _k8s("collector.yaml")
    configmap, key = _collector_in_configmap()
    config = yaml.safe_load(configmap["data"][key])
    resolver = config["exporters"]["loadbalancing/spanmeter"]["resolver"]["dns"]
    assert resolver["hostname"] == "${env:SPANMETER_HEADLESS_SERVICE}"
    headless = _k8s("spanmeter.yaml")[("Service", "spanmeter-headless")]
    assert int(resolver["port"]) in {p["port"] for p in headless["spec"]["ports"]}
    assert int(resolver["port"]) == 4317
    template = objects[("Deployment", "otel-collector")]["spec"]["template"]
    pod = template["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SPANMETER_HEADLESS_SERVICE"]["value"].startswith(f"{headless['metadata']['name']}.")
    used = set(re.findall(r"\$\{env:(\w+)\}", configmap["data"][key]))
    assert used and used <= set(env)
    config_path = Path(_option([*container["args"][0].split("=", 1)], "--config"))
    (volume,) = [v for v in pod["volumes"] if v["configMap"]["name"] == configmap["metadata"]["name"]]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert Path(mount["mountPath"]) / key == config_path
    service = objects[("Service", "otel-collector")]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert {p["port"] for p in service["spec"]["ports"]} == {4317, 4318}


def test_compose_replica_command_serves_on_real_postgresql(postgres_server: Any) -> None:
    """The replicas' command, with the compose URL swapped for a real server's and free
    ports, starts and answers the probes and /metrics the examples rely on."""
    command = list(next(iter(_replicas(_compose()).values()))["command"])
    command[command.index("--store") + 1] = postgres_server.new_database("deploy")
    command[command.index("--host") + 1] = "127.0.0.1"
    argv = [str(SPANMETER), *command[1:], "--grpc-port", "0", "--http-port", "0"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        assert proc.stderr is not None
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else None
        assert port is not None, f"serve exited with {proc.poll()}"
        base = f"http://127.0.0.1:{port}"
        for path in ("/readyz", "/healthz"):
            with urllib.request.urlopen(base + path, timeout=5) as answer:
                assert answer.status == 200
        with urllib.request.urlopen(base + "/metrics", timeout=5) as answer:
            assert "spanmeter_spans_received_total" in answer.read().decode()
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
