"""The instrumentation matrix: one receiver and one instrumented app per test session.

Each group (a directory here) runs in its own virtualenv, made by
``scripts/test-instrumentations`` from ``requirements/<group>.txt``; the main test run does
not collect this directory (``norecursedirs`` in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spanmeter.service import ReceiverService
from support.matrix import MatrixApp, start_receiver
from support.provider_stub import ProviderStub, provider_stub


@pytest.fixture(scope="session")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverService]:
    service = start_receiver(str(tmp_path_factory.mktemp("matrix") / "cost.db"))
    yield service
    service.stop(grace_s=2.0)


@pytest.fixture(scope="session")
def app(receiver: ReceiverService) -> Iterator[MatrixApp]:
    """The global TracerProvider with spanmeter's pipeline, exporting to ``receiver``."""
    matrix_app = MatrixApp(receiver, service_name="matrix-app")
    yield matrix_app
    matrix_app.shutdown()


@pytest.fixture
def stub() -> Iterator[ProviderStub]:
    """The provider stub, fresh for each test (usage set by the test)."""
    with provider_stub() as running:
        yield running
