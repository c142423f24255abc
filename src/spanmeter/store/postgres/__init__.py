"""The PostgreSQL store: several receiver replicas on one shared database (the optional
``spanmeter[postgres]`` extra, psycopg 3). Importing :mod:`spanmeter.store` does not import
this package; :func:`spanmeter.store.open_store` does, for a ``postgresql://`` URL."""

from __future__ import annotations

from .store import PostgresStore

__all__ = ["PostgresStore"]
