"""``/healthz`` (the process answers) and ``/readyz`` (accepting and storing): outside
``/api/v1`` because orchestrators probe them there; HEAD answers like GET."""

from __future__ import annotations

from collections.abc import Callable

from .http import JSON, Request, Response, json_response
from .routes import Content, Route
from .schemas import HEALTH, READY

__all__ = ["health_routes"]


def health_routes(ready: Callable[[], bool], warning: Callable[[], str | None] | None = None) -> list[Route]:
    """The liveness and readiness routes; ``ready`` says whether the service takes exports,
    ``warning`` what an operator should know though it does (served with
    ``--insecure-no-auth``): a warning never makes it unready, since an orchestrator would
    then restart a receiver that works."""

    def healthz(request: Request) -> Response:
        return json_response(200, {"status": "ok"})

    def readyz(request: Request) -> Response:
        ok = ready()
        document: dict[str, object] = {"ready": ok}
        said = None if warning is None else warning()
        if said:
            document["warning"] = said
        return json_response(200 if ok else 503, document)

    return [
        Route(
            "GET",
            "/healthz",
            "healthz",
            "The process answers.",
            "public",
            healthz,
            content=(Content(JSON, HEALTH),),
            errors=(),
            also_head=True,
        ),
        Route(
            "GET",
            "/readyz",
            "readyz",
            "Serving and able to store (503 otherwise, same body); `warning` says when it is exposed without API keys.",
            "public",
            readyz,
            content=(Content(JSON, READY),),
            errors=(),
            other={
                503: ("Not ready: not started, stopping, or the store unreachable.", Content(JSON, READY))
            },
            also_head=True,
        ),
    ]
