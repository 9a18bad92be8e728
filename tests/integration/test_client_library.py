"""``ponder.client`` (sync and async) against a real router with sim pools (test doubles), and its
retries against a real gRPC server whose Router answers UNAVAILABLE/RESOURCE_EXHAUSTED on purpose."""
from __future__ import annotations

import asyncio

import grpc
import pytest

from ponder.client import Answer, AsyncClient, Client, Delta, RetryBudget, RetryPolicy
from ponder.common.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted, Unavailable
from ponder.v1 import router_pb2, router_pb2_grpc

pytestmark = pytest.mark.integration


async def test_async_client_generate_stream_plan_status_and_typed_errors(sim_stack):
    async with AsyncClient(sim_stack.router.address) as c:
        a = await c.generate("The capital of France is", max_tokens=8)
        assert isinstance(a, Answer) and a.text.startswith("[simulated]") and a.plan.pool == "small"
        assert a.usage.output_tokens == 8 and a.usage.compute_units > 0 and a.simulated
        events = [e async for e in c.stream("hello", strategy="best_of_n", samples=3)]
        assert isinstance(events[-1], Answer) and len(events[-1].samples) == 3
        assert {e.sample_index for e in events if isinstance(e, Delta)} == {0, 1, 2}
        p = await c.plan("x" * 500)
        assert p.plan.pool == "reasoning"
        s = await c.status()
        assert [p.name for p in s.pools] == ["small", "reasoning"] and all(p.healthy for p in s.pools)
        with pytest.raises(InvalidArgument) as exc:
            await c.generate("hi", pool="nope")
        assert exc.value.message.startswith("hints.pool:")


async def test_sync_client_in_a_thread(sim_stack):
    def run():
        with Client(sim_stack.router.address, timeout_s=10) as c:
            a = c.generate("hi")
            stream = list(c.stream("hi"))
            # Leaving a stream early cancels the call and frees the client for the next one.
            for ev in c.stream("hi", strategy="best_of_n", samples=3):
                break
            return a, stream, c.status()

    a, stream, status = await asyncio.to_thread(run)
    assert a.text.startswith("[simulated]") and isinstance(stream[-1], Answer)
    assert "".join(e.text for e in stream if isinstance(e, Delta)) == stream[-1].text
    assert status.pools[0].name == "small"


class Flaky(router_pb2_grpc.RouterServicer):
    """A Router test double: fails the first ``failures`` calls with ``code`` (and pushback), then answers."""

    def __init__(self, failures: int, code=grpc.StatusCode.UNAVAILABLE, pushback_ms: str | None = None):
        self.failures, self.code, self.pushback_ms, self.calls, self.metadata = failures, code, pushback_ms, 0, []

    async def Generate(self, request, context):
        self.calls += 1
        self.metadata.append(dict(context.invocation_metadata()))
        if self.calls <= self.failures:
            if self.pushback_ms is not None:
                context.set_trailing_metadata((("grpc-retry-pushback-ms", self.pushback_ms),))
            await context.abort(self.code, "try later")
        return router_pb2.GenerateResponse(request_id="r", text="ok")


@pytest.fixture
async def flaky_server():
    servers = []

    async def start(servicer):
        server = grpc.aio.server()
        router_pb2_grpc.add_RouterServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for s in servers:
        await s.stop(0)


async def test_retries_honour_pushback_and_send_the_key(flaky_server):
    svc = Flaky(2, grpc.StatusCode.RESOURCE_EXHAUSTED, pushback_ms="30")
    waits = []

    async def sleep(s):
        waits.append(s)
        await asyncio.sleep(s)

    async with AsyncClient(await flaky_server(svc), api_key="sk-1", sleep=sleep) as c:
        a = await c.generate("hi")
    assert a.text == "ok" and svc.calls == 3 and waits == [0.03, 0.03]
    assert all(m["authorization"] == "Bearer sk-1" for m in svc.metadata)


async def test_no_retry_when_the_server_says_so_or_the_budget_is_spent(flaky_server):
    svc = Flaky(5, pushback_ms="-1")
    async with AsyncClient(await flaky_server(svc)) as c:
        with pytest.raises(Unavailable):
            await c.generate("hi")
    assert svc.calls == 1
    svc = Flaky(100)
    budget = RetryBudget(max_tokens=4, token_ratio=0.1)
    async with AsyncClient(await flaky_server(svc), retry=RetryPolicy(max_attempts=10, initial_backoff_s=0.001),
                           budget=budget) as c:
        with pytest.raises(Unavailable):
            await c.generate("hi")
        assert svc.calls == 2  # the second failure leaves 2 of 4 tokens: no third try
        with pytest.raises(Unavailable):
            await c.generate("hi")
        assert svc.calls == 3  # the budget is spent: one try, no retry


async def test_retries_stop_at_max_attempts_and_at_the_deadline(flaky_server):
    svc = Flaky(100, grpc.StatusCode.RESOURCE_EXHAUSTED)
    async with AsyncClient(await flaky_server(svc), retry=RetryPolicy(max_attempts=3, initial_backoff_s=0.001)) as c:
        with pytest.raises(ResourceExhausted):
            await c.generate("hi")
    assert svc.calls == 3
    svc = Flaky(100, pushback_ms="1000")
    async with AsyncClient(await flaky_server(svc)) as c:
        with pytest.raises(Unavailable):
            await c.generate("hi", timeout_s=0.5)  # a 1 s pushback cannot fit in 0.5 s: fail now
    assert svc.calls == 1
    with pytest.raises(DeadlineExceeded):
        async with AsyncClient(await flaky_server(Flaky(0))) as c:
            await c.generate("hi", timeout_s=-1)
