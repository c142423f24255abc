"""The shipped Grafana dashboards: generated from code, and internally consistent.

What Prometheus and the JSON API answer to the dashboards' queries is checked against real
servers in ``tests/integration/test_prometheus_grafana.py``; here, the files themselves.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
VARIABLES = {"environment", "data_mode", "endpoint_tag", "tenant"}
PG_VARIABLES = {"environment", "data_mode"}
POSTGRES = {"postgres-spend", "postgres-tenants"}
"""The dashboards reading the PostgreSQL store's views (their SQL runs against a real server in
``tests/integration/test_postgres_grafana_views.py``)."""
EXPECTED = {"overview", "endpoints", "tenants", "prompt-versions", "alerts", "data-quality", *POSTGRES}
_VARIABLE_USE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:[:.][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("spanmeter_grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def provisioned_datasources() -> dict[str, str]:
    sources: dict[str, str] = {}
    for path in sorted((GRAFANA / "provisioning" / "datasources").glob("*.yaml")):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            assert source["uid"] not in sources, source["uid"]
            sources[source["uid"]] = source["type"]
    return sources


def variables_of(path: Path) -> set[str]:
    return PG_VARIABLES if path.stem in POSTGRES else VARIABLES


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings(value)]
    if isinstance(node, list):
        return [text for value in node for text in strings(value)]
    return []


def test_every_dashboard_is_shipped() -> None:
    assert {path.stem for path in DASHBOARDS} == EXPECTED


@pytest.mark.skipif(sys.version_info < (3, 11), reason="grafana-foundation-sdk needs Python 3.11+")
def test_committed_json_is_the_generators_output() -> None:
    module = generator()
    documents = module.build_all()
    assert set(documents) == {path.stem for path in DASHBOARDS}
    for path in DASHBOARDS:
        assert path.read_text() == module.render(documents[path.stem]), (
            f"{path.name} is stale: run make dashboards"
        )


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_datasources_resolve_to_provisioned_ones(path: Path) -> None:
    sources = provisioned_datasources()
    assert set(sources.values()) == {
        "prometheus",
        "yesoreyeram-infinity-datasource",
        "grafana-postgresql-datasource",
    }
    dashboard = load(path)
    refs = [panel["datasource"] for panel in dashboard["panels"]]
    refs += [target["datasource"] for panel in dashboard["panels"] for target in panel["targets"]]
    refs += [v["datasource"] for v in dashboard["templating"]["list"] if v.get("datasource")]
    assert refs
    for ref in refs:
        assert sources.get(ref["uid"]) == ref["type"], ref


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_variable_used_is_defined(path: Path) -> None:
    dashboard = load(path)
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert defined == variables_of(path)
    used = set()
    for text in strings(dashboard["panels"]):
        for braced, bare in _VARIABLE_USE.findall(text):
            name = braced or bare
            if not name.startswith("__"):  # Grafana's own: $__range, ${__url_time_range}, ...
                used.add(name)
    assert used, "no panel uses a variable"
    assert used <= defined, used - defined
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target.get("expr", "")
            if "spanmeter_cost" in expr or "spanmeter_attempts" in expr:  # cost queries honour all filters
                for name in VARIABLES:
                    assert f"${name}" in expr, (panel["title"], name)
            if "rawSql" in target:  # every query on the views honours the range and both variables
                assert "$__timeFilter(time)" in target["rawSql"], panel["title"]
                for name in PG_VARIABLES:
                    assert f"${name}" in target["rawSql"], (panel["title"], name)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panel_ids_are_unique_and_panels_do_not_overlap(path: Path) -> None:
    panels = load(path)["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, panel["title"]
        assert grid["x"] + grid["w"] <= 24
        cells |= mine


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_links_carry_time_range_and_variables(path: Path) -> None:
    dashboard = load(path)
    uids = {load(other)["uid"] for other in DASHBOARDS}
    (menu,) = dashboard["links"]
    assert menu["keepTime"] and menu["includeVars"] and menu["tags"] == ["spanmeter"]
    for other in DASHBOARDS:
        assert "spanmeter" in load(other)["tags"]  # so the menu lists every dashboard
    links = [
        link for panel in dashboard["panels"] for link in panel["fieldConfig"]["defaults"].get("links", [])
    ]
    if path.stem not in ("data-quality", "prompt-versions"):
        assert links, "drill-down dashboards need data links"
    for link in links:
        url = link["url"]
        target = re.match(r"^/d/([^?/]+)\?", url)
        assert target and target.group(1) in uids, url
        assert "${__url_time_range}" in url
        for name in variables_of(path):
            assert f"var-{name}=" in url or f"${{{name}:queryparam}}" in url, (url, name)
        if path.stem in POSTGRES:
            assert target.group(1) in {
                load(GRAFANA / "dashboards" / f"{stem}.json")["uid"] for stem in POSTGRES
            }


def test_postgres_datasource_reads_its_connection_from_the_environment() -> None:
    (source,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "spanmeter-postgres.yaml").read_text()
    )["datasources"]
    assert source["uid"] == "spanmeter-postgres"
    settings = {
        "url": source["url"],
        "user": source["user"],
        "database": source["jsonData"]["database"],
        "password": source["secureJsonData"]["password"],
    }
    for name, value in settings.items():
        assert re.fullmatch(r"\$\{SPANMETER_PG_[A-Z]+\}", value), (name, value)
    assert source["jsonData"]["timescaledb"] is False  # $__timeGroup must expand to plain SQL


@pytest.mark.parametrize("path", [p for p in DASHBOARDS if p.stem in POSTGRES], ids=lambda p: p.stem)
def test_postgres_dashboards_read_the_views_only(path: Path) -> None:
    dashboard = load(path)
    queries = [t["rawSql"] for panel in dashboard["panels"] for t in panel["targets"]]
    queries += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert queries
    for query in queries:
        tables = set(re.findall(r"\bFROM\s+([a-z_]+)", query))
        assert tables and tables <= {"spend_minute", "spend_hour", "spend_day", "spend", "leaders"}, (
            query,
            tables,
        )


def test_infinity_datasource_sends_a_read_key_from_the_environment() -> None:
    """The JSON API takes a key once the receiver has one: Infinity sends it as a custom header
    whose value is secure JSON data (encrypted by Grafana), read from ``SPANMETER_READ_KEY``;
    no dashboard carries a header or a key of its own."""
    (source,) = [
        s
        for s in yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "spanmeter.yaml").read_text())[
            "datasources"
        ]
        if s["type"] == "yesoreyeram-infinity-datasource"
    ]
    names = {k: v for k, v in source["jsonData"].items() if re.fullmatch(r"httpHeaderName\d+", k)}
    assert names == {"httpHeaderName1": "Authorization"}
    assert source["secureJsonData"] == {"httpHeaderValue1": "Bearer ${SPANMETER_READ_KEY}"}
    assert "SPANMETER_READ_KEY" not in json.dumps(source["jsonData"])  # never in plain JSON data
    for path in DASHBOARDS:
        text = path.read_text()
        assert "spm_" not in text and "Bearer" not in text, path.name
        for panel in load(path)["panels"]:
            for target in panel.get("targets", []):
                assert not target.get("url_options", {}).get("headers"), (path.name, panel["title"])
