"""Where the client connects and how: arguments first, then the environment, then defaults.

Environment: ``PONDER_ADDRESS`` (host:port), ``PONDER_API_KEY`` (sent as
``authorization: Bearer KEY``), ``PONDER_TLS`` (1/true: TLS with the system
roots), ``PONDER_TLS_CA`` (a PEM file of roots; implies TLS),
``PONDER_TLS_SERVER_NAME`` (the name to verify, when it differs from the host).
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

    @classmethod
    def resolve(cls, address: str | None = None, api_key: str | None = None, tls: bool | None = None,
                ca_file: str | None = None, server_name: str | None = None, env=os.environ) -> "ClientConfig":
        ca = ca_file or env.get("PONDER_TLS_CA") or None
        env_tls = env.get("PONDER_TLS", "").lower() in ("1", "true", "yes")
        return cls(
            address=address or env.get("PONDER_ADDRESS") or DEFAULT_ADDRESS,
            api_key=api_key or env.get("PONDER_API_KEY") or None,
            tls=bool(tls if tls is not None else (env_tls or ca)),
            ca_file=ca,
            server_name=server_name or env.get("PONDER_TLS_SERVER_NAME") or None,
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),) if self.api_key else ()

    def channel(self) -> grpc.aio.Channel:
        """An asyncio channel; TLS reads ``ca_file`` (FileNotFoundError when it is missing)."""
        if not self.tls:
            return grpc.aio.insecure_channel(self.address)
        roots = open(self.ca_file, "rb").read() if self.ca_file else None
        options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return grpc.aio.secure_channel(self.address, grpc.ssl_channel_credentials(roots), options=options)
