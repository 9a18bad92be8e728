"""The Voting gRPC service end to end on port 0: sim sampler, bad input, a pool going down."""
from __future__ import annotations

import re

import grpc
import pytest

from ponder.common.grpcutil import create_server
from ponder.v1 import pool_pb2, pool_pb2_grpc, voting_pb2, voting_pb2_grpc
from ponder.voting.samplers import PoolTarget, SamplerRegistry
from ponder.voting.servicer import SERVICE, start


class ColumnPool(pool_pb2_grpc.ModelPoolServicer):
    """A fake pool that adds the prompt's last column correctly, then goes down after ``up_for`` calls."""

    def __init__(self, up_for: int):
        self.up_for = up_for
        self.calls = 0
        self.metadata = []

    async def Generate(self, request, context):
        self.calls += 1
        self.metadata.append(dict(context.invocation_metadata()))
        if self.calls > self.up_for:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "replica gone")
        a, b, c = re.search(r"(\d)\+(\d)(?:\+(1))?=$", request.prompt).groups()
        return pool_pb2.PoolGenerateResponse(text=str(int(a) + int(b) + int(c or 0)), prompt_tokens=50, output_tokens=2, finish_reason="stop")


@pytest.fixture
async def fake_pool():
    pool = ColumnPool(up_for=6)
    server, port, _ = create_server("127.0.0.1:0", lambda s: pool_pb2_grpc.add_ModelPoolServicer_to_server(pool, s), ["x"])
    await server.start()
    yield pool, port
    await server.stop(0)


@pytest.fixture
async def voting(fake_pool):
    pool, port = fake_pool
    targets = {"small": PoolTarget("small", f"127.0.0.1:{port}", (("application", "small"),))}
    vs = await start("127.0.0.1:0", SamplerRegistry(targets, default="sim:0.95"))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{vs.port}")
    yield voting_pb2_grpc.VotingStub(channel), pool, vs
    await channel.close()
    await vs.stop(0)


async def events(stub, req):
    steps, summary = [], None
    async for ev in stub.Solve(req):
        if ev.HasField("step"):
            steps.append(ev.step)
        else:
            summary = ev.summary
    return steps, summary


async def test_hanoi_with_the_sim_sampler(voting):
    stub, _, _ = voting
    req = voting_pb2.SolveRequest(task="hanoi", hanoi=voting_pb2.HanoiParams(disks=4), sampler="sim:0.9", seed=7, request_id="r1")
    req.voting.target_success = 0.99
    steps, s = await events(stub, req)
    assert [x.index for x in steps] == list(range(15))
    assert s.success and s.correct and s.simulated and "simulated" in s.sampler
    assert s.request_id == "r1" and s.k >= 3 and s.steps_completed == 15
    assert s.total_samples == s.calibration_samples + sum(x.samples for x in steps)
    assert all(x.votes[0].answer == x.winner and x.votes[0].votes >= s.k for x in steps)
    assert s.answer == "[[], [], [4, 3, 2, 1]]" and s.compute_units > 0 and s.wall_time_ms > 0


async def test_default_sampler_and_red_flags(voting):
    stub, _, _ = voting
    req = voting_pb2.SolveRequest(task="addition", addition=voting_pb2.AdditionParams(digits=6), sampler="sim:0.9:0.3", seed=1)
    req.voting.k = 2
    steps, s = await events(stub, req)
    assert s.red_flags == sum(x.red_flags for x in steps) > 0
    assert all(x.samples == x.red_flags + sum(v.votes for v in x.votes) for x in steps)


@pytest.mark.parametrize(
    "req, field",
    [
        (voting_pb2.SolveRequest(task="sudoku"), "task"),
        (voting_pb2.SolveRequest(task=""), "task"),
        (voting_pb2.SolveRequest(task="hanoi"), "hanoi.disks"),
        (voting_pb2.SolveRequest(task="addition", addition=voting_pb2.AdditionParams(digits=0)), "addition.digits"),
        (voting_pb2.SolveRequest(task="hanoi", hanoi=voting_pb2.HanoiParams(disks=3), voting=voting_pb2.VotingParams(k=0)), "voting.k"),
        (voting_pb2.SolveRequest(task="hanoi", hanoi=voting_pb2.HanoiParams(disks=3), voting=voting_pb2.VotingParams(p=0.4)), "voting.p"),
        (voting_pb2.SolveRequest(task="hanoi", hanoi=voting_pb2.HanoiParams(disks=3), voting=voting_pb2.VotingParams(p=1.0)), "voting.p"),
        (voting_pb2.SolveRequest(task="hanoi", hanoi=voting_pb2.HanoiParams(disks=3), sampler="pool:huge"), "sampler"),
        (voting_pb2.SolveRequest(task="hanoi", hanoi=voting_pb2.HanoiParams(disks=3), sampler="magic"), "sampler"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(voting, req, field):
    stub, _, _ = voting
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await events(stub, req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith(field + ":")


async def test_pool_down_mid_task_fails_with_step_and_progress(voting):
    stub, pool, _ = voting
    req = voting_pb2.SolveRequest(
        task="addition", addition=voting_pb2.AdditionParams(digits=5, a="12345", b="54321"), sampler="pool:small"
    )
    req.voting.k = 2
    req.voting.retries = 1
    steps, s = await events(stub, req)
    # 6 good samples = 3 columns at k=2; column 4 gets UNAVAILABLE, one retry, then fails
    assert len(steps) == 3 and [x.winner for x in steps] == ["6", "6", "6"]
    assert not s.success and s.failed_step == 3 and s.steps_completed == 3
    assert "retries exhausted" in s.error and "replica gone" in s.error
    assert "3/5 columns done, low digits 666" in s.progress
    assert pool.calls == 6 + 2 + 2
    assert pool.metadata[0]["application"] == "small" and "traceparent" in pool.metadata[0]


async def test_health_and_reflection(voting):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    _, _, vs = voting
    async with grpc.aio.insecure_channel(f"127.0.0.1:{vs.port}") as ch:
        r = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert r.status == health_pb2.HealthCheckResponse.SERVING


async def test_voting_client_collects_a_run(voting):
    from ponder.voting.client import VotingClient

    _, _, vs = voting
    client = VotingClient(f"127.0.0.1:{vs.port}")
    try:
        req = voting_pb2.SolveRequest(task="addition", addition=voting_pb2.AdditionParams(digits=4, a="9999", b="1"))
        req.voting.k = 3
        steps, s = await client.solve(req, timeout_s=30)
    finally:
        await client.close()
    assert len(steps) == 4 and s.sampler.startswith("sim:0.95") and s.answer == "10000" and s.correct
