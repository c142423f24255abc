"""TLS settings of the receiver's two ports, and what each transport needs from them.

One certificate and key serve both ports. With a client CA, both ports ask for a client
certificate and refuse a connection without one signed by that CA (mutual TLS); without it,
any client may connect, and who may do what is left to API keys.

Example::

    tls = TLSFiles(cert="server.pem", key="server.key", client_ca="clients-ca.pem")
    context = tls.ssl_context()          # HTTP
    credentials = tls.grpc_credentials()  # gRPC
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

__all__ = ["TLSFiles"]


@dataclass(frozen=True)
class TLSFiles:
    """PEM files: the server's certificate chain and key, and optionally the CA that signs
    the clients' certificates (which turns client certificates on and makes them required)."""

    cert: str
    key: str
    client_ca: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side context for the HTTP port (TLS 1.2 or newer).

        Raises:
            OSError: a file cannot be read.
            ssl.SSLError: the certificate, key or CA is not valid PEM, or key and cert differ.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        if self.client_ca is not None:
            context.load_verify_locations(cafile=self.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Server credentials for the gRPC port, asking for client certificates when a client
        CA is set.

        Raises:
            OSError: a file cannot be read.
        """
        self.ssl_context()  # grpc reports bad PEM only when a client connects: check it now
        ca = Path(self.client_ca).read_bytes() if self.client_ca is not None else None
        return grpc.ssl_server_credentials(
            [(Path(self.key).read_bytes(), Path(self.cert).read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )
