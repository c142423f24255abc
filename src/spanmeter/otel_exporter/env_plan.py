"""Where ``OTEL_PYTHON_CONFIGURATOR=spanmeter`` sends spans, decided from the environment.

The OTel SDK alone exports nothing when ``OTEL_TRACES_EXPORTER`` is unset (only
opentelemetry-distro defaults it to ``otlp``), and maps ``otlp`` to gRPC when no protocol is
set, which fails silently against spanmeter's HTTP port 4318. So the documented
environment-only setup (``OTEL_EXPORTER_OTLP_ENDPOINT`` and nothing else) would send
nothing, and ``OTEL_TRACES_EXPORTER=otlp`` alone would send to the wrong protocol. This
module fills those two gaps, honours every variable that is set, and says in one line where
spans go (or that they go nowhere), so a misconfiguration is visible at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from ..environment_variables import SPANMETER_ENDPOINT, SPANMETER_PROTOCOL

__all__ = ["ExportPlan", "plan_trace_export"]

TRACES_EXPORTER: Final = "OTEL_TRACES_EXPORTER"
OTLP_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
OTLP_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_PROTOCOL"
TRACES_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"


@dataclass(frozen=True)
class ExportPlan:
    """What the configurator sets before handing over to the SDK's own setup.

    Attributes:
        environ_defaults: Variables to set because they are unset (the exporters, the OTLP
            traces protocol): the SDK reads them, and so do instrumented child processes,
            as with opentelemetry-distro's own defaults.
        destinations: One phrase per exporter, for the start-up log line.
        warning: Why nothing will be exported, when nothing will (else ``None``).
    """

    environ_defaults: dict[str, str] = field(default_factory=dict[str, str])
    destinations: list[str] = field(default_factory=list[str])
    warning: str | None = None

    def summary(self) -> str:
        """The start-up line: where spans go."""
        if not self.destinations:
            return "spanmeter: traces are not exported (OTEL_TRACES_EXPORTER=none)"
        return "spanmeter: traces exported to " + "; ".join(self.destinations)


def _port(url: str) -> int | None:
    try:
        return urlsplit(url if "//" in url else "//" + url).port
    except ValueError:
        return None


def _default_protocol(endpoint: str | None) -> str:
    """OTLP/HTTP (spanmeter's 4318) unless the endpoint names the gRPC port 4317."""
    return "grpc" if endpoint and _port(endpoint) == 4317 else "http/protobuf"


def _otlp_destination(protocol: str, env: Mapping[str, str]) -> str:
    traces_endpoint = env.get(TRACES_ENDPOINT, "").strip()
    endpoint = env.get(OTLP_ENDPOINT, "").strip()
    if protocol == "grpc":
        return f"OTLP/gRPC {traces_endpoint or endpoint or 'http://localhost:4317'}"
    if traces_endpoint:
        return f"OTLP/HTTP {traces_endpoint}"
    base = endpoint.rstrip("/") or "http://localhost:4318"
    return f"OTLP/HTTP {base}/v1/traces"


def _spanmeter_destination(protocol: str, env: Mapping[str, str]) -> str:
    target = env.get(SPANMETER_ENDPOINT, "").strip() or "the OTLP endpoint"
    return f"spanmeter exporter ({protocol}) {target}"


def plan_trace_export(env: Mapping[str, str]) -> ExportPlan:
    """Decide the trace exporters from ``env`` (``os.environ``); the caller applies the plan.

    * ``OTEL_TRACES_EXPORTER`` set: used as is (``none``: nothing exported).
    * Unset: ``otlp`` when ``OTEL_EXPORTER_OTLP[_TRACES]_ENDPOINT`` is set, plus the
      ``spanmeter`` exporter when ``SPANMETER_ENDPOINT`` is set; neither: a warning.
    * The protocol, when no protocol variable is set, is ``http/protobuf`` (``grpc`` for an
      endpoint on port 4317) instead of the SDK's gRPC; for the ``spanmeter`` exporter,
      judged by ``SPANMETER_ENDPOINT``.
    """
    endpoint = env.get(TRACES_ENDPOINT, "").strip() or env.get(OTLP_ENDPOINT, "").strip() or None
    spanmeter_endpoint = env.get(SPANMETER_ENDPOINT, "").strip() or None
    defaults: dict[str, str] = {}
    named = env.get(TRACES_EXPORTER, "").strip()
    if named:
        names = [] if named.lower() == "none" else [n.strip() for n in named.split(",") if n.strip()]
    else:
        names = [n for n, wanted in (("otlp", endpoint), ("spanmeter", spanmeter_endpoint)) if wanted]
        if not names:
            return ExportPlan(
                warning=(
                    "spanmeter: no span will be exported: OTEL_TRACES_EXPORTER, "
                    "OTEL_EXPORTER_OTLP_ENDPOINT and SPANMETER_ENDPOINT are all unset; set "
                    "OTEL_EXPORTER_OTLP_ENDPOINT=http://<spanmeter host>:4318"
                )
            )
        defaults[TRACES_EXPORTER] = ",".join(names)
    explicit = (env.get(TRACES_PROTOCOL) or env.get(OTLP_PROTOCOL) or "").strip()
    otlp_protocol = explicit
    if not explicit and "otlp" in names:
        otlp_protocol = defaults[TRACES_PROTOCOL] = _default_protocol(endpoint)
    spanmeter_protocol = (env.get(SPANMETER_PROTOCOL) or "").strip() or explicit
    if not spanmeter_protocol and "spanmeter" in names:
        # pinned: the protocol defaulted for the OTLP endpoint must not reach this exporter
        spanmeter_protocol = defaults[SPANMETER_PROTOCOL] = _default_protocol(spanmeter_endpoint or endpoint)
    destinations: list[str] = []
    for name in names:
        if name == "otlp":
            destinations.append(_otlp_destination(otlp_protocol, env))
        elif name in ("otlp_proto_http", "otlp_proto_grpc"):
            destinations.append(_otlp_destination("grpc" if name.endswith("grpc") else "http/protobuf", env))
        elif name == "spanmeter":
            destinations.append(_spanmeter_destination(spanmeter_protocol, env))
        else:
            destinations.append(f"exporter {name!r}")
    return ExportPlan(environ_defaults=defaults, destinations=destinations)
