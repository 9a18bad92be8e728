"""A Voting client for the router and the CLI: one channel, streaming or collected results."""
from __future__ import annotations

from typing import AsyncIterator, Sequence

import grpc

from ponder.common.grpcutil import CHANNEL_OPTIONS
from ponder.common.telemetry import inject_metadata
from ponder.v1 import voting_pb2, voting_pb2_grpc


class VotingClient:
    def __init__(self, address: str, channel: grpc.aio.Channel | None = None, owns_channel: bool | None = None):
        """``channel`` (e.g. ``ponder.common.guard.internal_channel``, TLS and a key) replaces a plaintext one;
        ``owns_channel`` says whether ``close`` closes it (default: only the channel made here)."""
        self.address = address
        self._own = channel is None if owns_channel is None else owns_channel
        self._channel = channel or grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        self._stub = voting_pb2_grpc.VotingStub(self._channel)

    async def events(
        self, req: voting_pb2.SolveRequest, timeout_s: float | None = None, metadata: Sequence[tuple[str, str]] = ()
    ) -> AsyncIterator[voting_pb2.SolveEvent]:
        """Every event of one Solve call, trace context propagated; AioRpcError on bad input."""
        async for ev in self._stub.Solve(req, timeout=timeout_s, metadata=inject_metadata(metadata)):
            yield ev

    async def solve(
        self, req: voting_pb2.SolveRequest, timeout_s: float | None = None
    ) -> tuple[list[voting_pb2.StepEvent], voting_pb2.SolveSummary]:
        """Collect a whole run: (step events, summary)."""
        steps, summary = [], None
        async for ev in self.events(req, timeout_s):
            if ev.HasField("step"):
                steps.append(ev.step)
            else:
                summary = ev.summary
        return steps, summary

    async def close(self) -> None:
        if self._own:
            await self._channel.close()
