"""gRPC clients for pools: one kept-open channel per pool, deadlines, cancellation.

Calls carry the pool name in the ``application`` metadata key (Ray Serve's
gRPC proxy routes on it; a standalone pool ignores it) and the W3C trace
context of the current span. Cancelling the awaiting task cancels the RPC, so
a client that hangs up stops generation in the pool.
"""
from __future__ import annotations

import re
from typing import AsyncIterator, Sequence

import grpc

from ponder.common.config import PoolConfig
from ponder.common.errors import DeadlineExceeded, InvalidArgument, PonderError, PoolUnavailable
from ponder.common.grpcutil import CHANNEL_OPTIONS
from ponder.common.telemetry import inject_metadata
from ponder.v1 import pool_pb2, pool_pb2_grpc


# "field.path[0]: problem", as every ponder service words INVALID_ARGUMENT details.
_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


def split_field(details: str) -> tuple[str | None, str]:
    """("field.path", "problem") from INVALID_ARGUMENT details; (None, details) without a field."""
    m = _FIELD.match(details)
    return (m.group(1), details[m.end():]) if m else (None, details)


class PoolCallError(PonderError):
    """A pool answered with an error status that has no more specific domain error."""

    def __init__(self, pool: str, code: grpc.StatusCode, details: str):
        self.pool = pool
        self.code = code
        super().__init__(f"pool {pool!r}: {details}")


def map_rpc_error(pool: str, err: grpc.aio.AioRpcError, timeout_s: float) -> PonderError:
    """Translate a pool's status into the router's domain errors (pure; unit-tested).

    The pool's own status stays on the result as ``rpc_code`` and ``rpc_details``
    for callers that decide by it (the voting sampler's retry rule).
    """
    mapped = _map(pool, err.code(), err.details() or "", timeout_s)
    mapped.rpc_code, mapped.rpc_details = err.code(), err.details() or ""
    return mapped


def _map(pool: str, code: grpc.StatusCode, details: str, timeout_s: float) -> PonderError:
    if code == grpc.StatusCode.UNAVAILABLE:
        return PoolUnavailable(pool, details or "connection failed")
    if code == grpc.StatusCode.NOT_FOUND:
        # Serve's proxy answers NOT_FOUND when the pool's application is not deployed.
        return PoolUnavailable(pool, f"not deployed ({details})")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"pool {pool!r}", timeout_s)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, problem = split_field(details)
        return InvalidArgument(field or "request", f"{problem} (pool {pool!r})")
    return PoolCallError(pool, code, details)


class PoolClient:
    """One pool's kept-open channel. ``route`` is the metadata that reaches the pool;
    by default Serve's ``application`` key with the pool's name."""

    def __init__(self, name: str, address: str, route: Sequence[tuple[str, str]] | None = None):
        self.name = name
        self.address = address
        self.channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self.stub = pool_pb2_grpc.ModelPoolStub(self.channel)
        self._route = tuple(route) if route is not None else (("application", name),)

    def _metadata(self) -> list[tuple[str, str]]:
        return inject_metadata(self._route)

    async def generate(self, req: pool_pb2.PoolGenerateRequest, timeout_s: float) -> pool_pb2.PoolGenerateResponse:
        try:
            return await self.stub.Generate(req, timeout=timeout_s, metadata=self._metadata())
        except grpc.aio.AioRpcError as e:
            raise map_rpc_error(self.name, e, timeout_s) from None

    async def stream(self, req: pool_pb2.PoolGenerateRequest, timeout_s: float) -> AsyncIterator[pool_pb2.PoolGenerateChunk]:
        call = self.stub.GenerateStream(req, timeout=timeout_s, metadata=self._metadata())
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as e:
            raise map_rpc_error(self.name, e, timeout_s) from None
        finally:
            call.cancel()  # no-op when finished; stops the pool when we stop early

    async def stats(self, timeout_s: float = 2.0) -> pool_pb2.PoolStats:
        try:
            return await self.stub.Stats(pool_pb2.PoolStatsRequest(), timeout=timeout_s, metadata=self._metadata())
        except grpc.aio.AioRpcError as e:
            raise map_rpc_error(self.name, e, timeout_s) from None

    async def close(self) -> None:
        await self.channel.close()


class PoolClients:
    """The router's clients, one per configured pool."""

    def __init__(self, pools: list[PoolConfig], default_address: str | None = None):
        self.clients: dict[str, PoolClient] = {}
        for p in pools:
            addr = p.address or default_address
            if addr is None:
                raise ValueError(f"pool {p.name!r} has no address and no default (Serve gRPC proxy) address")
            self.clients[p.name] = PoolClient(p.name, addr)

    def __getitem__(self, name: str) -> PoolClient:
        return self.clients[name]

    async def close(self) -> None:
        for c in self.clients.values():
            await c.close()
