"""The Router gRPC service: proto in, the shared request path, proto out.

Every step (validate -> context -> plan -> dispatch -> cost -> record) lives
in ``router.request_path.RequestPath``, which the OpenAI-compatible HTTP front
calls too. This servicer only hands over the caller's metadata and deadline;
errors propagate to the server's one error boundary (``grpcutil.boundary_handler``).
"""
from __future__ import annotations

import contextlib

from ponder.router.request_path import RequestPath, RouterState, with_context  # noqa: F401 - re-exported
from ponder.v1 import router_pb2_grpc


class RouterServicer(router_pb2_grpc.RouterServicer):
    def __init__(self, path: RequestPath):
        self.path = path

    # What callers of the router read through its servicer (reloads, tests).
    @property
    def state(self):
        return self.path.state

    @property
    def outcomes(self):
        return self.path.outcomes

    @property
    def contexts(self):
        return self.path.contexts

    async def reload(self, state: RouterState, close_old_after_s: float) -> None:
        await self.path.reload(state, close_old_after_s)

    async def Generate(self, request, context):
        return await self.path.generate(request, context.invocation_metadata() or (), context.time_remaining())

    async def GenerateStream(self, request, context):
        events = self.path.stream(request, context.invocation_metadata() or (), context.time_remaining())
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def Plan(self, request, context):
        return await self.path.plan(request, context.invocation_metadata() or ())

    async def Feedback(self, request, context):
        return await self.path.record_feedback(request)

    async def Status(self, request, context):
        return await self.path.status()
