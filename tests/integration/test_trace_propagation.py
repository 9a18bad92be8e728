"""One trace across the fleet: router -> pool, router -> voting workers, router -> (queued job) -> consolidator
-> pool, and a client's trace into the consolidator's RPC spans. Real gRPC servers on port 0, real redis-server,
sim pools (test doubles with a latency model); spans caught by OpenTelemetry's in-memory exporter."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conftest import sim_config
from ponder.common.config import ConsolidatorConfig
from ponder.common.grpcutil import stop_server
from ponder.common.telemetry import Tracing, inject_metadata
from ponder.consolidation.servicer import start as start_consolidator
from ponder.pools.servicer import SERVICE as POOL_SERVICE, start_standalone
from ponder.router.server import start_router
from ponder.v1 import consolidation_pb2 as cpb, consolidation_pb2_grpc, router_pb2, router_pb2_grpc, voting_pb2
from ponder.voting.servicer import start_from_config
from test_consolidator import FAST, POLICY, TEXT

pytestmark = pytest.mark.integration


@pytest.fixture
async def fleet(redis_url, redis_client, tmp_path):  # redis_client: an empty database
    spans = InMemorySpanExporter()
    tracing = Tracing("ponder-test", spans, simple=True)
    cfg = sim_config()
    cfg.routing.budget.max_cu_per_request = 1e6  # tasks are planned at their pessimistic voting cost
    cfg.consolidator = ConsolidatorConfig(**FAST)
    pools = []
    for p in cfg.pools:
        server, port, engine, health = await start_standalone(p, "127.0.0.1:0", tracing)
        pools.append((server, engine, health))
        p.address = f"127.0.0.1:{port}"
    policy = tmp_path / "consolidation.yaml"
    policy.write_text(POLICY)
    voting = await start_from_config(cfg, "127.0.0.1:0", tracing)
    consolidator = await start_consolidator(cfg, redis_url, "127.0.0.1:0", policy_file=str(policy), tracing=tracing)
    router = await start_router(cfg, None, redis_url, tracing, address="127.0.0.1:0",
                                voting_address=f"127.0.0.1:{voting.port}")
    rch = grpc.aio.insecure_channel(router.address)
    cch = grpc.aio.insecure_channel(f"127.0.0.1:{consolidator.port}")
    yield (router_pb2_grpc.RouterStub(rch), consolidation_pb2_grpc.ConsolidatorStub(cch), spans, tracing)
    await rch.close()
    await cch.close()
    await router.stop(0)
    await consolidator.stop(0)
    await voting.stop(0)
    for server, engine, health in pools:
        await stop_server(server, health, [POOL_SERVICE], 0)
        await engine.close()


def by_trace(spans: InMemorySpanExporter, trace_id: int) -> list:
    return [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]


async def test_router_trace_reaches_the_voting_workers(fleet):
    router, _, spans, _ = fleet
    task = voting_pb2.SolveRequest(task="hanoi", hanoi=voting_pb2.HanoiParams(disks=3), sampler="sim:0.99", seed=7)
    task.voting.k = 2
    resp = await router.Generate(router_pb2.GenerateRequest(task=task), timeout=30)
    assert resp.task_summary.success
    (root,) = [s for s in spans.get_finished_spans() if s.name == "router.generate"]
    (solve,) = [s for s in spans.get_finished_spans() if s.name == "voting.solve"]
    assert solve.context.trace_id == root.context.trace_id
    assert solve.parent is not None and solve.parent.is_remote
    assert solve.resource.attributes["service.name"] == "ponder-test"


async def test_router_trace_continues_through_the_queued_consolidation_job(fleet):
    router, consolidator, spans, tracing = fleet
    # A client's own trace enters the consolidator's RPC spans (OpenTelemetry's gRPC server interceptor).
    with tracing.tracer.start_as_current_span("client") as client:
        await consolidator.PutContext(cpb.PutContextRequest(context_id="doc", text=TEXT), metadata=inject_metadata(),
                                      timeout=10)
    put = [s for s in spans.get_finished_spans() if s.name.endswith("/PutContext")]
    assert put and put[0].context.trace_id == client.get_span_context().trace_id
    assert put[0].kind.name == "SERVER"

    # A request that uses the context queues a consolidation job; the job runs in the consolidator under the
    # request's trace, and so do the pool calls it makes.
    spans.clear()
    await router.Generate(router_pb2.GenerateRequest(prompt="Who manages the depot?", context_id="doc"), timeout=10)
    deadline = time.monotonic() + 20
    while not [s for s in spans.get_finished_spans() if s.name == "consolidator.job"] and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    (root,) = [s for s in spans.get_finished_spans() if s.name == "router.generate"]
    (job,) = [s for s in spans.get_finished_spans() if s.name == "consolidator.job"]
    assert job.context.trace_id == root.context.trace_id
    assert job.parent.span_id == root.context.span_id and job.attributes["ponder.context_id"] == "doc"
    # The request's span says which form of the context it sent (raw here: nothing is consolidated yet).
    assert root.attributes["ponder.context_id"] == "doc" and root.attributes["ponder.context.consolidated"] is False
    assert root.attributes["ponder.context.focused"] is False
    assert root.attributes["ponder.context.tokens_sent"] == root.attributes["ponder.context.tokens_raw"] > 0
    job_pool_calls = [s for s in by_trace(spans, root.context.trace_id)
                      if s.name == "pool.generate" and s.parent.span_id == job.context.span_id]
    assert job_pool_calls, [(s.name, s.parent) for s in by_trace(spans, root.context.trace_id)]
