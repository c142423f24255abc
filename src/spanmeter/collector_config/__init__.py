"""OTel Collector configurations for spanmeter: generated, shipped, and checked.

The shipped files (``fanout.yaml``, ``normalize.yaml``, ``loadbalance.yaml`` in this
package, and the same files in the repository's ``collector_config/`` directory) are the
output of :func:`generate` with its defaults; :func:`validate` checks any configuration
against the Collector's structural rules and spanmeter's operating rules::

    >>> text = generate("fanout", endpoint="spanmeter.internal:4317", backend="tempo:4317")
    >>> validate_text(text)
    []
"""

from __future__ import annotations

from importlib.resources import files

from .build import DEFAULT_BACKEND, DEFAULT_ENDPOINT, DEFAULT_HEADLESS_SERVICE, KINDS, Kind, build
from .genai import GENAI_MARKER_KEYS, genai_condition, non_genai_condition, normalizing_statements
from .render import Document, render
from .validate import CollectorConfigError, check_file, validate, validate_text

__all__ = [
    "DEFAULT_BACKEND",
    "DEFAULT_ENDPOINT",
    "DEFAULT_HEADLESS_SERVICE",
    "GENAI_MARKER_KEYS",
    "KINDS",
    "CollectorConfigError",
    "Document",
    "Kind",
    "build",
    "check_file",
    "genai_condition",
    "generate",
    "non_genai_condition",
    "normalizing_statements",
    "render",
    "shipped",
    "validate",
    "validate_text",
]


def generate(kind: Kind = "fanout", **options: object) -> str:
    """YAML text of one configuration (see :func:`build` for the options)."""
    return render(build(kind, **options))  # type: ignore[arg-type]


def shipped(kind: Kind) -> str:
    """Text of the shipped file for ``kind``, read from the installed package."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")
    return (files(__name__) / f"{kind}.yaml").read_text(encoding="utf-8")
