"""The router servicer with fake pool clients (test doubles, no network): the request path
end to end — context before planning, usage, outcome records, fallback, feedback, errors.
The same paths over real gRPC servers are covered in tests/integration/test_router_grpc.py."""
from __future__ import annotations

import pytest

from ponder.common.config import parse_config
from ponder.common.errors import InvalidArgument, PoolUnavailable
from ponder.common.telemetry import Tracing
from ponder.router import strategies as registry
from ponder.router.contexts import ContextNotFound, ResolvedContext
from ponder.router.feedback import FeedbackUnavailable
from ponder.router.policies.base import build_policy
from ponder.router.request_path import RequestPath, RouterState
from ponder.router.servicer import RouterServicer
from ponder.v1 import pool_pb2, router_pb2


class FakePool:
    """A pool client test double: answers ``text`` with fixed token counts, or raises ``error``."""

    def __init__(self, name: str, text: str = "ok", error: Exception | None = None):
        self.name, self.text, self.error, self.address = name, text, error, f"fake:{name}"
        self.calls: list[pool_pb2.PoolGenerateRequest] = []

    async def generate(self, req, timeout_s):
        self.calls.append(req)
        if self.error is not None:
            raise self.error
        return pool_pb2.PoolGenerateResponse(text=self.text, finish_reason="stop", prompt_tokens=10,
                                             output_tokens=4, model=f"model-{self.name}")

    async def stream(self, req, timeout_s):
        r = await self.generate(req, timeout_s)
        yield pool_pb2.PoolGenerateChunk(delta={"text": r.text})
        yield pool_pb2.PoolGenerateChunk(final=r)

    async def stats(self, timeout_s=2.0):
        return pool_pb2.PoolStats(pool=self.name, model=f"model-{self.name}")

    async def close(self):
        pass


class FakeClients(dict):
    async def close(self):
        pass


class FakeContext:
    def __init__(self, remaining: float | None = None):
        self.remaining = remaining

    def invocation_metadata(self):
        return ()

    def time_remaining(self):
        return self.remaining


class Records:
    def __init__(self):
        self.items = []

    def record(self, item):
        self.items.append(item.fields())


class Contexts:
    """Test double of the router's context store: fixed resolved contexts; records the queries."""

    def __init__(self, store: dict[str, ResolvedContext]):
        self.store = store
        self.queries: list[str] = []

    async def resolve(self, cid, count_use=True, query=""):
        self.queries.append(query)
        if cid not in self.store:
            raise ContextNotFound(cid)
        return self.store[cid]


class Feedback:
    def __init__(self):
        self.got = []

    async def put(self, request_id, correct, score):
        self.got.append((request_id, correct, score))


def servicer(routing: dict | None = None, pools: dict | None = None, **kw):
    cfg = parse_config({"routing": routing or {}})
    strategies = registry.build()
    clients = FakeClients(pools or {p.name: FakePool(p.name) for p in cfg.pools})
    state = RouterState(cfg, build_policy(cfg, strategies), clients, strategies)
    return RouterServicer(RequestPath(state, Tracing("test"), **kw)), clients


async def test_generate_answers_prices_usage_and_records_the_outcome():
    rec = Records()
    svc, clients = servicer(outcomes=rec)
    resp = await svc.Generate(router_pb2.GenerateRequest(prompt="What is 2+2?", request_id="r1"), FakeContext())
    assert (resp.text, resp.plan.pool, resp.plan.strategy) == ("ok", "small", "single")
    assert (resp.usage.prompt_tokens, resp.usage.output_tokens) == (10, 4)
    assert resp.usage.compute_units == pytest.approx(10 * 0.1 + 4 * 1.0)
    assert len(clients["small"].calls) == 1
    (out,) = rec.items
    assert (out["request_id"], out["pool"], out["status"]) == ("r1", "small", "OK")
    assert '"compute_units": 5.0' in out["usage"]


async def test_context_is_resolved_before_planning_and_reported_in_usage():
    ctx = ResolvedContext("short summary", True, "v1", raw_tokens=2000, sent_tokens=4,
                          consolidation_cu=100.0, uses=4)
    contexts = Contexts({"c1": ctx})
    svc, clients = servicer(contexts=contexts)
    resp = await svc.Generate(router_pb2.GenerateRequest(prompt="Q?", context_id="c1"), FakeContext())
    assert clients["small"].calls[0].prompt == "short summary\n\nQ?"
    assert contexts.queries == ["Q?"]  # the context is focused on what is asked
    assert (resp.usage.context_tokens_raw, resp.usage.context_tokens_sent) == (2000, 4)
    # (2000 - 4) prompt tokens saved at 0.1 CU each, minus a quarter of the consolidation's 100 CU.
    assert resp.usage.consolidation_saved_cu == pytest.approx(1996 * 0.1 - 25.0)
    # The plan was made on the request with its context: the estimate counts the sent prompt.
    plan = await svc.Plan(router_pb2.GenerateRequest(prompt="Q?", context_id="c1"), FakeContext())
    assert plan.plan.expected_compute_units == pytest.approx(len("short summary\n\nQ?") // 4 * 0.1 + 64)


async def test_unknown_context_is_not_found():
    svc, _ = servicer(contexts=Contexts({}))
    with pytest.raises(ContextNotFound):
        await svc.Generate(router_pb2.GenerateRequest(prompt="Q?", context_id="nope"), FakeContext())


async def test_unavailable_pool_falls_back_and_the_plan_says_why():
    rec = Records()
    pools = FakeClients(small=FakePool("small", error=PoolUnavailable("small", "connection refused")),
                        reasoning=FakePool("reasoning", text="from reasoning"))
    svc, _ = servicer({"fallback_pool": "reasoning"}, pools, outcomes=rec)
    resp = await svc.Generate(router_pb2.GenerateRequest(prompt="hello"), FakeContext())
    assert resp.text == "from reasoning" and resp.plan.pool == "reasoning"
    assert "pool 'small' unavailable, fell back to 'reasoning'" in resp.plan.reason
    assert rec.items[0]["pool"] == "reasoning"


async def test_no_fallback_for_a_hinted_pool():
    pools = FakeClients(small=FakePool("small", error=PoolUnavailable("small", "down")), reasoning=FakePool("reasoning"))
    svc, _ = servicer({"fallback_pool": "reasoning"}, pools)
    req = router_pb2.GenerateRequest(prompt="hello", hints={"pool": "small"})
    with pytest.raises(PoolUnavailable):
        await svc.Generate(req, FakeContext())


async def test_errors_reach_the_boundary_and_are_recorded():
    rec = Records()
    svc, _ = servicer(outcomes=rec)
    with pytest.raises(InvalidArgument) as ei:
        await svc.Generate(router_pb2.GenerateRequest(prompt=""), FakeContext())
    assert ei.value.field == "prompt"
    assert rec.items[0]["status"] == "INVALID_ARGUMENT"


async def test_stream_yields_deltas_then_one_final_event():
    svc, _ = servicer()
    events = [e async for e in svc.GenerateStream(router_pb2.GenerateRequest(prompt="hi"), FakeContext())]
    assert [e.WhichOneof("event") for e in events] == ["delta", "final"]
    assert events[-1].final.usage.output_tokens == 4


async def test_feedback_goes_to_the_store_or_is_a_failed_precondition():
    fb = Feedback()
    svc, _ = servicer(feedback=fb)
    await svc.Feedback(router_pb2.FeedbackRequest(request_id="r1", correct=True), FakeContext())
    assert fb.got == [("r1", True, None)]
    svc, _ = servicer()
    with pytest.raises(FeedbackUnavailable):
        await svc.Feedback(router_pb2.FeedbackRequest(request_id="r1", correct=True), FakeContext())
    with pytest.raises(InvalidArgument) as ei:
        await svc.Feedback(router_pb2.FeedbackRequest(request_id="r1", score=2.0), FakeContext())
    assert ei.value.field == "score"


async def test_realised_cost_reaches_the_budget_controller():
    class Budget:
        def __init__(self):
            self.seen = []

        def lambda_per_cu(self):
            return 0.001

        async def observe(self, cu):
            self.seen.append(cu)

    import asyncio

    svc, _ = servicer({"policy": {"name": "difficulty"}})
    budget = Budget()
    svc.state.policy.set_budget(budget)
    resp = await svc.Generate(router_pb2.GenerateRequest(prompt="hi"), FakeContext())
    await asyncio.sleep(0)
    assert budget.seen == [pytest.approx(resp.usage.compute_units)]
