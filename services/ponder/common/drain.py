"""Graceful drain of a gRPC server: refuse new calls with UNAVAILABLE, let a quiet moment pass, then stop.

Why not just ``server.stop(grace)``: gRPC core answers a call that reached the
server but was not yet handed to the application when shutdown begins with
CANCELLED (grpc/grpc#41785), a status retry policies rightly do not retry. The
asyncio server hands over one call at a time, so under load a call can be in
that queue at any moment. The drain therefore goes in two steps:

1. ``DrainGate.close()``: from now on every new call (health and reflection
   excepted, so probes read NOT_SERVING) is answered UNAVAILABLE by
   the gate check ``grpcutil.boundary_handler`` wraps around every handler,
   at once: an explicit, retryable status;
2. ``drain_and_stop`` waits until no call has arrived for ``QUIET_S`` while the
   event loop was responsive (bounded by the grace period), so the hand-over
   queue is empty, then calls
   ``server.stop`` with the grace that is left; in-flight calls finish within
   it, and calls still running at its end are ended UNAVAILABLE by gRPC.

The whole drain takes at most ``grace_s`` (plus the time to stop).
"""
from __future__ import annotations

import asyncio
import time
import weakref

import grpc

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
QUIET_S = 0.05


class DrainGate:
    """Open while serving; ``close`` starts refusing. ``last_call`` is the monotonic time of the last call seen."""

    def __init__(self):
        self.closed = False
        self.last_call = 0.0
        self.refused = 0

    def close(self) -> None:
        self.closed = True

    async def quiet(self, quiet_s: float, deadline: float, tick_s: float = 0.005) -> bool:
        """Wait until, for ``quiet_s`` on end, no call arrived while this loop was responsive (a tick
        that wakes late restarts the window: calls may have queued unseen), or ``deadline`` (monotonic)
        passes. True when quiet."""
        since = time.monotonic()
        while True:
            before = time.monotonic()
            await asyncio.sleep(tick_s)
            now = time.monotonic()
            if now - before > tick_s + 0.02:
                since = now
            since = max(since, self.last_call)
            if now - since >= quiet_s:
                return True
            if now >= deadline:
                return False


_GATES: "weakref.WeakKeyDictionary[grpc.aio.Server, DrainGate]" = weakref.WeakKeyDictionary()


def attach(server: grpc.aio.Server, gate: DrainGate) -> None:
    _GATES[server] = gate


def gate_of(server: grpc.aio.Server) -> DrainGate | None:
    return _GATES.get(server)


async def drain_and_stop(server: grpc.aio.Server, grace_s: float, quiet_s: float = QUIET_S) -> None:
    """Close the server's gate, wait for a quiet moment (at most ``grace_s``), then stop it with the grace left."""
    t0 = time.monotonic()
    gate = gate_of(server)
    if gate is not None and grace_s > 0:
        gate.close()
        await gate.quiet(quiet_s, t0 + grace_s)
    await server.stop(max(0.0, grace_s - (time.monotonic() - t0)))
