"""The client side of a pool: one kept-open gRPC channel, deadlines, cancellation, status -> domain error.

Calls carry the pool name in the ``application`` metadata key (Ray Serve's
gRPC proxy routes on it; a standalone pool ignores it) and the W3C trace
context of the current span. Cancelling the awaiting task cancels the RPC, so
a caller that hangs up stops generation in the pool. Used by the router and
by the voting and consolidation workers alike.
"""
from __future__ import annotations

from typing import AsyncIterator, Sequence

import grpc

from ponder.common.errors import (
    DeadlineExceeded,
    InvalidArgument,
    PonderError,
    PoolUnavailable,
    from_status,
    split_field,
)
from ponder.common.grpcutil import FOREIGN_CHANNEL_OPTIONS
from ponder.common.telemetry import inject_metadata
from ponder.v1 import pool_pb2, pool_pb2_grpc

# Ray Serve answers INTERNAL with these in the details when the replica process is gone.
_REPLICA_GONE = ("ActorDiedError", "RayActorError", "ActorUnavailableError", "ActorUnschedulableError")


def map_status(pool: str, code: grpc.StatusCode, details: str, timeout_s: float) -> PonderError:
    """A pool's error status as a domain error (pure; unit-tested).

    Unreachable (UNAVAILABLE, NOT_FOUND from Serve's proxy for an application
    not deployed, INTERNAL naming a dead Serve replica) -> PoolUnavailable, the
    error that triggers ``routing.fallback_pool``; DEADLINE_EXCEEDED ->
    DeadlineExceeded; INVALID_ARGUMENT keeps the pool's field path; anything
    else -> the category of the code, naming the pool.
    """
    if code == grpc.StatusCode.UNAVAILABLE:
        return PoolUnavailable(pool, details or "connection failed")
    if code == grpc.StatusCode.NOT_FOUND:
        return PoolUnavailable(pool, f"not deployed ({details})")
    if code == grpc.StatusCode.INTERNAL and any(m in details for m in _REPLICA_GONE):
        return PoolUnavailable(pool, f"replica gone ({details[:200]})")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"pool {pool!r}", timeout_s)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, problem = split_field(details)
        return InvalidArgument(field or "request", f"{problem} (pool {pool!r})")
    return from_status(code, f"pool {pool!r}: {details}")


class PoolClient:
    """One pool's kept-open channel. ``route`` is the metadata that reaches the pool;
    by default Serve's ``application`` key with the pool's name."""

    def __init__(self, name: str, address: str, route: Sequence[tuple[str, str]] | None = None):
        self.name = name
        self.address = address
        self.channel = grpc.aio.insecure_channel(address, options=FOREIGN_CHANNEL_OPTIONS)
        self.stub = pool_pb2_grpc.ModelPoolStub(self.channel)
        self._route = tuple(route) if route is not None else (("application", name),)

    def _metadata(self) -> list[tuple[str, str]]:
        return inject_metadata(self._route)

    def _error(self, e: grpc.aio.AioRpcError, timeout_s: float) -> PonderError:
        return map_status(self.name, e.code(), e.details() or "", timeout_s)

    async def generate(self, req: pool_pb2.PoolGenerateRequest, timeout_s: float) -> pool_pb2.PoolGenerateResponse:
        try:
            return await self.stub.Generate(req, timeout=timeout_s, metadata=self._metadata())
        except grpc.aio.AioRpcError as e:
            raise self._error(e, timeout_s) from None

    async def stream(self, req: pool_pb2.PoolGenerateRequest, timeout_s: float) -> AsyncIterator[pool_pb2.PoolGenerateChunk]:
        call = self.stub.GenerateStream(req, timeout=timeout_s, metadata=self._metadata())
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as e:
            raise self._error(e, timeout_s) from None
        finally:
            call.cancel()  # no-op when finished; stops the pool when we stop early

    async def stats(self, timeout_s: float = 2.0) -> pool_pb2.PoolStats:
        try:
            return await self.stub.Stats(pool_pb2.PoolStatsRequest(), timeout=timeout_s, metadata=self._metadata())
        except grpc.aio.AioRpcError as e:
            raise self._error(e, timeout_s) from None

    async def close(self) -> None:
        await self.channel.close()
