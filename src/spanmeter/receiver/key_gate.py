"""An API key in front of a plain WSGI app (``/metrics``): the same 401/403 answers as the
OTLP and JSON API routes, in plain text, since the app behind speaks neither OTLP nor JSON.

The check runs before the app, so a caller without the key costs one header read and
never renders the exposition. Example::

    app = require_key(metrics_app, partial(authenticator.check, needed="read"))
"""

from __future__ import annotations

from collections.abc import Iterable

from spanmeter.auth import AuthError
from spanmeter.receiver.http_app import Authenticate, StartResponse, WSGIApp, WSGIEnviron

__all__ = ["require_key"]

_CHALLENGE = ("WWW-Authenticate", 'Bearer realm="spanmeter"')


def require_key(app: WSGIApp, authenticate: Authenticate) -> WSGIApp:
    """``app``, answered only to a caller whose ``Authorization`` header ``authenticate``
    accepts: 401 with a ``Bearer`` challenge without a (valid) key, 403 with a key lacking the
    scope; the message names the scope needed."""

    def gated(environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        try:
            authenticate(environ.get("HTTP_AUTHORIZATION"))
        except AuthError as refused:
            unauthenticated = refused.kind == "unauthenticated"
            body = (refused.message + "\n").encode("utf-8")
            headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
            if unauthenticated:
                headers.append(_CHALLENGE)
            start_response("401 Unauthorized" if unauthenticated else "403 Forbidden", headers)
            return [body]
        return app(environ, start_response)

    return gated
