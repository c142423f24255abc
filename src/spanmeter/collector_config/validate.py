"""Structural checks of an OTel Collector configuration, before a Collector ever sees it.

No Collector binary is needed (none is packaged for pip, apt or npm), so this checks what
the Collector itself would refuse at start-up, plus spanmeter's own operating rules::

    >>> problems = validate(yaml.safe_load(open("fanout.yaml")))
    >>> problems  # one readable line per problem, empty when the file is fine
    []

Structure (what ``otelcol validate`` also rejects): every component named in
``service.pipelines`` and ``service.extensions`` is defined in its section, with a type the
Collector contrib distribution has, and only documented keys (see
:mod:`~spanmeter.collector_config.components`); each pipeline has receivers and exporters;
each connector used is an exporter in one pipeline and a receiver in another; a routing
connector only routes to pipelines that receive from it.

Policy (``policy=True``, the default; what keeps a cost pipeline from losing or dropping
data under load): ``memory_limiter`` is the first processor of every pipeline, every pipeline
that ends at a network exporter batches, and the ``health_check`` extension is enabled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, cast

import yaml

from .components import KNOWN_COMPONENTS, SECTIONS, ComponentSpec

__all__ = ["CollectorConfigError", "check_file", "validate", "validate_text"]

_TOP_LEVEL: Final = frozenset({*SECTIONS, "service"})
_SERVICE_KEYS: Final = frozenset({"extensions", "pipelines", "telemetry"})
_PIPELINE_KEYS: Final = frozenset({"receivers", "processors", "exporters"})
_SIGNALS: Final = frozenset({"traces", "metrics", "logs", "profiles"})
_ROUTE_KEYS: Final = frozenset({"statement", "condition", "context", "pipelines", "action"})


class CollectorConfigError(ValueError):
    """A configuration failed validation; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid Collector configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def _type(component_id: str) -> str:
    """``otlp/spanmeter`` -> ``otlp``: the part before the first slash names the type."""
    return component_id.split("/", 1)[0]


def _as_list(value: object) -> list[object] | None:
    return list(cast("list[object]", value)) if isinstance(value, list) else None


def _mapping(value: object) -> Mapping[object, object] | None:
    """``value`` if YAML made it a mapping; its keys are whatever YAML read (not always ``str``)."""
    return cast("Mapping[object, object]", value) if isinstance(value, Mapping) else None


def _check_keys(where: str, value: object, allowed: frozenset[str], problems: list[str]) -> None:
    mapping = _mapping(value)
    if mapping is None:
        return
    for key in mapping:
        if key not in allowed:
            problems.append(
                f"{where}: unknown key {key!r} (documented keys: {', '.join(sorted(allowed)) or 'none'})"
            )


def _nested(config: Mapping[object, object], path: str) -> object:
    value: object = config
    for part in path.split("."):
        mapping = _mapping(value)
        if mapping is None:
            return None
        value = mapping.get(part)
    return value


def _check_component(section: str, component_id: str, value: object, problems: list[str]) -> None:
    where = f"{section}.{component_id}"
    kind = _type(component_id)
    spec: ComponentSpec | None = KNOWN_COMPONENTS[section].get(kind)
    if spec is None:
        known = ", ".join(sorted(KNOWN_COMPONENTS[section]))
        problems.append(f"{where}: unknown {section[:-1]} type {kind!r} (known: {known})")
        return
    config: Mapping[object, object] | None = {} if value is None else _mapping(value)
    if config is None:
        problems.append(f"{where}: must be a mapping, not {type(value).__name__}")
        return
    _check_keys(where, config, spec.keys, problems)
    for options in spec.required:
        if not any(key in config for key in options):
            problems.append(f"{where}: needs {' or '.join(repr(k) for k in sorted(options))}")
    for path, allowed in spec.nested.items():
        _check_keys(f"{where}.{path}", _nested(config, path), allowed, problems)


def _check_routes(
    connector_id: str,
    config: Mapping[object, object],
    receives_from: dict[str, set[str]],
    problems: list[str],
) -> None:
    """A routing connector may only name pipelines that list it as a receiver."""
    where = f"connectors.{connector_id}"
    targets: list[tuple[str, object]] = []
    for index, value in enumerate(_as_list(config.get("table")) or []):
        row_where = f"{where}.table[{index}]"
        row = _mapping(value)
        if row is None:
            problems.append(f"{row_where}: must be a mapping")
            continue
        _check_keys(row_where, row, _ROUTE_KEYS, problems)
        if "statement" not in row and "condition" not in row:
            problems.append(f"{row_where}: needs 'statement' or 'condition'")
        targets += [(row_where, p) for p in _as_list(row.get("pipelines")) or []]
    targets += [(f"{where}.default_pipelines", p) for p in _as_list(config.get("default_pipelines")) or []]
    for row_where, pipeline in targets:
        if not isinstance(pipeline, str) or connector_id not in receives_from.get(pipeline, set()):
            problems.append(
                f"{row_where}: routes to {pipeline!r}, which does not receive from {connector_id!r}"
            )


@dataclass(slots=True)
class _Wiring:
    """How the pipelines use the connectors, gathered while the pipelines are checked and
    judged once all are seen (a connector must be both exported to and received from)."""

    connectors: Mapping[str, object]
    """The connectors section, by id."""
    exported_by: dict[str, set[str]] = field(init=False)
    """Per connector, the pipelines exporting to it."""
    received_by: dict[str, set[str]] = field(init=False)
    """Per connector, the pipelines receiving from it."""
    receives_from: dict[str, set[str]] = field(default_factory=dict[str, set[str]])
    """Per pipeline, the connectors it receives from (routing tables are checked against it)."""

    def __post_init__(self) -> None:
        self.exported_by = {c: set() for c in self.connectors}
        self.received_by = {c: set() for c in self.connectors}


def validate(config: object, *, policy: bool = True) -> list[str]:
    """Every problem found in a parsed Collector configuration, one readable line each.

    Args:
        config: The configuration as parsed from YAML.
        policy: Also apply spanmeter's operating rules (memory_limiter first, batch, health_check).

    Returns:
        The problems; an empty list means the configuration passed.
    """
    document = _mapping(config)
    if document is None:
        return ["the configuration must be a mapping of sections"]
    problems: list[str] = []
    _check_keys("(top level)", document, _TOP_LEVEL, problems)
    defined = _sections(document, problems)
    service = _mapping(document.get("service"))
    if service is None:
        return [*problems, "service: missing (it names the pipelines to run)"]
    _check_keys("service", service, _SERVICE_KEYS, problems)
    _check_extensions(service, defined, policy, problems)
    pipelines = _mapping(service.get("pipelines"))
    if not pipelines:
        return [*problems, "service.pipelines: at least one pipeline is needed"]
    wiring = _Wiring(defined["connectors"])
    for pipeline_id, value in pipelines.items():
        _check_pipeline(str(pipeline_id), value, defined, wiring, policy, problems)
    _check_connectors(wiring, problems)
    return problems


def _sections(document: Mapping[object, object], problems: list[str]) -> dict[str, dict[str, object]]:
    """The components each section defines, by id (each one checked)."""
    defined: dict[str, dict[str, object]] = {}
    for section in SECTIONS:
        components: Mapping[object, object] | None = _mapping(document.get(section) or {})
        if components is None:
            problems.append(f"{section}: must be a mapping of components")
            components = {}
        defined[section] = {str(k): v for k, v in components.items()}
        for component_id, value in defined[section].items():
            _check_component(section, component_id, value, problems)
    return defined


def _check_extensions(
    service: Mapping[object, object], defined: dict[str, dict[str, object]], policy: bool, problems: list[str]
) -> None:
    """Enabled extensions must be defined; the policy wants health_check (probes need it)."""
    extensions = _as_list(service.get("extensions") or [])
    for name in extensions or []:
        if name not in defined["extensions"]:
            problems.append(f"service.extensions: {name!r} is not defined in extensions")
    if policy and not any(_type(str(n)) == "health_check" for n in extensions or []):
        problems.append(
            "service.extensions: enable the health_check extension (load balancers and probes need it)"
        )


def _check_pipeline(
    name: str,
    value: object,
    defined: dict[str, dict[str, object]],
    wiring: _Wiring,
    policy: bool,
    problems: list[str],
) -> None:
    """One pipeline: its signal, its lists and what they name; connectors it uses are
    recorded in ``wiring``."""
    where = f"service.pipelines.{name}"
    if _type(name) not in _SIGNALS:
        problems.append(f"{where}: the pipeline's signal must be one of {', '.join(sorted(_SIGNALS))}")
    pipeline = _mapping(value)
    if pipeline is None:
        problems.append(f"{where}: must be a mapping with receivers, processors, exporters")
        return
    _check_keys(where, pipeline, _PIPELINE_KEYS, problems)
    lists = _pipeline_lists(where, pipeline, problems)
    connectors = wiring.connectors
    for role in ("receivers", "exporters"):
        if not lists[role]:
            problems.append(f"{where}: has no {role}")
        for component in lists[role]:
            if component in connectors:
                (wiring.received_by if role == "receivers" else wiring.exported_by)[component].add(name)
            elif component not in defined[role]:
                problems.append(f"{where}.{role}: {component!r} is not defined in {role} or connectors")
    wiring.receives_from[name] = {c for c in lists["receivers"] if c in connectors}
    for component in lists["processors"]:
        if component not in defined["processors"]:
            problems.append(f"{where}.processors: {component!r} is not defined in processors")
    if policy:
        _check_order(where, lists, connectors, problems)


def _pipeline_lists(
    where: str, pipeline: Mapping[object, object], problems: list[str]
) -> dict[str, list[str]]:
    """The pipeline's receivers, processors and exporters as lists of ids (a non-list
    counts as empty, after its problem is noted)."""
    lists: dict[str, list[str]] = {}
    for role in ("receivers", "processors", "exporters"):
        items = _as_list(pipeline.get(role) or [])
        if items is None:
            problems.append(f"{where}.{role}: must be a list")
            items = []
        lists[role] = [str(i) for i in items]
        if len(set(lists[role])) != len(lists[role]):
            problems.append(f"{where}.{role}: lists a component twice")
    return lists


def _check_order(
    where: str, lists: dict[str, list[str]], connectors: Mapping[str, object], problems: list[str]
) -> None:
    """The policy's processor order: memory_limiter first, batch before network exporters."""
    processors = lists["processors"]
    if not processors or _type(processors[0]) != "memory_limiter":
        problems.append(
            f"{where}.processors: memory_limiter must come first (it refuses data before memory runs out)"
        )
    network = [e for e in lists["exporters"] if e not in connectors]
    if network and not any(_type(p) == "batch" for p in processors):
        problems.append(f"{where}.processors: add batch before the exporters {network!r}")


def _check_connectors(wiring: _Wiring, problems: list[str]) -> None:
    """Each connector must join two pipelines; a routing connector's table must name
    pipelines that receive from it."""
    for connector_id in wiring.connectors:
        exp, rec = wiring.exported_by[connector_id], wiring.received_by[connector_id]
        if exp and not rec:
            problems.append(
                f"connectors.{connector_id}: exported to by {sorted(exp)!r} but no pipeline receives from it"
            )
        if rec and not exp:
            problems.append(
                f"connectors.{connector_id}: received from by {sorted(rec)!r} but no pipeline exports to it"
            )
        routing = _mapping(wiring.connectors[connector_id]) if _type(connector_id) == "routing" else None
        if routing is not None:
            _check_routes(connector_id, routing, wiring.receives_from, problems)


def validate_text(text: str, *, policy: bool = True) -> list[str]:
    """:func:`validate` on YAML text; a YAML syntax error is reported as a problem."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as error:
        return [f"not valid YAML: {error}"]
    return validate(config, policy=policy)


def check_file(path: str | Path, *, policy: bool = True) -> list[str]:
    """:func:`validate` on a YAML file."""
    return validate_text(Path(path).read_text(encoding="utf-8"), policy=policy)
