"""A registry's exposition read back as samples, for tests of the cost metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Samples", "scrape"]

Samples = dict[tuple[tuple[str, str], ...], float]
"""One sample name's values by their sorted labels."""


def scrape(registry: CollectorRegistry) -> dict[str, Samples]:
    """Every sample of ``registry``'s text exposition (what Prometheus reads), by name."""
    found: dict[str, Samples] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found
