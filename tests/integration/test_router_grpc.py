"""Router over real gRPC with standalone sim pools (latency-model test doubles) and a real redis-server."""
from __future__ import annotations

import asyncio
import json

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ponder.common.grpcutil import stop_server
from ponder.pools.servicer import SERVICE as POOL_SERVICE
from ponder.v1 import common_pb2, router_pb2

pytestmark = pytest.mark.integration


async def test_generate_returns_text_plan_and_usage(sim_stack):
    resp = await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="The capital of France is"), timeout=10)
    assert resp.text.startswith("[simulated]")
    assert resp.simulated
    assert resp.plan.pool == "small" and resp.plan.strategy == "single" and resp.plan.samples == 1
    assert resp.plan.policy == "threshold" and "long_prompt_chars" in resp.plan.reason
    assert resp.usage.output_tokens == 8
    cost = sim_stack.cfg.pool("small").cost
    assert resp.usage.compute_units == pytest.approx(cost.units(resp.usage.prompt_tokens, 8))
    assert resp.usage.latency_ms > 0 and len(resp.request_id) == 32


async def test_think_plan_reports_thinking_tokens(sim_stack):
    resp = await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="Prove it step by step."), timeout=10)
    assert resp.plan.pool == "reasoning" and resp.plan.strategy == "think"
    assert resp.plan.thinking_budget == 8
    assert resp.usage.thinking_tokens == 8
    assert resp.usage.output_tokens == 16  # thinking + answer


async def test_stream_yields_deltas_then_final(sim_stack):
    req = router_pb2.GenerateRequest(prompt="hello", hints=common_pb2.Hints(strategy="best_of_n", samples=3))
    deltas, finals = [], []
    async for ev in sim_stack.stub.GenerateStream(req, timeout=10):
        (deltas if ev.HasField("delta") else finals).append(ev)
    assert len(finals) == 1
    final = finals[0].final
    assert final.plan.strategy == "best_of_n" and final.usage.samples == 3
    assert {d.delta.sample_index for d in deltas} == {0, 1, 2}
    assert len(deltas) == 3 * 8
    assert len(final.samples) == 3 and final.text in final.samples


async def test_plan_is_a_dry_run(sim_stack):
    resp = await sim_stack.stub.Plan(router_pb2.GenerateRequest(prompt="x" * 500), timeout=10)
    assert resp.plan.pool == "reasoning"
    stats = sim_stack.pools["reasoning"][2].stats()
    assert stats["requests_total"] == 0


@pytest.mark.parametrize(
    "request_kwargs, field",
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 40_000}, "prompt"),
        ({"prompt": "hi", "hints": common_pb2.Hints(pool="nope")}, "hints.pool"),
        ({"prompt": "hi", "budget": common_pb2.Budget(max_compute_units=-5)}, "budget.max_compute_units"),
        ({"prompt": "hi", "budget": common_pb2.Budget(max_compute_units=1e12)}, "budget.max_compute_units"),
        ({"prompt": "hi", "budget": common_pb2.Budget(max_compute_units=0.01)}, "budget.max_compute_units"),
        ({"prompt": "hi", "sampling": common_pb2.SamplingParams(temperature=float("nan"))}, "sampling.temperature"),
        ({"prompt": "hi", "sampling": common_pb2.SamplingParams(max_tokens=0)}, "sampling.max_tokens"),
        ({"prompt": "hi", "sampling": common_pb2.SamplingParams(top_p=1.5)}, "sampling.top_p"),
        ({"prompt": "hi", "hints": common_pb2.Hints(strategy="magic")}, "hints.strategy"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(sim_stack, request_kwargs, field):
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await sim_stack.stub.Generate(router_pb2.GenerateRequest(**request_kwargs), timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details().startswith(field + ":")
    # The router is still healthy after each bad request.
    ok = await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="still up?"), timeout=10)
    assert ok.text


async def test_bad_input_on_stream_and_plan(sim_stack):
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        async for _ in sim_stack.stub.GenerateStream(router_pb2.GenerateRequest(prompt=""), timeout=10):
            pass
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await sim_stack.stub.Plan(router_pb2.GenerateRequest(prompt="hi", hints=common_pb2.Hints(pool="gpu")), timeout=10)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "hints.pool" in exc.value.details()


async def test_pool_down_is_unavailable_naming_the_pool(sim_stack):
    server, _, _, health = sim_stack.pools["small"]
    await stop_server(server, health, [POOL_SERVICE], 0)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="hi"), timeout=10)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "'small'" in exc.value.details()
    # Other pools keep serving.
    ok = await sim_stack.stub.Generate(
        router_pb2.GenerateRequest(prompt="hi", hints=common_pb2.Hints(pool="reasoning")), timeout=10
    )
    assert ok.plan.pool == "reasoning"
    status = await sim_stack.stub.Status(router_pb2.StatusRequest(), timeout=10)
    by_name = {p.name: p for p in status.pools}
    assert not by_name["small"].healthy and by_name["small"].error
    assert by_name["reasoning"].healthy and by_name["reasoning"].stats.simulated


async def test_deadline_exceeded(sim_stack):
    slow = router_pb2.GenerateRequest(prompt="hi", sampling=common_pb2.SamplingParams(max_tokens=8))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await sim_stack.stub.Generate(slow, timeout=0.003)
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # A pool slower than it declares: the plan fits max_latency_ms, the deadline stops the run.
    engine = sim_stack.pools["small"][2]
    engine.backend.cfg = engine.backend.cfg.model_copy(update={"tpot_ms": 50})
    capped = router_pb2.GenerateRequest(
        prompt="hi", sampling=common_pb2.SamplingParams(max_tokens=8), budget=common_pb2.Budget(max_latency_ms=100)
    )
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await sim_stack.stub.Generate(capped, timeout=10)
    assert exc.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "pool 'small'" in exc.value.details()


async def test_client_cancel_reaches_the_pool(sim_stack):
    engine = sim_stack.pools["small"][2]
    engine.backend.cfg = engine.backend.cfg.model_copy(update={"tpot_ms": 50, "output_tokens": 1000})
    call = sim_stack.stub.GenerateStream(
        router_pb2.GenerateRequest(prompt="hi", sampling=common_pb2.SamplingParams(max_tokens=1000)), timeout=30
    )
    got = 0
    async for ev in call:
        got += 1
        if got == 2:
            call.cancel()
            break
    for _ in range(100):
        if engine.running == 0:
            break
        await asyncio.sleep(0.02)
    assert engine.running == 0
    assert engine.output_tokens_total < 100


async def test_outcome_log_records_each_request(sim_stack, redis_url):
    r = aioredis.Redis.from_url(redis_url)
    stream = sim_stack.cfg.redis.outcome_stream
    await r.delete(stream)
    ok = await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="log me", labels={"tenant": "a"}), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError):
        await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="hi", hints=common_pb2.Hints(strategy="x")), timeout=10)
    records = []
    for _ in range(100):
        records = await r.xrange(stream)
        if len(records) >= 2:
            break
        await asyncio.sleep(0.02)
    await r.aclose()
    assert len(records) == 2
    first = {k.decode(): v.decode() for k, v in records[0][1].items()}
    assert first["request_id"] == ok.request_id and first["prompt"] == "log me"
    assert first["status"] == "OK" and first["pool"] == "small"
    assert json.loads(first["usage"])["compute_units"] == pytest.approx(ok.usage.compute_units)
    assert json.loads(first["plan"])["strategy"] == "single"
    assert json.loads(first["labels"]) == {"tenant": "a"}
    second = {k.decode(): v.decode() for k, v in records[1][1].items()}
    assert second["status"] == "INVALID_ARGUMENT" and "hints.strategy" in second["error"]


async def test_context_id_is_resolved_from_redis(sim_stack, redis_url):
    missing = router_pb2.GenerateRequest(prompt="q", context_id="nope")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await sim_stack.stub.Generate(missing, timeout=10)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND and "context_id" in exc.value.details()
    await sim_stack.router.servicer.contexts.put("doc1", "A long document." * 10)
    resp = await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="q", context_id="doc1"), timeout=10)
    assert resp.plan.context_id == "doc1"
    assert resp.usage.prompt_tokens >= len("A long document." * 10) // 4


async def test_trace_context_links_router_and_pool_spans(sim_stack):
    sim_stack.spans.clear()
    await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="trace me"), timeout=10)
    await asyncio.sleep(0.05)
    spans = {s.name: s for s in sim_stack.spans.get_finished_spans()}
    root, dispatch, pool = spans["router.generate"], spans["router.dispatch"], spans["pool.generate"]
    assert "router.plan" not in spans  # the plan is recorded on the request's own span
    assert (root.attributes["ponder.pool"], root.attributes["ponder.strategy"]) == ("small", "single")
    assert dispatch.parent.span_id == root.context.span_id
    # The pool span is a child of the router's dispatch span across the gRPC hop.
    assert pool.parent.span_id == dispatch.context.span_id
    assert pool.context.trace_id == root.context.trace_id
    assert pool.attributes["ponder.pool"] == "small"


async def test_health_and_reflection(sim_stack):
    health = health_pb2_grpc.HealthStub(sim_stack.channel)
    resp = await health.Check(health_pb2.HealthCheckRequest(service="ponder.v1.Router"), timeout=5)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(sim_stack.channel)

    async def reqs():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for r in refl.ServerReflectionInfo(reqs(), timeout=5):
        names = {s.name for s in r.list_services_response.service}
        assert {"ponder.v1.Router", "grpc.health.v1.Health"} <= names
        break


async def test_feedback_is_stored_for_training(sim_stack, redis_url):
    from ponder.router.outcome_schema import FEEDBACK_HASH, feedback_correct

    resp = await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="2+2="), timeout=10)
    await sim_stack.stub.Feedback(router_pb2.FeedbackRequest(request_id=resp.request_id, correct=False), timeout=10)
    await sim_stack.stub.Feedback(router_pb2.FeedbackRequest(request_id="other", score=0.9), timeout=10)
    r = aioredis.Redis.from_url(redis_url)
    stored = await r.hgetall(FEEDBACK_HASH)
    await r.aclose()
    assert feedback_correct(stored[resp.request_id.encode()]) is False
    assert feedback_correct(stored[b"other"]) is True
    for bad, field in [
        (router_pb2.FeedbackRequest(request_id="x"), "correct"),
        (router_pb2.FeedbackRequest(request_id="", correct=True), "request_id"),
        (router_pb2.FeedbackRequest(request_id="x", score=1.5), "score"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await sim_stack.stub.Feedback(bad, timeout=10)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and exc.value.details().startswith(field)


async def test_fallback_pool_answers_when_the_planned_one_is_down(sim_stack):
    cfg = sim_stack.cfg.model_copy(deep=True)
    cfg.routing.fallback_pool = "reasoning"
    await sim_stack.router.reload(cfg)
    server, _, _, health = sim_stack.pools["small"]
    await stop_server(server, health, [POOL_SERVICE], 0)
    resp = await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="hi"), timeout=10)
    assert resp.plan.pool == "reasoning" and resp.plan.strategy == "single"
    assert "fell back to 'reasoning'" in resp.plan.reason
    # A forced pool is never swapped behind the client's back.
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="hi", hints=common_pb2.Hints(pool="small")), timeout=10)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
