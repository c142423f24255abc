"""The three Collector configurations spanmeter ships, as data.

* ``fanout``: every span to the team's trace backend, GenAI spans only to spanmeter (two
  pipelines sharing one OTLP receiver; the ``filter`` processor drops the rest from the
  spanmeter copy).
* ``normalize``: the same fan-out, with vendor attribute names copied to OTel ``gen_ai.*``
  names first (``transform`` processor) so the backend sees one naming convention too, and
  the split done once by a ``routing`` connector.
* ``loadbalance``: ``fanout`` with the spanmeter side spread over several receiver
  replicas by trace id (``loadbalancing`` exporter, DNS or static resolver).

Every value that is not a Collector default carries its reason in a comment. The defaults
of :func:`build` (environment-variable placeholders the Collector expands at start-up) are
what the shipped files contain::

    >>> text = render(build("fanout", endpoint="spanmeter.internal:4317", backend="tempo:4317"))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final, Literal

from .genai import genai_condition, non_genai_condition, normalizing_statements
from .render import Component, Document

__all__ = ["DEFAULT_BACKEND", "DEFAULT_ENDPOINT", "DEFAULT_HEADLESS_SERVICE", "KINDS", "Kind", "build"]

Kind = Literal["fanout", "normalize", "loadbalance"]
KINDS: Final[tuple[Kind, ...]] = ("fanout", "normalize", "loadbalance")

DEFAULT_ENDPOINT: Final = "${env:SPANMETER_GRPC_ENDPOINT}"
"""spanmeter's OTLP/gRPC address, host:port (``spanmeter serve`` listens on 4317)."""
DEFAULT_BACKEND: Final = "${env:BACKEND_ENDPOINT}"
"""The existing trace backend's OTLP/gRPC address, host:port."""
DEFAULT_HEADLESS_SERVICE: Final = "${env:SPANMETER_HEADLESS_SERVICE}"
"""A DNS name resolving to every spanmeter replica (a Kubernetes headless Service)."""
_DEFAULT_PORT: Final = "4317"

_HOST_PORT: Final = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")
_PLACEHOLDER: Final = re.compile(r"^\$\{[^}]+\}$")


def _check_address(value: str, what: str) -> str:
    """``host:port`` or a Collector ``${...}`` placeholder; anything else is a mistake."""
    value = value.strip()
    if _PLACEHOLDER.match(value):
        return value
    match = _HOST_PORT.match(value)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"{what} must be HOST:PORT (an OTLP/gRPC address), got {value!r}")
    return value


def _split(address: str) -> tuple[str, str]:
    host, _, port = address.rpartition(":")
    return host, port


# --- shared components --------------------------------------------------------------------

_RECEIVER = Component(
    "otlp",
    {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}, "http": {"endpoint": "0.0.0.0:4318"}}},
    "Applications send OTLP here (gRPC 4317, HTTP 4318). Bound to all interfaces because the\n"
    "Collector usually runs as its own container or host. If spanmeter runs on the same host,\n"
    "move one of them: both default to 4317/4318.",
)

_MEMORY_LIMITER = Component(
    "memory_limiter",
    {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20},
    "First in every pipeline: above the soft limit (80% - 20% = 60% of the container's memory)\n"
    "the receiver answers 'retry later' instead of accepting data it cannot hold, so SDKs keep\n"
    "their spans and resend them. Percentages follow the cgroup limit, so the same file fits\n"
    "any container size; checked every second, as the processor's README suggests.",
)

_BATCH = Component(
    "batch",
    {"send_batch_size": 1024, "send_batch_max_size": 2048, "timeout": "1s"},
    "One export request per 1024 spans or per second, whichever comes first. spanmeter commits\n"
    "each request to its store before it answers, so fewer, larger requests cost fewer commits;\n"
    "the 2048 cap keeps a request well under spanmeter's 64 MiB limit even with prompt text on\n"
    "the spans, and one second keeps budgets and alerts close to real time.",
)

_HEALTH_CHECK = Component(
    "health_check",
    {"endpoint": "0.0.0.0:13133"},
    "Liveness/readiness probe: GET http://<collector>:13133/ answers 200 while the Collector runs.",
)

_TLS_NOTE = (
    "spanmeter serves plain gRPC: keep this hop on a private network, or put a TLS-terminating\n"
    "proxy in front of spanmeter and replace 'insecure: true' by a ca_file."
)


def _backend_exporter(backend: str) -> Component:
    return Component(
        "otlp/backend",
        {
            "endpoint": backend,
            "compression": "gzip",
            "timeout": "10s",
            "sending_queue": {"enabled": True, "num_consumers": 10, "queue_size": 500},
            "retry_on_failure": {
                "enabled": True,
                "initial_interval": "5s",
                "max_interval": "30s",
                "max_elapsed_time": "300s",
            },
        },
        "The team's existing trace backend (Tempo, Jaeger, Honeycomb... any OTLP/gRPC endpoint):\n"
        "it keeps receiving every span, unchanged. TLS is on by default; add 'tls: {insecure: true}'\n"
        "only for a plaintext backend, and 'headers' for an API key.\n"
        "queue_size 500 requests x up to 2048 spans bounds what a backend outage can hold in\n"
        "memory; retries back off 5s -> 30s and give up after 5 minutes (the Collector defaults),\n"
        "since trace data older than that is rarely worth the memory.",
    )


def _spanmeter_exporter(endpoint: str) -> Component:
    return Component(
        "otlp/spanmeter",
        {
            "endpoint": endpoint,
            "compression": "gzip",
            "tls": {"insecure": True},
            "timeout": "15s",
            "sending_queue": {"enabled": True, "num_consumers": 4, "queue_size": 300},
            "retry_on_failure": _SPANMETER_RETRY,
        },
        "GenAI spans to spanmeter's OTLP/gRPC receiver.\n" + _TLS_NOTE + "\n" + _SPANMETER_DELIVERY_NOTE,
    )


_SPANMETER_RETRY: Final[dict[str, Any]] = {
    "enabled": True,
    "initial_interval": "1s",
    "max_interval": "30s",
    "max_elapsed_time": "900s",
}
_SPANMETER_DELIVERY_NOTE = (
    "Delivery: spanmeter answers only after the spans are committed, and answers UNAVAILABLE\n"
    "with a retry delay when it cannot keep up; the Collector honours that delay and resends.\n"
    "A resent span is counted once (spanmeter dedupes on trace id + span id), so retrying is\n"
    "always safe: retries start after 1s and continue for 15 minutes, long enough for a\n"
    "restart or a rolling upgrade, because a lost span is cost that is never reported.\n"
    "timeout 15s: longer than a commit under load, so a slow answer is not resent needlessly.\n"
    "num_consumers 4: a few requests in flight keep spanmeter's store busy without contending;\n"
    "queue_size 300 requests (at one request a second, five minutes of traffic) bounds memory."
)


# --- the three configurations -------------------------------------------------------------


def _header(kind: Kind, summary: str, env: Sequence[str]) -> str:
    lines = [
        f"OpenTelemetry Collector (contrib) configuration: spanmeter '{kind}'.",
        "",
        *summary.strip("\n").splitlines(),
        "",
        "Environment variables read at start-up:",
        *(f"  {line}" for line in env),
        "",
        f"Generated by: spanmeter collector-config --kind {kind}   (see docs/collector.md)",
        "Check an edited copy with: spanmeter collector-config --check FILE",
    ]
    return "\n".join(lines)


def _env_lines(endpoint: str, backend: str, extra: Sequence[str] = ()) -> list[str]:
    lines: list[str] = []
    if backend == DEFAULT_BACKEND:
        lines.append("BACKEND_ENDPOINT         existing trace backend, host:port (OTLP/gRPC)")
    if endpoint == DEFAULT_ENDPOINT:
        lines.append("SPANMETER_GRPC_ENDPOINT  spanmeter receiver, host:port (OTLP/gRPC, default port 4317)")
    return [*lines, *extra] or ["(none: addresses were given when this file was generated)"]


def _filter() -> Component:
    return Component(
        "filter/genai_only",
        {"error_mode": "ignore", "traces": {"span": [non_genai_condition()]}},
        "Keeps only GenAI spans on the spanmeter side. The filter processor DROPS spans for\n"
        "which a condition is true, so the one condition below is true when a span carries\n"
        "none of the attributes by which spanmeter recognises a GenAI span: OTel gen_ai.*,\n"
        "OpenLLMetry/Traceloop, OpenInference (llm.*, span kind LLM/EMBEDDING), Vercel AI SDK\n"
        "(ai.*), Langfuse, Pydantic AI, and spanmeter's own payload keys. Generated from\n"
        "spanmeter's alias table, so it accepts everything spanmeter's normaliser can read.\n"
        "error_mode ignore: a span the condition cannot evaluate is kept, never lost.",
    )


def _fanout_like(kind: Kind, backend: str, spanmeter: Component, env: list[str]) -> Document:
    summary = {
        "fanout": "Every span goes to the existing trace backend, unchanged; GenAI spans only also go\n"
        "to spanmeter. Two pipelines share one OTLP receiver, so each gets its own copy.",
        "loadbalance": "Every span goes to the existing trace backend; GenAI spans are spread over several\n"
        "spanmeter replicas by trace id (all spans of one trace reach the same replica, and a\n"
        "resent span reaches the replica that already has it). Replicas share one PostgreSQL\n"
        "store, so totals and dedupe are global whichever replica takes a span (budgets need\n"
        "the SQLite store for now: docs/postgresql.md).",
    }[kind]
    return Document(
        header=_header(kind, summary, env),
        sections={
            "extensions": [_HEALTH_CHECK],
            "receivers": [_RECEIVER],
            "processors": [_MEMORY_LIMITER, _filter(), _BATCH],
            "exporters": [_backend_exporter(backend), spanmeter],
        },
        service={
            "extensions": ["health_check"],
            "pipelines": {
                "traces/backend": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["otlp/backend"],
                },
                "traces/spanmeter": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "filter/genai_only", "batch"],
                    "exporters": [spanmeter.id],
                },
            },
        },
        service_comment="traces/backend: everything, as before. traces/spanmeter: the GenAI spans only.",
    )


def _genai_names() -> Component:
    """The transform processor copying vendor attribute names to OTel gen_ai.* names (what
    it copies and what it leaves to spanmeter is in its comment, shown in the file)."""
    return Component(
        "transform/genai_names",
        {
            "error_mode": "ignore",
            "trace_statements": [
                {
                    "context": "span",
                    "conditions": [genai_condition()],
                    "statements": list(normalizing_statements()),
                }
            ],
        },
        "Copies (never moves or overwrites) a vendor attribute to its OTel gen_ai.* name, on GenAI\n"
        "spans only, and only when the OTel attribute is absent:\n"
        "  - provider: gen_ai.system -> gen_ai.provider.name, renamed enum values translated;\n"
        "  - operation: Traceloop llm.request.type -> gen_ai.operation.name;\n"
        "  - models, prompt name/version, conversation (session) id;\n"
        "  - token counts: an input (output) total only when the span reports no cache\n"
        "    (reasoning) breakdown, so 'input includes cache' cannot be misread; breakdowns\n"
        "    themselves by name; never on agent/workflow spans, whose usage repeats their\n"
        "    children's (a backend summing gen_ai.usage.* would count each call twice).\n"
        "Left to spanmeter's normaliser on purpose: Vercel AI SDK ai.usage.* (cache semantics\n"
        "depend on the SDK version and provider), Anthropic inputs that exclude the cache,\n"
        "Langfuse JSON usage, and user/tenant/endpoint attribution (user ids are hashed by\n"
        "spanmeter; copying them would spread raw ids further).\n"
        "error_mode ignore: a statement that cannot run leaves the span as it was.",
    )


def _genai_routing() -> Component:
    """The routing connector splitting GenAI spans (to both pipelines) from the rest (to
    the backend only)."""
    return Component(
        "routing/genai",
        {
            "error_mode": "ignore",
            "default_pipelines": ["traces/backend"],
            "table": [
                {
                    "context": "span",
                    "condition": genai_condition(),
                    "pipelines": ["traces/backend", "traces/spanmeter"],
                }
            ],
        },
        "Splits once, per span: a GenAI span goes to both pipelines, any other span to the backend\n"
        "only. The condition is the exact negation of the fanout filter's drop condition.\n"
        "error_mode ignore: a span whose condition fails goes to the default (backend) pipeline.",
    )


def _normalize(endpoint: str, backend: str) -> Document:
    summary = (
        "Vendor attribute names are copied to OTel gen_ai.* names where that is unambiguous, then\n"
        "every span goes to the existing trace backend and GenAI spans also go to spanmeter.\n"
        "spanmeter reads every vendor name itself, so this only matters for the backend's view;\n"
        "what spanmeter records is the same with or without it."
    )
    transform, routing = _genai_names(), _genai_routing()
    return Document(
        header=_header("normalize", summary, _env_lines(endpoint, backend)),
        sections={
            "extensions": [_HEALTH_CHECK],
            "receivers": [_RECEIVER],
            "processors": [_MEMORY_LIMITER, transform, _BATCH],
            "connectors": [routing],
            "exporters": [_backend_exporter(backend), _spanmeter_exporter(endpoint)],
        },
        service={
            "extensions": ["health_check"],
            "pipelines": {
                "traces/in": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "transform/genai_names"],
                    "exporters": ["routing/genai"],
                },
                "traces/backend": {
                    "receivers": ["routing/genai"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["otlp/backend"],
                },
                "traces/spanmeter": {
                    "receivers": ["routing/genai"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["otlp/spanmeter"],
                },
            },
        },
        service_comment="traces/in normalises and routes; the two pipelines after the connector batch and send.",
    )


def _load_balancer(endpoint: str | None, replicas: Sequence[str]) -> tuple[Component, list[str]]:
    if replicas:
        resolver: dict[str, Any] = {"static": {"hostnames": list(replicas)}}
        how = "A fixed list of replicas (static resolver); change it and restart to rescale."
        env: list[str] = []
    else:
        host, port = _split(endpoint) if endpoint else (DEFAULT_HEADLESS_SERVICE, _DEFAULT_PORT)
        resolver = {"dns": {"hostname": host, "port": port, "interval": "30s", "timeout": "5s"}}
        how = (
            "Replicas found by DNS: one name resolving to every replica's address (a Kubernetes\n"
            "headless Service), re-resolved every 30s, so scaling needs no restart."
        )
        env = ["SPANMETER_HEADLESS_SERVICE  DNS name of every spanmeter replica"] if endpoint is None else []
    component = Component(
        "loadbalancing/spanmeter",
        {
            "routing_key": "traceID",
            "protocol": {"otlp": {"compression": "gzip", "tls": {"insecure": True}, "timeout": "15s"}},
            "resolver": resolver,
            "sending_queue": {"enabled": True, "num_consumers": 4, "queue_size": 300},
            "retry_on_failure": _SPANMETER_RETRY,
        },
        "GenAI spans to several spanmeter replicas. routing_key traceID: a trace's spans, and any\n"
        "resend of them, go to the same replica while the replica set is stable; when it changes,\n"
        "about 1/N of the traces move, which is harmless because the replicas share one store.\n"
        + how
        + "\nThe 'otlp' block is the template for each replica's exporter (everything but the\n"
        "endpoint, which the resolver fills in). " + _TLS_NOTE + "\n"
        "The queue and retries are set on the load balancer itself, so spans waiting for a\n"
        "replica sit in one bounded queue.\n" + _SPANMETER_DELIVERY_NOTE,
    )
    return component, env


def build(
    kind: Kind = "fanout",
    *,
    endpoint: str | None = None,
    backend: str | None = None,
    replicas: Sequence[str] = (),
) -> Document:
    """One of the shipped configurations, for the given addresses.

    Args:
        kind: ``fanout``, ``normalize`` or ``loadbalance``.
        endpoint: spanmeter's OTLP/gRPC ``host:port``; for ``loadbalance`` without
            ``replicas``, a DNS name resolving to every replica, with their port. Default:
            an environment-variable placeholder.
        backend: The existing trace backend's OTLP/gRPC ``host:port``. Default: a placeholder.
        replicas: ``loadbalance`` only: a fixed list of replica ``host:port`` addresses.

    Raises:
        ValueError: an unknown kind, a malformed address, or replicas for another kind.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")
    backend = _check_address(backend, "the backend") if backend is not None else DEFAULT_BACKEND
    checked = [_check_address(r, "a replica") for r in replicas]
    if kind == "loadbalance":
        if endpoint is not None and checked:
            raise ValueError("give either an endpoint (a DNS name for every replica) or replicas, not both")
        address = _check_address(endpoint, "the endpoint") if endpoint is not None else None
        if address is not None and _PLACEHOLDER.match(address):
            raise ValueError("for loadbalance, give the endpoint as DNS-NAME:PORT, not a placeholder")
        balancer, extra = _load_balancer(address, checked)
        return _fanout_like(kind, backend, balancer, _env_lines("", backend, extra))
    if checked:
        raise ValueError("replicas apply to --kind loadbalance only")
    endpoint = _check_address(endpoint, "the endpoint") if endpoint is not None else DEFAULT_ENDPOINT
    if kind == "normalize":
        return _normalize(endpoint, backend)
    return _fanout_like(kind, backend, _spanmeter_exporter(endpoint), _env_lines(endpoint, backend))
