"""TLS and mutual TLS for ponder's gRPC servers, its HTTP front and its internal clients.

Servers (router, voting, consolidator) take ``tls`` from ponder.yaml: a PEM
certificate chain and key they present, a CA bundle client certificates are
verified against, and ``client_auth``:

- ``none``: the server does not ask for a client certificate;
- ``optional``: clients without a certificate are admitted (gRPC's Python server
  cannot ask for a certificate without requiring it, so on gRPC the certificate is
  not requested and callers authenticate with API keys; the HTTP front asks and
  verifies one when it is sent);
- ``require``: a client without a certificate signed by ``ca_file`` fails the
  handshake (the client sees UNAVAILABLE).

Reload without a restart: gRPC asks ``CertReloader.fetch`` before every new
connection's handshake; it stats the three files (at most once per
``reload_check_s``) and returns a new certificate configuration when their
modification time or size changed, so new connections use the new files while
open ones keep theirs. A half-written or mismatched pair is logged and the
previous certificates stay in use. The HTTP front's ``ssl.SSLContext`` is
reloaded the same way by a polling task.

Clients: ``channel_credentials`` builds credentials from a CA and an optional
client certificate; ``open_channel`` returns a secure or plaintext channel.
"""
from __future__ import annotations

import asyncio
import logging
import pathlib
import ssl
import threading
import time
from typing import Callable, Sequence

import grpc

from ponder.common.errors import ConfigError

log = logging.getLogger(__name__)


def _read(path: str | None, field: str) -> bytes | None:
    if not path:
        return None
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as e:
        raise ConfigError("tls", [(field, f"cannot read {path}: {e.strerror or e}")]) from None


def _stamp(paths: Sequence[str | None]) -> tuple:
    out = []
    for p in paths:
        if not p:
            out.append(None)
            continue
        try:
            st = pathlib.Path(p).stat()
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append("missing")
    return tuple(out)


def check_pair(cert_file: str, key_file: str, ca_file: str | None = None) -> None:
    """Raise ValueError unless ``key_file`` holds the private key of ``cert_file``'s first certificate
    (and ``ca_file``, when given, holds at least one certificate). Reads the files in place."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as e:
        raise ValueError(f"certificate and key do not load as a pair: {getattr(e, 'reason', None) or e}") from None
    if ca_file:
        try:
            ctx.load_verify_locations(ca_file)
        except (ssl.SSLError, OSError) as e:
            raise ValueError(f"CA bundle holds no usable certificate: {e}") from None


class CertReloader:
    """The server certificate configuration of a ``TLSConfig``, re-read when its files change.

    ``fetch`` is gRPC's certificate configuration fetcher: it returns None (keep
    the current one) or a new ``grpc.ServerCertificateConfiguration``. It never
    raises: a file that does not load as a pair is logged and skipped, and the
    previous configuration keeps serving. ``reloads`` counts applied changes.
    """

    def __init__(self, tls, clock: Callable[[], float] = time.monotonic):
        self.tls, self.clock = tls, clock
        self._paths = (tls.cert_file, tls.key_file, tls.ca_file)
        self._lock = threading.Lock()
        self._checked_at = clock()
        self._stamp = _stamp(self._paths)
        self.reloads = 0
        self.initial = self._load(strict=True)

    def _load(self, strict: bool):
        before = _stamp(self._paths)
        cert = _read(self.tls.cert_file, "tls.cert_file")
        key = _read(self.tls.key_file, "tls.key_file")
        ca = _read(self.tls.ca_file, "tls.ca_file")
        try:
            check_pair(self.tls.cert_file, self.tls.key_file, self.tls.ca_file)
            if _stamp(self._paths) != before:  # changed while read: the next fetch sees a new stamp and retries
                raise ValueError("certificate files changed while being read")
        except ValueError as e:
            if strict:
                raise ConfigError("tls", [("tls.cert_file", str(e))]) from None
            raise
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    def fetch(self):
        """None (no change) or the new configuration; called by gRPC before each handshake."""
        with self._lock:
            now = self.clock()
            if now - self._checked_at < self.tls.reload_check_s:
                return None
            self._checked_at = now
            stamp = _stamp(self._paths)
            if stamp == self._stamp:
                return None
            self._stamp = stamp  # a pair still being written changes again and is retried then
            try:
                config = self._load(strict=False)
            except (ValueError, ConfigError) as e:
                log.error("TLS files changed but do not load; keeping the previous certificate: %s", e)
                return None
            self.reloads += 1
            log.warning("TLS certificate reloaded from %s", self.tls.cert_file)
            return config


SERVER_ENV = {"cert_file": "PONDER_SERVE_TLS_CERT", "key_file": "PONDER_SERVE_TLS_KEY",
              "ca_file": "PONDER_SERVE_TLS_CA", "client_auth": "PONDER_SERVE_TLS_CLIENT_AUTH"}


def effective_tls(tls, env=None):
    """``tls`` with the server environment filled in when ponder.yaml sets no certificate (the chart
    mounts a Secret and names its files in ``PONDER_SERVE_TLS_CERT``/``_KEY``/``_CA``/``_CLIENT_AUTH``).
    ConfigError names the variable when the result is inconsistent."""
    import os

    from pydantic import ValidationError

    env = os.environ if env is None else env
    if tls.cert_file or not env.get(SERVER_ENV["cert_file"]):
        return tls
    data = tls.model_dump()
    data.update({k: env[v] for k, v in SERVER_ENV.items() if env.get(v)})
    try:
        return type(tls).model_validate(data)
    except ValidationError as e:
        raise ConfigError("environment", [(", ".join(SERVER_ENV.values()), err["msg"]) for err in e.errors()]) from None


def server_credentials(tls) -> tuple[grpc.ServerCredentials | None, CertReloader | None]:
    """(credentials, reloader) for a server with ``tls`` (a ``TLSConfig``); (None, None) when TLS is off.
    ConfigError names the field when a file is missing or the pair does not load."""
    if tls is None or not tls.enabled:
        return None, None
    reloader = CertReloader(tls)
    creds = grpc.dynamic_ssl_server_credentials(
        reloader.initial, reloader.fetch, require_client_authentication=tls.client_auth == "require")
    return creds, reloader


def channel_credentials(ca_file: str | None = None, cert_file: str | None = None,
                        key_file: str | None = None) -> grpc.ChannelCredentials:
    """Credentials trusting ``ca_file`` (system roots when None), presenting ``cert_file``/``key_file`` when both are set."""
    ca = _read(ca_file, "ca_file")
    cert = _read(cert_file, "cert_file") if cert_file and key_file else None
    key = _read(key_file, "key_file") if cert_file and key_file else None
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def open_channel(address: str, credentials: grpc.ChannelCredentials | None, options: Sequence = (),
                 server_name: str | None = None, interceptors: Sequence | None = None) -> grpc.aio.Channel:
    """A secure channel when ``credentials`` is set (verifying ``server_name`` when given), else plaintext."""
    opts = list(options)
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=opts, interceptors=interceptors or None)
    if server_name:
        opts.append(("grpc.ssl_target_name_override", server_name))
    return grpc.aio.secure_channel(address, credentials, options=opts, interceptors=interceptors or None)


def internal_credentials(tls) -> grpc.ChannelCredentials | None:
    """What the router presents to voting and consolidator servers: TLS trusting ``tls.ca_file``, with
    ``client_cert_file`` (else the server's own certificate) as its client certificate; None when TLS is off."""
    if tls is None or not tls.enabled:
        return None
    cert = tls.client_cert_file or tls.cert_file
    key = tls.client_key_file or tls.key_file
    return channel_credentials(tls.ca_file, cert, key)


def http_ssl_context(tls) -> ssl.SSLContext | None:
    """The HTTP front's server context (None when TLS is off): ``optional`` asks for and verifies a
    client certificate when one is sent; ``require`` refuses the handshake without one."""
    if tls is None or not tls.enabled:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_http(ctx, tls)
    ctx.verify_mode = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "require": ssl.CERT_REQUIRED}[tls.client_auth]
    return ctx


def _load_http(ctx: ssl.SSLContext, tls) -> None:
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.ca_file:
            ctx.load_verify_locations(tls.ca_file)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("tls", [("tls.cert_file", f"cannot load the certificate pair: {e}")]) from None


HTTP_POLL_MIN_S = 0.2  # the HTTP front polls (gRPC checks on each new connection instead)


async def watch_http_context(ctx: ssl.SSLContext, tls) -> None:
    """Reload ``ctx``'s certificate when the files change, polling every ``reload_check_s`` (at least
    ``HTTP_POLL_MIN_S``); new handshakes use it. Runs until cancelled."""
    paths = (tls.cert_file, tls.key_file, tls.ca_file)
    seen = _stamp(paths)
    while True:
        await asyncio.sleep(max(tls.reload_check_s, HTTP_POLL_MIN_S))
        now = _stamp(paths)
        if now == seen:
            continue
        seen = now
        try:
            _load_http(ctx, tls)
            log.warning("HTTP front TLS certificate reloaded from %s", tls.cert_file)
        except ConfigError as e:
            log.error("TLS files changed but do not load; keeping the previous certificate: %s", e)
