"""The floor for bench/overhead.py: a bare grpc.aio relay with no logic at all.

It serves ``Router.Generate`` by forwarding the prompt to the pool's
``Generate`` over one kept-open channel and answering the pool's text —
no validation, planning, spans, metrics or outcome records — on the same
event loop the router runs on (``ponder.common.eventloop``). What it adds
over a direct pool call is what one extra gRPC hop costs here; what the
router adds beyond it is the router's own work.

Usage: python bench/_relay.py PORT POOL_ADDRESS
"""
from __future__ import annotations

import sys

import grpc

from ponder.common import eventloop
from ponder.v1 import pool_pb2, pool_pb2_grpc, router_pb2, router_pb2_grpc


class Relay(router_pb2_grpc.RouterServicer):
    def __init__(self, pool_address: str):
        self.pool = pool_pb2_grpc.ModelPoolStub(grpc.aio.insecure_channel(pool_address))

    async def Generate(self, request, context):
        r = await self.pool.Generate(pool_pb2.PoolGenerateRequest(prompt=request.prompt, sampling=request.sampling),
                                     timeout=10, metadata=(("application", "small"),))
        return router_pb2.GenerateResponse(text=r.text)


async def serve(port: int, pool_address: str) -> None:
    server = grpc.aio.server()
    router_pb2_grpc.add_RouterServicer_to_server(Relay(pool_address), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    eventloop.run(serve(int(sys.argv[1]), sys.argv[2]))
