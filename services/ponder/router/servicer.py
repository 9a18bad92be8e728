"""The Router gRPC service: request -> plan -> execute -> respond.

Each RPC is proto in, domain calls, proto out: ``validate`` checks the
request's shape, the stored context is resolved, the policy plans once on the
whole request (``policies.base``), ``dispatch.Run`` executes (with fallback),
``costing`` prices the answer, ``outcomes`` records it off the path and
``feedback`` feeds the budget controller. Errors propagate to the server's
one error boundary (``grpcutil.ErrorInterceptor``); ``_request`` only notes
how each request ended for its outcome record.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Callable

import grpc
from opentelemetry import trace

import ponder
from ponder.common.auth import current_principal
from ponder.common.config import PonderConfig
from ponder.common.errors import InvalidArgument, grpc_status
from ponder.common.telemetry import Tracing, extract_metadata
from ponder.router import costing
from ponder.router.catalog import estimate_tokens
from ponder.router.clients import PoolClients
from ponder.router.contexts import ContextStore
from ponder.router.convert import plan_to_proto, response_to_proto
from ponder.router.dispatch import Run, timeout_s
from ponder.router.feedback import CostFeedback, FeedbackUnavailable, parse_feedback
from ponder.router.metrics import RouterMetrics
from ponder.router.outcomes import FeedbackStore, Outcome, OutcomeLog
from ponder.router.requestlog import log_request
from ponder.router.policies.base import Policy
from ponder.router.strategies.base import StreamDelta, Strategy
from ponder.router.types import Answer, Plan, Request
from ponder.router.validate import validate
from ponder.v1 import common_pb2, router_pb2, router_pb2_grpc

_OK = grpc.StatusCode.OK.name
_CANCELLED = grpc.StatusCode.CANCELLED.name


@dataclasses.dataclass(frozen=True)
class RouterState:
    """What a config reload swaps as one: each request reads it once and keeps it."""

    cfg: PonderConfig
    policy: Policy
    clients: PoolClients
    strategies: dict[str, Strategy]


@dataclasses.dataclass
class _Trace:
    """How far one request got: filled in as it goes, read by its outcome record."""

    t0: float
    st: RouterState
    req: Request | None = None
    plan: Plan | None = None
    answer: Answer | None = None
    usage: common_pb2.Usage | None = None
    admission: object | None = None  # a quotas.Admission while the tenant's quota is held


def with_context(req: Request, ctx) -> Request:
    """The request with the resolved context before its prompt (or as a system turn before its messages)."""
    if req.prompt:
        return dataclasses.replace(req, prompt=f"{ctx.text}\n\n{req.prompt}", context=ctx)
    return dataclasses.replace(req, messages=(("system", ctx.text), *req.messages), context=ctx)


class RouterServicer(router_pb2_grpc.RouterServicer):
    def __init__(
        self,
        state: RouterState,
        tracing: Tracing,
        outcomes: OutcomeLog | None = None,
        contexts: ContextStore | None = None,
        metrics: RouterMetrics | None = None,
        feedback: FeedbackStore | None = None,
        clock: Callable[[], float] = time.perf_counter,
        quotas=None,  # ponder.router.quotas.Quotas
    ):
        self.state = state
        self.tracing = tracing
        self.tracer = tracing.tracer
        self.outcomes = outcomes
        self.contexts = contexts
        self.metrics = metrics
        self.feedback = feedback
        self.clock = clock
        self.costs = CostFeedback()
        self.quotas = quotas

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

    # ------------------------------------------------------------ the request path
    def _span(self, name: str, context: grpc.aio.ServicerContext):
        md = context.invocation_metadata()
        return self.tracer.start_as_current_span(name, context=extract_metadata(md) if md else None,
                                                 attributes={"ponder.tenant": current_principal().tenant})

    async def _prepare(self, st: RouterState, request) -> Request:
        """Shape check, then the stored context resolved into the request, so planning sees all of it."""
        req = validate(request, st.cfg)
        if req.context_id:
            if self.contexts is None:
                raise InvalidArgument("context_id", "this router has no context store")
            req = with_context(req, await self.contexts.resolve(req.context_id))
        req.prompt_tokens = estimate_tokens(len(req.text))
        return req

    async def _plan(self, st: RouterState, req: Request) -> Plan:
        plan = await st.policy.plan(req)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes({"ponder.pool": plan.pool, "ponder.strategy": plan.strategy,
                                 "ponder.plan.expected_compute_units": plan.expected_compute_units})
        if self.metrics:
            self.metrics.planned(plan.pool, plan.expected_compute_units)
        return plan

    @contextlib.asynccontextmanager
    async def _request(self, request, context, span: str):
        """One generation request's boundary: span and outcome record, whatever ended it.

        Yields a ``_Trace`` the body fills in; an answered request's samples feed
        the catalog's latency tracker and its cost the budget controller.
        """
        t = _Trace(self.clock(), self.state)
        status, err = _OK, ""
        with self._span(span, context):
            try:
                yield t
            except (asyncio.CancelledError, GeneratorExit):
                status, err = _CANCELLED, "client cancelled"
                raise
            except Exception as e:  # noqa: BLE001 - noted here, answered by the error boundary
                code, err = grpc_status(e)
                status = code.name
                raise
            finally:
                self._finish(request, t, status, err)

    def _finish(self, request, t: _Trace, status: str, err: str) -> None:
        latency_ms = (self.clock() - t.t0) * 1000
        plan, usage, req = t.plan, t.usage, t.req
        if self.metrics:
            self.metrics.answered(plan.pool if plan else "", plan.strategy if plan else "", status,
                                  usage.compute_units if usage else 0.0, latency_ms / 1000)
            self.metrics.tenant_answered(current_principal().tenant, status, usage.compute_units if usage else 0.0)
        if self.outcomes is not None:
            self.outcomes.record(Outcome(
                request_id=req.request_id if req else request.request_id,
                prompt=req.text if req else request.prompt[:100_000],
                plan=plan, usage=usage, latency_ms=latency_ms, status=status,
                labels=req.labels if req else dict(request.labels), error=err, tenant=current_principal().tenant,
            ))
        log_request(t.st.cfg.router.log_prompts, req.request_id if req else request.request_id,
                    current_principal().tenant, plan, status, latency_ms, usage.compute_units if usage else 0.0,
                    req.text if req else "")
        if t.admission is not None:
            self.quotas.settle_later(t.admission, usage.compute_units if usage is not None and status == _OK else None)
        if usage is not None and status == _OK:
            t.st.policy.catalog.observe(req, plan, t.answer.samples)
            self.costs.observe(t.st.policy, usage.compute_units)

    async def _run(self, t: _Trace, request, context, stream: bool):
        st = t.st
        t.req = await self._prepare(st, request)
        deadline = timeout_s(st.cfg.routing.default_timeout_s, context.time_remaining(), t.req)
        if self.quotas is not None:  # the tenant's quota: admitted, and what is left caps the plan
            t.admission = await self.quotas.admit(st.cfg, current_principal().tenant, t.req.request_id, deadline)
            t.req.quota = t.admission.left if t.admission is not None else None
        t.plan = await self._plan(st, t.req)
        if t.admission is not None:
            await self.quotas.reserve(t.admission, t.plan.expected_compute_units)
        run = Run(t.plan)
        async with contextlib.aclosing(run.items(st, t.req, deadline, stream, self.tracer)) as items:
            async for item in items:
                if isinstance(item, Answer):
                    t.plan, t.answer = run.plan, item
                    t.usage = costing.usage(st.cfg, t.req, run.plan, item, (self.clock() - t.t0) * 1000)
                yield item

    # ------------------------------------------------------------ RPCs
    async def Generate(self, request, context):
        async with self._request(request, context, "router.generate") as t:
            async with contextlib.aclosing(self._run(t, request, context, stream=False)) as items:
                async for _ in items:
                    pass
            return response_to_proto(t.req.request_id, t.plan, t.answer, t.usage)

    async def GenerateStream(self, request, context):
        async with self._request(request, context, "router.generate_stream") as t:
            async with contextlib.aclosing(self._run(t, request, context, stream=True)) as items:
                async for item in items:
                    if isinstance(item, StreamDelta):
                        yield router_pb2.GenerateEvent(
                            delta=common_pb2.TokenDelta(text=item.text, sample_index=item.sample_index, thinking=item.thinking)
                        )
                    else:
                        yield router_pb2.GenerateEvent(final=response_to_proto(t.req.request_id, t.plan, item, t.usage))

    async def Plan(self, request, context):
        with self._span("router.plan_only", context):
            st = self.state
            req = await self._prepare(st, request)
            plan = await st.policy.plan(req)
            return router_pb2.PlanResponse(request_id=req.request_id, plan=plan_to_proto(plan))

    async def Feedback(self, request, context):
        request_id, correct, score = parse_feedback(request)
        if self.feedback is None:
            raise FeedbackUnavailable()
        await self.feedback.put(request_id, correct, score)
        return router_pb2.FeedbackResponse(request_id=request_id)

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
