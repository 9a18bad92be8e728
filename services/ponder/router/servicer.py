"""The Router gRPC service: validate -> plan -> dispatch -> aggregate -> answer.

Thin by design: proto in, the domain pieces (validate, policy, strategy,
outcome log) do the work, proto out; ``rpc_errors``/``stream_errors`` map
domain errors to status codes in one place.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from typing import Callable

import grpc

import ponder
from ponder.common.config import PonderConfig
from ponder.common.errors import DeadlineExceeded, InvalidArgument, PonderError, PoolUnavailable, grpc_status
from ponder.common.grpcutil import rpc_errors
from ponder.common.telemetry import Tracing, extract_metadata
from ponder.router.strategies import base as strategies
from ponder.router.clients import PoolClients
from ponder.router.contexts import ContextStore
from ponder.router.convert import plan_to_dict, plan_to_proto, response_to_proto
from ponder.router.metrics import RouterMetrics
from ponder.router.outcome_schema import FEEDBACK_HASH, encode_feedback
from ponder.router.outcomes import OutcomeLog
from ponder.router.policies.base import Policy, task_plan
from ponder.router.strategies.base import StreamDelta
from ponder.router.strategies.vote import Vote
from ponder.router.types import Answer, Plan, Request
from ponder.router.validate import validate
from ponder.v1 import common_pb2, router_pb2, router_pb2_grpc

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RouterState:
    """What a config reload swaps as one: each request reads it once and keeps it."""

    cfg: PonderConfig
    policy: Policy
    clients: PoolClients


class VotingUnavailable(PonderError):
    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self):
        super().__init__("task: this router has no voting service (voting.enabled is false and no voting.address)")


class FeedbackUnavailable(PonderError):
    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self):
        super().__init__("this router has no outcome store (Redis) to record feedback in")


@dataclasses.dataclass
class _Trace:
    """How far one request got: filled in as it goes, read by its outcome record."""

    t0: float
    st: RouterState
    req: Request | None = None
    plan: Plan | None = None
    answer: Answer | None = None
    usage: common_pb2.Usage | None = None

    def elapsed_ms(self, clock: Callable[[], float]) -> float:
        return (clock() - self.t0) * 1000


class RouterServicer(router_pb2_grpc.RouterServicer):
    def __init__(
        self,
        cfg: PonderConfig,
        policy: Policy,
        clients: PoolClients,
        tracing: Tracing,
        outcomes: OutcomeLog | None = None,
        contexts: ContextStore | None = None,
        metrics: RouterMetrics | None = None,
        voting: Vote | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.state = RouterState(cfg, policy, clients)
        self.tracing = tracing
        self.outcomes = outcomes
        self.contexts = contexts
        self.metrics = metrics
        self.voting = voting
        self.clock = clock
        self._background: set[asyncio.Task] = set()

    @property
    def cfg(self) -> PonderConfig:
        return self.state.cfg

    @property
    def policy(self) -> Policy:
        return self.state.policy

    @property
    def clients(self) -> PoolClients:
        return self.state.clients

    async def reload(self, state: RouterState, close_old_after_s: float) -> None:
        """Swap in a new config; requests in flight finish on the state they started with."""
        old = self.state
        self.state = state
        if self.metrics:
            self.metrics.set_pools(state.cfg.pools)

        async def close_later() -> None:
            await asyncio.sleep(close_old_after_s)
            await old.clients.close()

        asyncio.get_running_loop().create_task(close_later())

    # ------------------------------------------------------------ helpers
    def _span(self, name: str, context: grpc.aio.ServicerContext):
        return self.tracing.tracer.start_as_current_span(name, context=extract_metadata(context.invocation_metadata()))

    async def _with_context(self, req: Request) -> Request:
        if not req.context_id:
            return req
        if self.contexts is None:
            raise InvalidArgument("context_id", "this router has no context store")
        text, consolidated = await self.contexts.get(req.context_id)
        req.labels.setdefault("context_consolidated", str(consolidated).lower())
        if req.prompt:
            return dataclasses.replace(req, prompt=f"{text}\n\n{req.prompt}")
        return dataclasses.replace(req, messages=(("system", text), *req.messages))

    async def _plan(self, st: RouterState, req: Request) -> Plan:
        with self.tracing.tracer.start_as_current_span("router.plan") as span:
            if req.task is not None:
                plan = task_plan(st.policy.catalog, req, st.policy.name)
            else:
                plan = await st.policy.plan(req)
            span.set_attribute("ponder.pool", plan.pool)
            span.set_attribute("ponder.strategy", plan.strategy)
        pool = st.cfg.pool(plan.pool)
        if req.sampling.max_tokens is not None and req.sampling.max_tokens > pool.max_tokens_limit:
            raise InvalidArgument(
                "sampling.max_tokens", f"{req.sampling.max_tokens} exceeds pool {plan.pool!r} limit {pool.max_tokens_limit}"
            )
        return plan

    def _timeout_s(self, st: RouterState, req: Request, context: grpc.aio.ServicerContext) -> float:
        t = st.cfg.routing.default_timeout_s
        remaining = context.time_remaining()
        if remaining is not None:
            if remaining <= 0:
                raise DeadlineExceeded("router", 0.0)
            t = min(t, remaining)
        if req.max_latency_ms is not None:
            t = min(t, req.max_latency_ms / 1000)
        return t

    def _usage(self, st: RouterState, plan: Plan, answer: Answer, latency_ms: float) -> common_pb2.Usage:
        if answer.compute_units is not None:  # measured by whoever did the work (voting)
            return common_pb2.Usage(
                compute_units=round(answer.compute_units, 4), latency_ms=latency_ms, samples=answer.sample_count or 0
            )
        cost = st.cfg.pool(plan.pool).cost
        pt = sum(s.prompt_tokens for s in answer.samples)
        ot = sum(s.output_tokens for s in answer.samples)
        return common_pb2.Usage(
            prompt_tokens=pt,
            output_tokens=ot,
            thinking_tokens=sum(s.thinking_tokens for s in answer.samples),
            compute_units=round(cost.units(pt, ot), 4),
            latency_ms=latency_ms,
            time_to_first_token_ms=answer.ttft_ms,
            samples=len(answer.samples),
        )

    def _record(self, request: router_pb2.GenerateRequest, req: Request | None, plan: Plan | None,
                usage: common_pb2.Usage | None, latency_ms: float, status: grpc.StatusCode, error: str = "") -> None:
        """One outcome record per request, rejected ones included (with what was sent)."""
        if self.metrics:
            self.metrics.answered(
                plan.pool if plan else "", plan.strategy if plan else "", status.name,
                usage.compute_units if usage else 0.0, latency_ms / 1000,
            )
        if self.outcomes is None:
            return
        rec = {
            "request_id": req.request_id if req else request.request_id,
            "ts": f"{time.time():.3f}",
            "prompt": req.text if req else request.prompt[:100_000],
            "pool": plan.pool if plan else "",
            "strategy": plan.strategy if plan else "",
            "plan": plan_to_dict(plan) if plan else {},
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "output_tokens": usage.output_tokens,
                "thinking_tokens": usage.thinking_tokens,
                "compute_units": usage.compute_units,
                "samples": usage.samples,
            } if usage else {},
            "latency_ms": f"{latency_ms:.3f}",
            "status": status.name,
            "labels": req.labels if req else dict(request.labels),
        }
        if error:
            rec["error"] = error
        self.outcomes.record(rec)

    async def _execute(self, st: RouterState, req: Request, plan: Plan, context, stream: bool):
        """Run the plan; on an unavailable pool, re-plan once onto routing.fallback_pool."""
        if self.metrics:
            self.metrics.planned(plan.pool, plan.expected_compute_units)
        fallback = st.cfg.routing.fallback_pool
        timeout_s = self._timeout_s(st, req, context)
        if plan.strategy == "vote":
            if self.voting is None:
                raise VotingUnavailable()
            run = self.voting.run(req, plan, timeout_s, stream)
        else:
            run = strategies.get(plan.strategy).run(req, plan, st.clients[plan.pool], timeout_s, stream)
        produced = False
        try:
            with self.tracing.tracer.start_as_current_span(
                "router.dispatch", attributes={"ponder.pool": plan.pool, "ponder.strategy": plan.strategy}
            ):
                async with contextlib.aclosing(run) as items:
                    async for item in items:
                        produced = True
                        yield item
        except PoolUnavailable:
            if produced or not fallback or fallback == plan.pool or req.hint_pool or plan.strategy == "vote":
                raise
            old = plan.pool
            plan.pool, plan.strategy, plan.samples, plan.thinking_budget = fallback, "single", 1, 0
            plan.reason += f"; pool {old!r} unavailable, fell back to {fallback!r}"
            with self.tracing.tracer.start_as_current_span("router.dispatch", attributes={"ponder.pool": fallback}):
                single = strategies.get("single")
                async with contextlib.aclosing(single.run(req, plan, st.clients[fallback], timeout_s, stream)) as items:
                    async for item in items:
                        yield item

    @contextlib.asynccontextmanager
    async def _request(self, request: router_pb2.GenerateRequest, context, span: str):
        """One generation request's boundary: span, error -> status, and its outcome record.

        Yields a ``_Trace`` the body fills in (request, plan, answer, usage) so
        the record says how far the request got, whatever ended it; an answered
        request's samples feed the catalog's latency tracker and its cost the
        budget controller.
        """
        trace = _Trace(self.clock(), self.state)
        status, err = grpc.StatusCode.OK, ""
        with self._span(span, context):
            try:
                yield trace
            except (asyncio.CancelledError, GeneratorExit):
                status, err = grpc.StatusCode.CANCELLED, "client cancelled"
                raise
            except Exception as e:  # noqa: BLE001 - boundary
                status, err = grpc_status(e)
                if status == grpc.StatusCode.INTERNAL:
                    log.exception("%s failed", span)
                await context.abort(status, err)
            finally:
                self._record(request, trace.req, trace.plan, trace.usage, trace.elapsed_ms(self.clock), status, err)
                if trace.usage is not None and status == grpc.StatusCode.OK:
                    trace.st.policy.catalog.observe(trace.req, trace.plan, trace.answer.samples)
                    self._observe_cost(trace.st, trace.usage.compute_units)

    def _observe_cost(self, st: RouterState, compute_units: float) -> None:
        """Feed the realised cost to the policy's budget controller, off the request path."""
        budget = getattr(st.policy, "budget", None)
        if budget is None or not hasattr(budget, "observe"):
            return
        task = asyncio.get_running_loop().create_task(budget.observe(compute_units))
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("budget controller update failed: %s", task.exception())

    async def _begin(self, t: "_Trace", request: router_pb2.GenerateRequest) -> None:
        t.req = validate(request, t.st.cfg)
        t.plan = await self._plan(t.st, t.req)
        t.req = await self._with_context(t.req)

    # ------------------------------------------------------------ RPCs
    async def Generate(self, request, context):
        async with self._request(request, context, "router.generate") as t:
            await self._begin(t, request)
            answer = None
            async with contextlib.aclosing(self._execute(t.st, t.req, t.plan, context, stream=False)) as items:
                async for item in items:
                    answer = item
            t.answer = answer
            t.usage = self._usage(t.st, t.plan, answer, t.elapsed_ms(self.clock))
            return response_to_proto(t.req.request_id, t.plan, answer, t.usage)

    async def GenerateStream(self, request, context):
        async with self._request(request, context, "router.generate_stream") as t:
            await self._begin(t, request)
            async with contextlib.aclosing(self._execute(t.st, t.req, t.plan, context, stream=True)) as items:
                async for item in items:
                    if isinstance(item, StreamDelta):
                        yield router_pb2.GenerateEvent(
                            delta=common_pb2.TokenDelta(text=item.text, sample_index=item.sample_index, thinking=item.thinking)
                        )
                    else:
                        t.answer = item
                        t.usage = self._usage(t.st, t.plan, item, t.elapsed_ms(self.clock))
                        yield router_pb2.GenerateEvent(final=response_to_proto(t.req.request_id, t.plan, item, t.usage))

    @rpc_errors
    async def Plan(self, request, context):
        with self._span("router.plan_only", context):
            st = self.state
            req = validate(request, st.cfg)
            plan = await self._plan(st, req)
            return router_pb2.PlanResponse(request_id=req.request_id, plan=plan_to_proto(plan))

    @rpc_errors
    async def Feedback(self, request, context):
        if not request.request_id or len(request.request_id) > 128:
            raise InvalidArgument("request_id", "must be 1..128 chars")
        if not request.HasField("correct") and not request.HasField("score"):
            raise InvalidArgument("correct", "give correct or score (or both)")
        if request.HasField("score") and not (math.isfinite(request.score) and 0.0 <= request.score <= 1.0):
            raise InvalidArgument("score", f"must be in [0, 1], got {request.score}")
        if self.outcomes is None:
            raise FeedbackUnavailable()
        value = encode_feedback(
            request.correct if request.HasField("correct") else None,
            request.score if request.HasField("score") else None,
        )
        await self.outcomes.redis.hset(FEEDBACK_HASH, request.request_id, value)
        return router_pb2.FeedbackResponse(request_id=request.request_id)

    @rpc_errors
    async def Status(self, request, context):
        st = self.state

        async def one(p) -> router_pb2.PoolStatus:
            c = st.clients[p.name]
            out = router_pb2.PoolStatus(
                name=p.name, tier=p.tier, backend=p.backend.kind, model=p.model_label(), address=c.address
            )
            try:
                stats = await c.stats(timeout_s=2.0)
                out.healthy = True
                out.stats.CopyFrom(stats)
                out.model = stats.model or out.model
            except Exception as e:  # noqa: BLE001 - report, don't fail the whole status
                out.healthy = False
                out.error = grpc_status(e)[1]
            return out

        pools = await asyncio.gather(*(one(p) for p in st.cfg.pools))
        return router_pb2.StatusResponse(
            version=ponder.__version__,
            policy=st.policy.name,
            pools=pools,
            outcome_log=st.cfg.redis.outcome_stream if self.outcomes else "",
        )


