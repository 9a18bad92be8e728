"""The Voting service against a real pool: llama.cpp with the default Gemma 3 270M GGUF."""
from __future__ import annotations

import grpc
import pytest

from ponder.common.config import PoolConfig
from ponder.common.telemetry import Tracing
from ponder.pools.servicer import start_standalone
from ponder.v1 import voting_pb2, voting_pb2_grpc
from ponder.voting.samplers import PoolTarget, SamplerRegistry
from ponder.voting.servicer import start

pytestmark = pytest.mark.integration


async def test_addition_steps_through_a_real_pool():
    pool_server, pool_port, engine, _ = await start_standalone(PoolConfig(name="small"), "127.0.0.1:0", Tracing("test-pool"))
    targets = {"small": PoolTarget("small", f"127.0.0.1:{pool_port}", (), PoolConfig(name="small").cost)}
    vs = await start("127.0.0.1:0", SamplerRegistry(targets))
    try:
        req = voting_pb2.SolveRequest(
            task="addition", addition=voting_pb2.AdditionParams(digits=3, a="314", b="271"), sampler="pool:small", seed=1
        )
        req.voting.k = 1
        req.voting.max_samples_per_step = 6
        steps, summary = [], None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{vs.port}") as ch:
            async for ev in voting_pb2_grpc.VotingStub(ch).Solve(req, timeout=120):
                if ev.HasField("step"):
                    steps.append(ev.step)
                else:
                    summary = ev.summary
    finally:
        await vs.stop(0)
        await pool_server.stop(0)
        await engine.close()
    assert summary is not None and not summary.simulated and summary.sampler == "pool:small"
    # Every decided step's winner is a well-formed column sum the parser accepted.
    for s in steps:
        assert s.winner.isdigit() and int(s.winner) <= 19
        assert s.samples == s.red_flags + sum(v.votes for v in s.votes)
    assert summary.steps_completed == len(steps) >= 1
    assert summary.total_samples == sum(s.samples for s in steps)
    assert engine.requests_total == summary.total_samples
    # Real token accounting: prompt tokens priced by the pool's cost table.
    assert summary.compute_units > summary.total_samples * 10
    if summary.success:
        assert len(steps) == 3 and len(summary.answer) in (3, 4)
    else:
        assert summary.failed_step == len(steps) and summary.error
