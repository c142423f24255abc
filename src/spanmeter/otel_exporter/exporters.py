"""Building the OTLP exporter that sends to spanmeter, from arguments or environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Final, Literal
from urllib.parse import urlsplit

from opentelemetry.sdk.trace.export import SpanExporter

from ..environment_variables import (
    SPANMETER_API_KEY,
    SPANMETER_ENDPOINT,
    SPANMETER_EXPORT_TIMEOUT,
    SPANMETER_PROTOCOL,
)
from .guarded import GuardedSpanExporter

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Protocol",
    "export_headers",
    "make_guarded_exporter",
    "resolve_protocol",
    "resolve_timeout",
]

_logger = logging.getLogger(__name__)

Protocol = Literal["grpc", "http/protobuf"]

DEFAULT_TIMEOUT_S: Final = 2.0
"""Short on purpose: a batch that cannot be delivered in 2 s is dropped (and counted)
rather than holding the exporter thread and the queue behind it."""


def resolve_protocol(protocol: str | None) -> Protocol:
    """Argument, then ``SPANMETER_PROTOCOL``, then the OTLP variables, then HTTP."""
    value = (
        (
            protocol
            or os.environ.get(SPANMETER_PROTOCOL)
            or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        )
        .strip()
        .lower()
    )
    if value == "grpc":
        return "grpc"
    if value in ("http/protobuf", "http"):
        return "http/protobuf"
    raise ValueError(f"unsupported OTLP protocol {value!r}: use 'grpc' or 'http/protobuf'")


def resolve_timeout(timeout_s: float | None) -> float:
    """Argument, then ``SPANMETER_EXPORT_TIMEOUT``, then 2 s (a bad value warns, not fails)."""
    if timeout_s is not None:
        return timeout_s
    raw = os.environ.get(SPANMETER_EXPORT_TIMEOUT)
    if raw:
        try:
            value = float(raw)
            if value > 0:
                return value
        except ValueError:
            pass
        _logger.warning("spanmeter: ignoring invalid %s=%r", SPANMETER_EXPORT_TIMEOUT, raw)
    return DEFAULT_TIMEOUT_S


def _http_traces_url(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def export_headers(
    headers: Mapping[str, str] | None, api_key: str | None, *, protocol: Protocol
) -> dict[str, str]:
    """The headers (gRPC metadata) of every export: ``headers``, plus ``authorization: Bearer
    <key>`` for the key (``api_key``, else ``SPANMETER_API_KEY``) unless ``headers`` already
    says ``authorization``.

    The gRPC exporter reads ``OTEL_EXPORTER_OTLP[_TRACES]_HEADERS`` only when given no headers
    at all, so for gRPC those are merged in here first (the HTTP exporter merges them itself):
    adding the key never drops a header the environment asked for.
    """
    given = dict(headers or {})
    key = (api_key if api_key is not None else os.environ.get(SPANMETER_API_KEY, "")).strip()
    if not key or any(name.lower() == "authorization" for name in given):
        return given
    merged: dict[str, str] = {}
    if protocol == "grpc" and not given:
        from opentelemetry.util.re import parse_env_headers

        from_env = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or os.environ.get(
            "OTEL_EXPORTER_OTLP_HEADERS", ""
        )
        merged.update(parse_env_headers(from_env, liberal=True))
    merged.update(given)
    merged["authorization"] = f"Bearer {key}"  # lower case: gRPC metadata keys must be
    return merged


def make_guarded_exporter(
    endpoint: str | None = None,
    *,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    api_key: str | None = None,
) -> GuardedSpanExporter:
    """An OTLP exporter to ``endpoint`` (or the environment's), wrapped in the guard.

    Args:
        endpoint: Receiver base URL (``http://host:4318`` or ``http://host:4317``) or the
            full traces URL for HTTP. Default: ``SPANMETER_ENDPOINT``, else the standard
            ``OTEL_EXPORTER_OTLP_*`` resolution of the OTLP exporter.
        protocol: ``grpc`` or ``http/protobuf`` (see :func:`resolve_protocol`).
        headers: Extra request headers (gRPC metadata).
        timeout_s: Export timeout, retries included (see :func:`resolve_timeout`).
        api_key: The receiver's API key (an ``ingest`` key), sent as ``authorization: Bearer``
            (see :func:`export_headers`). Default: ``SPANMETER_API_KEY``.
    """
    endpoint = endpoint or os.environ.get(SPANMETER_ENDPOINT) or None
    resolved = resolve_protocol(protocol)
    headers = export_headers(headers, api_key, protocol=resolved)
    timeout = resolve_timeout(timeout_s)
    inner: SpanExporter
    if resolved == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        insecure = None if endpoint is None else urlsplit(endpoint).scheme != "https"
        inner = GrpcExporter(endpoint=endpoint, insecure=insecure, headers=headers, timeout=timeout)
        return GuardedSpanExporter(inner)

    import requests
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    session = requests.Session()
    inner = HttpExporter(
        endpoint=_http_traces_url(endpoint) if endpoint else None,
        headers=headers,
        timeout=timeout,
        compression=Compression.Gzip,
        session=session,
    )
    guard = GuardedSpanExporter(inner)
    # The session is the exporter's public hook into HTTP answers: hooks are read per
    # request, so registering after construction is fine. This is how Retry-After of a
    # 429/503 reaches the guard once the exporter's own retries are exhausted.
    session.hooks["response"].append(guard.requests_hook())
    return guard
