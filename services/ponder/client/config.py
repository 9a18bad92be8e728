"""Where the client connects and how: arguments first, then the environment, then defaults.

Environment: ``PONDER_ADDRESS`` (host:port), ``PONDER_API_KEY`` (sent as
``authorization: Bearer KEY``), ``PONDER_TLS`` (1/true: TLS with the system
roots), ``PONDER_TLS_CA`` (a PEM file of roots; implies TLS),
``PONDER_TLS_SERVER_NAME`` (the name to verify, when it differs from the host),
``PONDER_TLS_CERT`` and ``PONDER_TLS_KEY`` (a client certificate and its key, for servers
that require mutual TLS; imply TLS).
"""
from __future__ import annotations

import dataclasses
import os

import grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    address: str = DEFAULT_ADDRESS
    api_key: str | None = None
    tls: bool = False
    ca_file: str | None = None
    server_name: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def resolve(cls, address: str | None = None, api_key: str | None = None, tls: bool | None = None,
                ca_file: str | None = None, server_name: str | None = None, env=os.environ,
                cert_file: str | None = None, key_file: str | None = None) -> "ClientConfig":
        ca = ca_file or env.get("PONDER_TLS_CA") or None
        cert = cert_file or env.get("PONDER_TLS_CERT") or None
        key = key_file or env.get("PONDER_TLS_KEY") or None
        if bool(cert) != bool(key):
            raise ValueError("a client certificate needs its key: set both cert_file and key_file "
                             "(PONDER_TLS_CERT and PONDER_TLS_KEY) or neither")
        env_tls = env.get("PONDER_TLS", "").lower() in ("1", "true", "yes")
        return cls(
            address=address or env.get("PONDER_ADDRESS") or DEFAULT_ADDRESS,
            api_key=api_key or env.get("PONDER_API_KEY") or None,
            tls=bool(tls if tls is not None else (env_tls or ca or cert)),
            ca_file=ca,
            server_name=server_name or env.get("PONDER_TLS_SERVER_NAME") or None,
            cert_file=cert,
            key_file=key,
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials (None for plaintext); ConfigError naming the file when one cannot be read."""
        from ponder.common.tls import channel_credentials

        return channel_credentials(self.ca_file, self.cert_file, self.key_file) if self.tls else None

    def channel(self, options=(), interceptors=None) -> grpc.aio.Channel:
        """An asyncio channel to ``address``: TLS (with the client certificate, when set) or plaintext."""
        from ponder.common.tls import open_channel

        return open_channel(self.address, self.credentials(), options, self.server_name, interceptors)
