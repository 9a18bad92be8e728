"""What guards every ponder gRPC server, and what the router's internal calls carry.

A server is guarded by TLS credentials from ``tls`` (``ponder.common.tls``; the
``PONDER_SERVE_TLS_*`` environment when ponder.yaml names no certificate) and,
when ``auth_required`` holds for the address it binds, the API-key interceptor
(``ponder.common.auth``) over the same key sources as the router (``auth.keys_file``,
then the Redis store). The router's calls to the voting service carry TLS from
``tls`` (trusting ``tls.ca_file``, presenting ``tls.client_cert_file``) and the
service key from ``auth.service_key_file`` or ``$PONDER_SERVICE_KEY``.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Mapping

import grpc

from ponder.common.auth import AuthInterceptor, auth_required, bearer_interceptors, build_verifier
from ponder.common.errors import ConfigError
from ponder.common.tls import CertReloader, effective_tls, internal_credentials, open_channel, server_credentials


@dataclasses.dataclass
class Guard:
    credentials: grpc.ServerCredentials | None = None
    interceptors: list = dataclasses.field(default_factory=list)
    reloader: CertReloader | None = None
    verifier: object | None = None


def server_guard(cfg, host: str, redis_client, rights: Mapping[str, str]) -> Guard:
    """TLS credentials and the auth interceptor for a server binding ``host``; ConfigError when
    auth is required but there is no key source, or a TLS file does not load."""
    creds, reloader = server_credentials(effective_tls(cfg.tls))
    verifier = build_verifier(cfg, redis_client) if auth_required(cfg, host) else None
    interceptors = [AuthInterceptor(verifier, rights)] if verifier is not None else []
    return Guard(creds, interceptors, reloader, verifier)


def service_key(cfg, env=os.environ) -> str | None:
    """The key the router sends to the voting service: ``auth.service_key_file``'s content, else
    ``$PONDER_SERVICE_KEY``, else None."""
    path = cfg.auth.service_key_file
    if path:
        try:
            return pathlib.Path(path).read_text().strip() or None
        except OSError as e:
            raise ConfigError("auth", [("auth.service_key_file", f"cannot read {path}: {e.strerror or e}")]) from None
    return env.get("PONDER_SERVICE_KEY") or None


def internal_channel(cfg, address: str, options=()) -> grpc.aio.Channel:
    """A channel from the router to one of ponder's own servers, with ``tls`` and the service key."""
    tls = effective_tls(cfg.tls)
    return open_channel(address, internal_credentials(tls), options, tls.server_name,
                        bearer_interceptors(service_key(cfg)))
