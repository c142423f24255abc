"""The plain ingest path, for tests checking the pipeline's fused loop against it.

Spans are read from the ``KeyValue`` lists (:func:`~spanmeter.ingest.iter_spans`, the last of
a repeated key winning) and normalised with the plain helpers; each test prices and builds its
rows its own way, so the oracle stays as independent of the pipeline as that test needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from spanmeter.identity import UserIdHasher
from spanmeter.ingest import iter_spans
from spanmeter.ingest.extract import SERVICE_NAME
from spanmeter.normalise import GenAIRecord, normalize

__all__ = ["NoSink", "plain_records"]


def plain_records(
    request: ExportTraceServiceRequest, hasher: UserIdHasher
) -> Iterator[tuple[Span, GenAIRecord, str | None]]:
    """Each stored span with valid ids in ``request`` (billable, or marked by the app as
    describing another span's call): the span, its record and its service."""
    for item in iter_spans(request):
        span = item.span
        trace_id, span_id = span.trace_id, span.span_id
        if len(trace_id) != 16 or len(span_id) != 8 or not any(trace_id) or not any(span_id):
            continue
        record = normalize(
            item.attributes,
            item.resource,
            span_name=span.name,
            start_time_ns=span.start_time_unix_nano or None,
            end_time_ns=span.end_time_unix_nano or None,
            status_code=span.status.code,
            scope_name=item.scope_name,
            scope_version=item.scope_version,
            user_id_hasher=hasher,
        )
        if record is None or (not record.billable and record.duplicate_of is None):
            continue
        service = item.resource.get(SERVICE_NAME)
        yield span, record, service if isinstance(service, str) else None


class NoSink:
    """A row sink for a pipeline whose ``_rows`` alone is called: nothing is ever submitted."""

    pending_rows = 0

    def submit(self, rows: Any) -> Any:
        raise AssertionError("not used")

    def close(self) -> None:
        pass
