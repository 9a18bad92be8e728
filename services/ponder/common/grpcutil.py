"""gRPC server helpers: health checking, reflection, TLS ports, the drain gate and the error-to-status boundary (``boundary_handler``)."""
from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ponder.common.drain import OPEN_PREFIXES, DrainGate, attach, drain_and_stop
from ponder.common.errors import InvalidArgument, grpc_status

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_LIMITS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
# What a gRPC server accepts unless told otherwise (Ray Serve's proxy keeps it): a ping at most every
# 5 minutes while no data flows, none while no call is open, and GOAWAY "too_many_pings" after 2 strikes.
DEFAULT_SERVER_MIN_PING_INTERVAL_MS = 300_000
# ponder's own servers accept a ping every 10 s, calls open or not, so their clients can ping every 30 s.
OWN_SERVER_MIN_PING_INTERVAL_MS = 10_000


def keepalive_options(server_min_ping_interval_ms: int, permit_without_calls: bool = False) -> list[tuple[str, int]]:
    """Client keepalive a server with that ping floor never answers with "too_many_pings": a ping every
    1.1 x the floor (arrival jitter stays on the right side of it), only while a call is open unless
    ``permit_without_calls`` (which the server must allow), and the connection declared dead after
    20 s without an answer."""
    return [
        ("grpc.keepalive_time_ms", int(server_min_ping_interval_ms * 1.1)),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.keepalive_permit_without_calls", int(permit_without_calls)),
    ]


# Channels to ponder's own servers: a ping every 33 s, idle or not, so a dead peer is found within a minute.
CHANNEL_OPTIONS = [*_LIMITS, *keepalive_options(3 * OWN_SERVER_MIN_PING_INTERVAL_MS, permit_without_calls=True)]
# Channels to servers ponder does not configure (pools behind Ray Serve's gRPC proxy): gRPC's default policy.
FOREIGN_CHANNEL_OPTIONS = [*_LIMITS, *keepalive_options(DEFAULT_SERVER_MIN_PING_INTERVAL_MS)]
# ponder's servers: the message limits, pings from CHANNEL_OPTIONS' clients accepted while idle, and a
# ping of their own every 30 s to find dead clients.
SERVER_OPTIONS = [
    *_LIMITS,
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", OWN_SERVER_MIN_PING_INTERVAL_MS),
    ("grpc.keepalive_permit_without_calls", 1),
]


def create_server(
    address: str,
    register: Callable[[grpc.aio.Server], None],
    service_names: Iterable[str],
    interceptors: list[grpc.aio.ServerInterceptor] | None = None,
    max_receive_bytes: int = MAX_MESSAGE_BYTES,
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Build a grpc.aio server with health, reflection and the error boundary; return (server, bound port, health).

    ``address`` may end in ``:0`` to bind a free port. Services start SERVING
    once the caller has started the server and calls ``mark_serving``. A
    request larger than ``max_receive_bytes`` is refused by gRPC itself
    (RESOURCE_EXHAUSTED) before any handler runs. ``credentials``
    (``ponder.common.tls.server_credentials``) makes the port TLS-only; None serves plaintext.

    The error boundary and the drain gate (``ponder.common.drain``) wrap every
    handler once, as ``register`` adds it (``boundary_handler``), not per call
    in an interceptor: a server with no other ``interceptors`` runs none, which
    spares each call the interceptor chain's coroutines and a handler built
    anew. ``interceptors`` (auth) run outside the boundary, as before.
    """
    options = [*(o for o in SERVER_OPTIONS if o[0] != "grpc.max_receive_message_length"),
               ("grpc.max_receive_message_length", max_receive_bytes)]
    server = grpc.aio.server(options=options, interceptors=list(interceptors) if interceptors else None)
    gate = DrainGate()
    attach(server, gate)
    bounded = _Bounded(server, gate)
    register(bounded)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, bounded)
    names = list(service_names)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], bounded)
    port = server.add_secure_port(address, credentials) if credentials is not None else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind gRPC server to {address}")
    return server, port, health_servicer


class _Bounded:
    """The server as ``register`` sees it: every handler added through it is wrapped in the error
    boundary and the drain gate once; everything else is the server's own."""

    def __init__(self, server: grpc.aio.Server, gate: DrainGate | None = None):
        self._server = server
        self._gate = gate

    def add_generic_rpc_handlers(self, handlers) -> None:
        self._server.add_generic_rpc_handlers(tuple(_BoundedGeneric(h, self._gate) for h in handlers))

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        self._server.add_registered_method_handlers(
            service, {m: boundary_handler(h, f"/{service}/{m}", self._gate) for m, h in handlers.items()})

    def __getattr__(self, name: str):
        return getattr(self._server, name)


class _BoundedGeneric(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come wrapped in the error boundary, each wrapped once."""

    def __init__(self, inner: grpc.GenericRpcHandler, gate: DrainGate | None = None):
        self._inner = inner
        self._gate = gate
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # method -> (inner handler, wrapped)

    def service(self, handler_call_details):
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        seen = self._wrapped.get(method)
        if seen is not None and seen[0] is handler:
            return seen[1]
        wrapped = boundary_handler(handler, method, self._gate)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def boundary_handler(handler: grpc.RpcMethodHandler, method: str,
                     gate: DrainGate | None = None) -> grpc.RpcMethodHandler:
    """``handler`` inside the one error boundary of every ponder server and, with ``gate``, the drain.

    Boundary: an exception escaping the handler becomes the status
    ``errors.GRPC_STATUS`` gives its category, with its message; an abort the
    handler made itself passes through; unknown exceptions are logged with their
    traceback and answered INTERNAL. Drain: each call's arrival is noted, and
    once the gate is closed a new call (health and reflection excepted, so
    probes read NOT_SERVING) is answered UNAVAILABLE. Client-streaming handlers
    are returned unchanged."""
    refuse = not method.startswith(OPEN_PREFIXES)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _unary(handler.unary_unary, method, gate, refuse),
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _stream(handler.unary_stream, method, gate, refuse),
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )
    return handler


async def mark_serving(health_servicer: health.aio.HealthServicer, names: Iterable[str]) -> None:
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def stop_server(
    server: grpc.aio.Server, health_servicer: health.aio.HealthServicer, names: Iterable[str], grace_s: float
) -> None:
    """NOT_SERVING first so load balancers drain, then ``drain.drain_and_stop``: new calls
    UNAVAILABLE, in-flight ones finish within ``grace_s``."""
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await drain_and_stop(server, grace_s)


class Undecodable:
    """What a request that is not a valid protobuf of its type decodes to; the handler answers INVALID_ARGUMENT."""

    def __init__(self, error: BaseException):
        self.error = error


def _lenient(deserializer):
    """Wrap a request deserializer so that bytes it cannot parse reach the handler as ``Undecodable``
    (gRPC itself would answer UNKNOWN, which names nothing and is not the client's fault to read)."""
    if deserializer is None:
        return None

    def decode(data: bytes):
        try:
            return deserializer(data)
        except Exception as e:  # noqa: BLE001 - DecodeError and friends
            return Undecodable(e)

    return decode


def _undecodable(request) -> InvalidArgument | None:
    if isinstance(request, Undecodable):
        return InvalidArgument("request", f"not a valid protobuf message of this method's type ({request.error})")
    return None


async def abort_with(context: grpc.aio.ServicerContext, err: BaseException, method: str = "") -> None:
    """Abort the call with the status of ``err`` (logs the traceback of INTERNAL ones); an error
    with a ``trailing_metadata()`` method sends those (key, value) pairs with the status."""
    code, msg = grpc_status(err)
    if code == grpc.StatusCode.INTERNAL:
        log.error("unhandled error in %s", method or "handler", exc_info=err)
    trailing = getattr(err, "trailing_metadata", None)
    if callable(trailing):  # e.g. grpc-retry-pushback-ms, partial usage of a broken stream
        context.set_trailing_metadata(tuple(trailing()))
    await context.abort(code, msg)


_DRAINING = "server is shutting down; retry on another replica"


async def _refuse(gate, context) -> None:
    gate.refused += 1
    await context.abort(grpc.StatusCode.UNAVAILABLE, _DRAINING)


def _unary(behavior, method: str, gate: DrainGate | None = None, refuse: bool = True):
    async def handle(request, context):
        if gate is not None:
            gate.last_call = time.monotonic()
            if refuse and gate.closed:
                await _refuse(gate, context)
        bad = _undecodable(request)
        if bad is not None:
            await abort_with(context, bad, method)
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as e:  # noqa: BLE001 - this is the boundary
            await abort_with(context, e, method)

    return handle


def _stream(behavior, method: str, gate: DrainGate | None = None, refuse: bool = True):
    async def handle(request, context):
        if gate is not None:
            gate.last_call = time.monotonic()
            if refuse and gate.closed:
                await _refuse(gate, context)
        bad = _undecodable(request)
        if bad is not None:
            await abort_with(context, bad, method)
        try:
            async for item in behavior(request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as e:  # noqa: BLE001 - this is the boundary
            await abort_with(context, e, method)

    return handle
