"""budget.max_latency_ms as a planning cap, end to end: sim pools declaring their speed,
the router learning it from answers, and ``ponder plan`` showing the estimates."""
from __future__ import annotations

import asyncio

import grpc
import pytest

from ponder.cli import main as ponder_main
from ponder.v1 import common_pb2, router_pb2

pytestmark = pytest.mark.integration

PROMPT = "The capital of France is"  # 6 prompt tokens by the router's estimate


def ask(max_latency_ms: float | None = None, max_tokens: int | None = None) -> router_pb2.GenerateRequest:
    req = router_pb2.GenerateRequest(prompt=PROMPT)
    if max_latency_ms is not None:
        req.budget.max_latency_ms = max_latency_ms
    if max_tokens is not None:
        req.sampling.max_tokens = max_tokens
    return req


async def test_tight_cap_is_refused_naming_the_field_and_a_loose_one_answers(sim_stack):
    # small/single at the declared sim speed: 1 ms + 6 / 1e6 s + 64 tokens / 1000 per s = 65.006 ms.
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await sim_stack.stub.Generate(ask(max_latency_ms=10), timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith("budget.max_latency_ms: 10 ms is below the fastest plan (~65 ms")
    assert sim_stack.pools["small"][2].stats()["requests_total"] == 0

    resp = await sim_stack.stub.Generate(ask(max_latency_ms=5000), timeout=10)
    assert resp.text.startswith("[simulated]")
    assert resp.plan.expected_latency_ms == pytest.approx(65.006)
    assert resp.plan.candidates == []  # answers carry the choice; Router.Plan lists the alternatives
    plan = (await sim_stack.stub.Plan(ask(max_latency_ms=5000), timeout=10)).plan
    assert plan.candidates[0].expected_latency_ms == pytest.approx(65.006)


async def test_observed_speed_replaces_the_declared_one(sim_stack):
    engine = sim_stack.pools["small"][2]
    engine.backend.cfg = engine.backend.cfg.model_copy(update={"tpot_ms": 10})  # 10x slower than declared
    declared = (await sim_stack.stub.Plan(ask(max_latency_ms=40, max_tokens=8), timeout=10)).plan
    assert declared.expected_latency_ms == pytest.approx(9.006)
    await sim_stack.stub.Generate(ask(max_tokens=8), timeout=10)
    async for _ in sim_stack.stub.GenerateStream(ask(max_tokens=8), timeout=10):
        pass
    for _ in range(3):
        await sim_stack.stub.Generate(ask(max_tokens=8), timeout=10)
    # Five answers of 8 tokens, 7 x 10 ms after the first: the estimate is at least 70 ms now.
    observed = (await sim_stack.stub.Plan(ask(max_tokens=8), timeout=10)).plan
    assert observed.expected_latency_ms > 60
    on_small = ask(max_latency_ms=40, max_tokens=8)
    on_small.hints.pool = "small"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await sim_stack.stub.Plan(on_small, timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith("budget.max_latency_ms: 40 ms")
    # Unhinted, the plan moves to the pool still fast enough.
    assert (await sim_stack.stub.Plan(ask(max_latency_ms=40, max_tokens=8), timeout=10)).plan.pool == "reasoning"


async def test_plan_command_shows_expected_latency(sim_stack, capsys):
    # 5 prompt tokens; reasoning/think (T=8): 1 + (5 + 13) / 1e6 s + (8 + 64) / 1000 per s = 73.018 ms,
    # over the cap; the thinking budget is cut first: T=4 takes 1 + (5 + 9) / 1e6 s + (4 + 64) / 1000 per s = 69 ms.
    argv = ["plan", "Prove it step by step", "--max-latency-ms", "70", "--address", sim_stack.router.address]
    assert await asyncio.to_thread(ponder_main, argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("pool=reasoning strategy=think samples=1 thinking_budget=4") and "69 ms" in out[0]
    assert "cut to fit budget.max_latency_ms=70" in out[1]
    lines = out[3:]
    assert lines[0].startswith("   reasoning/think n=1 think=4") and "latency=69ms" in lines[0]
    t8 = next(x for x in lines if x.startswith(" x reasoning/think n=1 think=8 "))
    assert "latency=73ms" in t8 and "takes ~73 ms > cap 70 ms" in t8
