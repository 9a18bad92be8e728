"""API keys bound to tenants, and the server interceptor that checks them.

A key is ``pk_<key id>_<secret>``: a 12-hex-digit id that names it in lists
and a 256-bit random secret. Only the SHA-256 of the secret is stored (a
random 256-bit secret needs no slow hash), in the Redis hash ``ponder:keys``
(id -> JSON record: tenant, rights, digest, created_at) or in a JSON file of
the same records (a Kubernetes Secret). Checking a key looks its id up and
compares digests with ``hmac.compare_digest`` (constant time); records are
cached for ``cache_s``, so a revoked key stops working within that time, and
while Redis is unreachable the cached records keep answering.

Calls carry the key as ``authorization: Bearer <key>`` metadata. The
interceptor answers UNAUTHENTICATED for a missing, malformed, unknown or
revoked key and PERMISSION_DENIED for a key without the right the method
needs (``generate``, ``feedback``, ``admin``); health and reflection stay
open. The caller's ``Principal`` is in ``current_principal()`` for the
handler's task; without auth every call is the tenant ``default``.
"""
from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import hmac
import inspect
import json
import logging
import pathlib
import re
import secrets
import time
from typing import Any, Callable, Mapping

import grpc

from ponder.common.errors import NotFound, PermissionDenied, Unauthenticated, Unavailable
from ponder.common.ids import check_key_id

log = logging.getLogger(__name__)

KEYS_HASH = "ponder:keys"
RIGHTS = ("generate", "feedback", "admin")
DEFAULT_TENANT = "default"
_TOKEN_RE = re.compile(r"pk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclasses.dataclass(frozen=True)
class Principal:
    tenant: str
    key_id: str
    rights: frozenset[str]


ANONYMOUS = Principal(DEFAULT_TENANT, "", frozenset(RIGHTS))
_PRINCIPAL: contextvars.ContextVar[Principal] = contextvars.ContextVar("ponder_principal", default=ANONYMOUS)


def current_principal() -> Principal:
    """Who makes the current call (``ANONYMOUS``, tenant ``default``, when auth is off)."""
    return _PRINCIPAL.get()


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """(key id, full key) of a fresh random key."""
    key_id = secrets.token_hex(6)
    return key_id, f"pk_{key_id}_{secrets.token_urlsafe(32)}"


def split_key(token: str) -> tuple[str, str]:
    """(key id, secret) of a key ``pk_<id>_<secret>``; the secret may itself contain ``_``."""
    m = _TOKEN_RE.fullmatch(token.strip())
    if not m:
        raise Unauthenticated("malformed API key (expected pk_<12 hex>_<43 url-safe chars>)")
    return m.group(1), m.group(2)


def parse_bearer(metadata) -> tuple[str, str]:
    """(key id, secret) from ``authorization: Bearer pk_…`` metadata; Unauthenticated otherwise.
    The key itself never appears in the message."""
    values = [v for k, v in (metadata or ()) if k == "authorization"]
    if not values:
        raise Unauthenticated("missing `authorization: Bearer <api key>` metadata")
    scheme, _, token = str(values[0]).partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("authorization metadata must be `Bearer <api key>`")
    return split_key(token)


def check_rights(rights) -> frozenset[str]:
    bad = sorted(set(rights) - set(RIGHTS))
    if bad:
        from ponder.common.errors import InvalidArgument

        raise InvalidArgument("rights", f"unknown rights {bad}; known: {list(RIGHTS)}")
    return frozenset(rights)


async def _maybe_await(v: Any) -> Any:
    return await v if inspect.isawaitable(v) else v


class KeyStore:
    """Key records in a Redis hash (sync or asyncio client), with a read cache of ``cache_s``."""

    def __init__(self, redis, key: str = KEYS_HASH, cache_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.redis, self.key, self.cache_s, self.clock = redis, key, cache_s, clock
        self._cache: dict[str, tuple[float, dict | None]] = {}

    async def create(self, tenant: str, rights=("generate",), note: str = "") -> tuple[str, dict]:
        """A new key for ``tenant``: (the key, shown once; its stored record without the digest)."""
        check_key_id("tenant", tenant)
        rights = sorted(check_rights(rights))
        key_id, token = new_key()
        record = {"tenant": tenant, "rights": rights, "sha256": digest(split_key(token)[1]),
                  "created_at": round(time.time(), 3), "note": note[:200]}
        await _maybe_await(self.redis.hset(self.key, key_id, json.dumps(record, sort_keys=True)))
        return token, {"key_id": key_id, **{k: v for k, v in record.items() if k != "sha256"}}

    async def list(self) -> list[dict]:
        raw = await _maybe_await(self.redis.hgetall(self.key))
        out = []
        for k, v in raw.items():
            rec = json.loads(v)
            rec.pop("sha256", None)
            out.append({"key_id": k.decode() if isinstance(k, bytes) else k, **rec})
        return sorted(out, key=lambda r: (r["tenant"], r["created_at"]))

    async def revoke(self, key_id: str) -> None:
        """Delete the key; NotFound when there is none with that id."""
        if not await _maybe_await(self.redis.hdel(self.key, key_id)):
            raise NotFound(f"no API key with id {key_id!r}")
        self._cache.pop(key_id, None)

    async def _record(self, key_id: str) -> dict | None:
        now = self.clock()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        try:
            raw = await _maybe_await(self.redis.hget(self.key, key_id))
        except Exception as e:  # noqa: BLE001 - Redis down: a cached record keeps answering
            if hit is not None:
                return hit[1]
            raise Unavailable(f"API key store unreachable: {type(e).__name__}") from None
        rec = json.loads(raw) if raw is not None else None
        self._cache[key_id] = (now, rec)
        return rec

    async def verify(self, key_id: str, secret: str) -> Principal:
        rec = await self._record(key_id)
        # Compare even when the id is unknown, so timing does not tell ids apart.
        stored = rec["sha256"] if rec else "0" * 64
        if not hmac.compare_digest(digest(secret), stored) or rec is None:
            raise Unauthenticated("unknown or revoked API key")
        return Principal(rec["tenant"], key_id, frozenset(rec.get("rights", ())))


class StaticKeys:
    """Key records from a JSON file ``{key id: record}`` (a mounted Kubernetes Secret), re-read when it changes."""

    def __init__(self, path: str | pathlib.Path):
        self.path = pathlib.Path(path)
        self._stamp: tuple[int, int] | None = None
        self._records: dict[str, dict] = {}

    def _load(self) -> dict[str, dict]:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._records, self._stamp = json.loads(self.path.read_text()), stamp
        return self._records

    async def verify(self, key_id: str, secret: str) -> Principal:
        rec = self._load().get(key_id)
        stored = rec["sha256"] if rec else "0" * 64
        if not hmac.compare_digest(digest(secret), stored) or rec is None:
            raise Unauthenticated("unknown or revoked API key")
        return Principal(rec["tenant"], key_id, frozenset(rec.get("rights", ())))


class Verifiers:
    """Try each key source in turn (a file of keys first, then Redis)."""

    def __init__(self, sources):
        self.sources = list(sources)

    async def verify(self, key_id: str, secret: str) -> Principal:
        err: Exception = Unauthenticated("no API key sources configured")
        for s in self.sources:
            try:
                return await s.verify(key_id, secret)
            except (Unauthenticated, Unavailable) as e:
                err = e
        raise err


async def verify_caller(verifier, metadata, need: str, method: str) -> Principal:
    """The principal of the bearer key in ``metadata``; Unauthenticated / PermissionDenied otherwise."""
    key_id, secret = parse_bearer(metadata)
    who = await verifier.verify(key_id, secret)
    if need not in who.rights:
        raise PermissionDenied(f"key {key_id} of tenant {who.tenant!r} lacks the {need!r} right for {method}")
    return who


async def authenticate(verifier, metadata, need: str, method: str) -> Principal:
    """``verify_caller``, and the principal becomes the current task's (front doors without an interceptor)."""
    who = await verify_caller(verifier, metadata, need, method)
    _PRINCIPAL.set(who)
    return who


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks the bearer key of every call but health and reflection; ``rights`` maps a full
    method name to the right it needs (methods not listed need ``admin``)."""

    def __init__(self, verifier, rights: Mapping[str, str]):
        self.verifier, self.rights = verifier, dict(rights)

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(_OPEN_PREFIXES):
            return handler
        need = self.rights.get(method, "admin")
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method, need),
                request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, method, need),
                request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
        return handler

    async def _admit(self, context, method: str, need: str) -> Principal | None:
        from ponder.common.grpcutil import abort_with

        try:
            return await verify_caller(self.verifier, context.invocation_metadata(), need, method)
        except (Unauthenticated, PermissionDenied, Unavailable) as e:
            await abort_with(context, e, method)
        return None

    def _unary(self, behavior, method: str, need: str):
        async def handle(request, context):
            # Each call runs in its own task, so the principal set here is that call's alone.
            _PRINCIPAL.set(await self._admit(context, method, need))
            return await behavior(request, context)

        return handle

    def _stream(self, behavior, method: str, need: str):
        async def handle(request, context):
            _PRINCIPAL.set(await self._admit(context, method, need))
            async for item in behavior(request, context):
                yield item

        return handle


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def auth_required(cfg, host: str | None = None) -> bool:
    """``auth.enabled`` when set; otherwise on unless the server binds a loopback address only
    (``host``, default the router's)."""
    if cfg.auth.enabled is not None:
        return cfg.auth.enabled
    return (cfg.router.host if host is None else host) not in LOOPBACK


def build_verifier(cfg, redis_client):
    """The key sources ``cfg`` names: ``auth.keys_file`` first, then the Redis store; ConfigError without any."""
    from ponder.common.errors import ConfigError

    import os

    sources: list = []
    keys_file = cfg.auth.keys_file or os.environ.get("PONDER_AUTH_KEYS_FILE")  # the chart mounts a Secret there
    if keys_file:
        sources.append(StaticKeys(keys_file))
    if redis_client is not None:
        sources.append(KeyStore(redis_client, cache_s=cfg.auth.cache_s))
    if not sources:
        raise ConfigError("auth", [("auth.enabled", "API keys need a Redis store (redis.url) or auth.keys_file")])
    return Verifiers(sources)


class _Bearer:
    def __init__(self, key: str):
        self._md = ("authorization", f"Bearer {key}")

    def _details(self, d):
        md = [*(d.metadata or ()), self._md]
        return d._replace(metadata=md) if hasattr(d, "_replace") else grpc.aio.ClientCallDetails(
            d.method, d.timeout, md, d.credentials, d.wait_for_ready)


class BearerUnary(_Bearer, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._details(details), request)


class BearerStream(_Bearer, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(self._details(details), request)


def bearer_interceptors(key: str | None) -> list:
    """Client interceptors that send ``key`` as ``authorization: Bearer`` on every call ([] without a key)."""
    return [BearerUnary(key), BearerStream(key)] if key else []
