"""The Collector (contrib) component types the validator knows, with their documented keys.

Each entry lists the top-level keys a component's configuration accepts, as documented in
the component's README / ``config.schema.yaml`` in opentelemetry-collector(-contrib), and
the keys it requires. The table is deliberately limited to the components spanmeter's
configurations use plus a few common neighbours (debug exporter, forward connector,
pprof/zpages/file_storage extensions): a misspelt key or an unknown type is then caught
here rather than by a Collector refusing to start in production. Types renamed upstream
keep both names (``otlp``/``otlp_grpc``, ``otlphttp``/``otlp_http``,
``loadbalancing``/``load_balancing``), as the Collector itself keeps the old ones as aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

__all__ = ["KNOWN_COMPONENTS", "SECTIONS", "ComponentSpec"]

SECTIONS: Final = ("receivers", "processors", "exporters", "connectors", "extensions")
"""Top-level sections that define components."""


@dataclass(frozen=True)
class ComponentSpec:
    """What one component type accepts."""

    keys: frozenset[str]
    """Documented top-level configuration keys."""
    required: tuple[frozenset[str], ...] = ()
    """Each set must have at least one key present (``limit_mib`` or ``limit_percentage``)."""
    nested: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    """Keys of nested mappings, by dotted path (``protocols``, ``sending_queue``...)."""


_QUEUE: Final = frozenset(
    {
        "enabled",
        "num_consumers",
        "queue_size",
        "block_on_overflow",
        "blocking",  # older spelling of block_on_overflow
        "sizer",
        "storage",
        "wait_for_result",
        "batch",
    }
)
_RETRY: Final = frozenset(
    {"enabled", "initial_interval", "max_interval", "max_elapsed_time", "multiplier", "randomization_factor"}
)
_TLS_CLIENT: Final = frozenset(
    {
        "insecure",
        "insecure_skip_verify",
        "ca_file",
        "ca_pem",
        "cert_file",
        "cert_pem",
        "key_file",
        "key_pem",
        "server_name_override",
        "min_version",
        "max_version",
        "include_system_ca_certs_pool",
        "reload_interval",
        "cipher_suites",
        "curve_preferences",
    }
)
_GRPC_CLIENT: Final = frozenset(
    {
        "endpoint",
        "compression",
        "compression_params",
        "tls",
        "headers",
        "keepalive",
        "read_buffer_size",
        "write_buffer_size",
        "wait_for_ready",
        "balancer_name",
        "authority",
        "auth",
        "middlewares",
    }
)
_EXPORTER_HELPER: Final = frozenset({"timeout", "sending_queue", "retry_on_failure"})
_OTLP_GRPC_EXPORTER: Final = ComponentSpec(
    keys=_GRPC_CLIENT | _EXPORTER_HELPER,
    required=(frozenset({"endpoint"}),),
    nested=MappingProxyType({"sending_queue": _QUEUE, "retry_on_failure": _RETRY, "tls": _TLS_CLIENT}),
)
_OTLP_HTTP_EXPORTER: Final = ComponentSpec(
    keys=frozenset(
        {
            "endpoint",
            "traces_endpoint",
            "metrics_endpoint",
            "logs_endpoint",
            "profiles_endpoint",
            "encoding",
            "compression",
            "compression_params",
            "tls",
            "headers",
            "auth",
            "proxy_url",
            "read_buffer_size",
            "write_buffer_size",
            "max_idle_conns",
            "max_idle_conns_per_host",
            "max_conns_per_host",
            "idle_conn_timeout",
            "disable_keep_alives",
            "http2_read_idle_timeout",
            "http2_ping_timeout",
            "cookies",
            "middlewares",
        }
    )
    | _EXPORTER_HELPER,
    required=(frozenset({"endpoint", "traces_endpoint", "metrics_endpoint", "logs_endpoint"}),),
    nested=MappingProxyType({"sending_queue": _QUEUE, "retry_on_failure": _RETRY, "tls": _TLS_CLIENT}),
)
_LOAD_BALANCING: Final = ComponentSpec(
    keys=frozenset({"protocol", "resolver", "routing_key", "routing_attributes"}) | _EXPORTER_HELPER,
    required=(frozenset({"protocol"}), frozenset({"resolver"})),
    nested=MappingProxyType(
        {
            "protocol": frozenset({"otlp"}),
            "resolver": frozenset({"static", "dns", "k8s", "aws_cloud_map"}),
            "resolver.static": frozenset({"hostnames"}),
            "resolver.dns": frozenset({"hostname", "port", "interval", "timeout"}),
            "resolver.k8s": frozenset({"service", "ports", "timeout", "return_hostnames"}),
            # the OTLP exporter template: everything but the endpoint, which the resolver sets
            "protocol.otlp": (_GRPC_CLIENT - {"endpoint"}) | _EXPORTER_HELPER,
            "sending_queue": _QUEUE,
            "retry_on_failure": _RETRY,
        }
    ),
)

_RECEIVERS: Final = {
    "otlp": ComponentSpec(
        keys=frozenset({"protocols"}),
        required=(frozenset({"protocols"}),),
        nested=MappingProxyType(
            {
                "protocols": frozenset({"grpc", "http"}),
                "protocols.grpc": frozenset(
                    {
                        "endpoint",
                        "transport",
                        "tls",
                        "max_recv_msg_size_mib",
                        "max_concurrent_streams",
                        "read_buffer_size",
                        "write_buffer_size",
                        "keepalive",
                        "auth",
                        "include_metadata",
                        "middlewares",
                    }
                ),
                "protocols.http": frozenset(
                    {
                        "endpoint",
                        "tls",
                        "cors",
                        "auth",
                        "max_request_body_size",
                        "include_metadata",
                        "response_headers",
                        "compression_algorithms",
                        "read_timeout",
                        "read_header_timeout",
                        "write_timeout",
                        "idle_timeout",
                        "keep_alives_enabled",
                        "traces_url_path",
                        "metrics_url_path",
                        "logs_url_path",
                        "middlewares",
                    }
                ),
            }
        ),
    ),
}

_PROCESSORS: Final = {
    "memory_limiter": ComponentSpec(
        keys=frozenset(
            {
                "check_interval",
                "limit_mib",
                "spike_limit_mib",
                "limit_percentage",
                "spike_limit_percentage",
                "min_gc_interval_when_soft_limited",
                "min_gc_interval_when_hard_limited",
            }
        ),
        required=(frozenset({"check_interval"}), frozenset({"limit_mib", "limit_percentage"})),
    ),
    "batch": ComponentSpec(
        keys=frozenset(
            {
                "send_batch_size",
                "send_batch_max_size",
                "timeout",
                "metadata_keys",
                "metadata_cardinality_limit",
            }
        )
    ),
    "filter": ComponentSpec(
        keys=frozenset(
            {
                "error_mode",
                "traces",
                "metrics",
                "logs",
                "profiles",
                "spans",
                "trace_conditions",
                "metric_conditions",
                "log_conditions",
                "profile_conditions",
            }
        ),
        nested=MappingProxyType({"traces": frozenset({"span", "spanevent", "resource"})}),
    ),
    "transform": ComponentSpec(
        keys=frozenset(
            {
                "error_mode",
                "trace_statements",
                "metric_statements",
                "log_statements",
                "profile_statements",
                "flatten_data",
            }
        ),
    ),
    "attributes": ComponentSpec(keys=frozenset({"actions", "include", "exclude"})),
    "resource": ComponentSpec(keys=frozenset({"attributes"}), required=(frozenset({"attributes"}),)),
}

_EXPORTERS: Final = {
    "otlp": _OTLP_GRPC_EXPORTER,
    "otlp_grpc": _OTLP_GRPC_EXPORTER,
    "otlphttp": _OTLP_HTTP_EXPORTER,
    "otlp_http": _OTLP_HTTP_EXPORTER,
    "loadbalancing": _LOAD_BALANCING,
    "load_balancing": _LOAD_BALANCING,
    "debug": ComponentSpec(
        keys=frozenset({"verbosity", "sampling_initial", "sampling_thereafter", "use_internal_logger"})
    ),
}

_CONNECTORS: Final = {
    "routing": ComponentSpec(
        keys=frozenset({"table", "default_pipelines", "error_mode"}),
        required=(frozenset({"table"}),),
    ),
    "forward": ComponentSpec(keys=frozenset()),
}

_EXTENSIONS: Final = {
    "health_check": ComponentSpec(
        keys=frozenset(
            {
                "endpoint",
                "path",
                "tls",
                "cors",
                "auth",
                "response_headers",
                "check_collector_pipeline",
                "response_body",
            }
        )
    ),
    "pprof": ComponentSpec(
        keys=frozenset({"endpoint", "block_profile_fraction", "mutex_profile_fraction", "save_to_file"})
    ),
    "zpages": ComponentSpec(keys=frozenset({"endpoint", "expvar"})),
    "file_storage": ComponentSpec(
        keys=frozenset(
            {
                "directory",
                "timeout",
                "compaction",
                "fsync",
                "create_directory",
                "directory_permissions",
                "recreate",
            }
        ),
        required=(frozenset({"directory"}),),
    ),
}

KNOWN_COMPONENTS: Final[Mapping[str, Mapping[str, ComponentSpec]]] = MappingProxyType(
    {
        "receivers": MappingProxyType(_RECEIVERS),
        "processors": MappingProxyType(_PROCESSORS),
        "exporters": MappingProxyType(_EXPORTERS),
        "connectors": MappingProxyType(_CONNECTORS),
        "extensions": MappingProxyType(_EXTENSIONS),
    }
)
"""Section -> component type -> what it accepts."""
