"""Decomposed tasks through the router to the voting workers, over real gRPC."""
from __future__ import annotations

import grpc
import pytest

from ponder.common.config import PonderConfig, PoolConfig, RouterConfig
from ponder.common.telemetry import Tracing
from ponder.pools.servicer import start_standalone
from ponder.router.server import start_router
from ponder.v1 import common_pb2, router_pb2, router_pb2_grpc, voting_pb2
from ponder.voting.servicer import start_from_config

pytestmark = pytest.mark.integration


@pytest.fixture
async def vote_stack(sim_stack):
    """sim_stack's pools plus a voting service and a router that knows it.

    Tasks are planned at their pessimistic voting cost (every sample writes its
    whole allowance), so this router allows large plans."""
    cfg = sim_stack.cfg.model_copy(deep=True)
    cfg.routing.budget.max_cu_per_request = 1e6
    voting = await start_from_config(cfg, "127.0.0.1:0", Tracing("t"))
    handle = await start_router(cfg, None, None, Tracing("t"), address="127.0.0.1:0",
                                voting_address=f"127.0.0.1:{voting.port}")
    ch = grpc.aio.insecure_channel(handle.address)
    yield router_pb2_grpc.RouterStub(ch)
    await ch.close()
    await handle.stop(0)
    await voting.stop(0)


def hanoi(disks: int, sampler: str = "", **voting) -> router_pb2.GenerateRequest:
    task = voting_pb2.SolveRequest(task="hanoi", hanoi=voting_pb2.HanoiParams(disks=disks), sampler=sampler, seed=7)
    for k, v in voting.items():
        setattr(task.voting, k, v)
    return router_pb2.GenerateRequest(task=task)


async def test_task_is_planned_as_vote_and_solved(vote_stack):
    # sim:0.95 is the scripted test double sampler: right with probability 0.95.
    resp = await vote_stack.Generate(hanoi(5, "sim:0.95", k=3), timeout=30)
    assert resp.plan.strategy == "vote" and resp.plan.pool == "small"
    assert "voting" in resp.plan.reason
    s = resp.task_summary
    assert s.success and s.correct and s.simulated and s.steps_completed == 31 and s.k == 3
    assert resp.text == s.answer == "[[], [], [5, 4, 3, 2, 1]]"
    assert resp.usage.samples == s.total_samples >= 31 * 3
    assert resp.usage.compute_units == pytest.approx(s.compute_units, rel=1e-6)


async def test_task_streams_one_delta_per_step(vote_stack):
    events = [e async for e in vote_stack.GenerateStream(hanoi(3, "sim:0.99", k=2), timeout=30)]
    deltas = [e.delta.text for e in events if e.HasField("delta")]
    assert len(deltas) == 7 and deltas[0].startswith("0: ")
    assert events[-1].final.task_summary.steps_completed == 7


async def test_bad_task_input_names_the_field(vote_stack):
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await vote_stack.Generate(hanoi(0, "sim:0.9"), timeout=30)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith("task.")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        req = hanoi(3, "sim:0.9")
        req.hints.strategy = "single"
        await vote_stack.Generate(req, timeout=30)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "hints.strategy" in exc.value.details()


async def test_failed_run_reports_the_step(vote_stack):
    # The sim pool's text is never a valid move: every sample is red-flagged and the step cap ends the run.
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await vote_stack.Generate(hanoi(3, "pool:small", k=1, max_samples_per_step=3), timeout=30)
    assert exc.value.code() == grpc.StatusCode.ABORTED
    assert "failed at step 0" in exc.value.details()


async def test_router_without_voting_refuses_tasks(sim_stack):
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await sim_stack.stub.Generate(hanoi(3, "sim:0.9"), timeout=10)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION and exc.value.details().startswith("task")


async def test_task_on_a_real_pool_through_the_router():
    """Router -> voting workers -> llama.cpp pool (Gemma 3 270M): mechanics, not accuracy."""
    cfg = PonderConfig(pools=[PoolConfig(name="small")], router=RouterConfig(port=0))
    server, port, engine, _ = await start_standalone(cfg.pools[0], "127.0.0.1:0", Tracing("t"))
    cfg.pools[0].address = f"127.0.0.1:{port}"
    voting = await start_from_config(cfg, "127.0.0.1:0", Tracing("t"))
    handle = await start_router(cfg, None, None, Tracing("t"), address="127.0.0.1:0",
                                voting_address=f"127.0.0.1:{voting.port}")
    task = voting_pb2.SolveRequest(task="addition", addition=voting_pb2.AdditionParams(digits=2, a="12", b="34"))
    task.voting.k = 1
    task.voting.max_samples_per_step = 4
    try:
        async with grpc.aio.insecure_channel(handle.address) as ch:
            stub = router_pb2_grpc.RouterStub(ch)
            try:
                resp = await stub.Generate(router_pb2.GenerateRequest(task=task), timeout=120)
                outcome = ("ok", resp)
            except grpc.aio.AioRpcError as e:
                outcome = ("failed", e)
    finally:
        await handle.stop(0)
        await voting.stop(0)
        await server.stop(0)
        await engine.close()
    assert engine.requests_total >= 2  # real samples were drawn from the pool
    if outcome[0] == "ok":
        resp = outcome[1]
        assert resp.task_summary.sampler == "pool:small" and not resp.task_summary.simulated
        assert resp.usage.compute_units > 0 and resp.text.isdigit()
    else:
        assert outcome[1].code() == grpc.StatusCode.ABORTED and "failed at step" in outcome[1].details()
