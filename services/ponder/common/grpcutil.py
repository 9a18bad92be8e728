"""gRPC server helpers: health checking, reflection, and the error-to-status boundary."""
from __future__ import annotations

import functools
import logging
from typing import Any, Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ponder.common.errors import grpc_status

log = logging.getLogger(__name__)

# Keepalive and message limits shared by every server and client.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
]


def create_server(
    address: str,
    register: Callable[[grpc.aio.Server], None],
    service_names: Iterable[str],
    interceptors: list[grpc.aio.ServerInterceptor] | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Build a grpc.aio server with health and reflection; return (server, bound port, health).

    ``address`` may end in ``:0`` to bind a free port. Services start SERVING
    once the caller has started the server and calls ``mark_serving``.
    """
    server = grpc.aio.server(options=CHANNEL_OPTIONS, interceptors=interceptors or [])
    register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind gRPC server to {address}")
    return server, port, health_servicer


async def mark_serving(health_servicer: health.aio.HealthServicer, names: Iterable[str]) -> None:
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def stop_server(
    server: grpc.aio.Server, health_servicer: health.aio.HealthServicer, names: Iterable[str], grace_s: float
) -> None:
    """NOT_SERVING first so load balancers drain, then stop with a grace period."""
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.stop(grace_s)


def rpc_errors(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Unary handler boundary: domain errors -> their status code; never a bare crash."""

    @functools.wraps(fn)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        try:
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as e:  # noqa: BLE001 - this is the boundary
            code, msg = grpc_status(e)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("unhandled error in %s", fn.__name__)
            await context.abort(code, msg)

    return wrapper


def stream_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Server-streaming handler boundary (async generator)."""

    @functools.wraps(fn)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        try:
            async for item in fn(self, request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as e:  # noqa: BLE001
            code, msg = grpc_status(e)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("unhandled error in %s", fn.__name__)
            await context.abort(code, msg)

    return wrapper
