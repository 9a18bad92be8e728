"""The router's request path, callable from any front door: validate -> context -> plan -> dispatch -> cost -> record.

Both the gRPC servicer (``router.servicer``) and the OpenAI-compatible HTTP
front (``router.http``) call one ``RequestPath``; neither owns any of the
steps. A call takes the request (a ``GenerateRequest`` proto, whichever door
it came through), the caller's metadata as lower-case (key, value) pairs —
trace context and credentials, from gRPC metadata or HTTP headers alike — and
the seconds left of the caller's deadline (None: no deadline). Errors are
raised, never answered here: each door maps them through the one table in
``ponder.common.errors``.

Each generation request gets one span and exactly one outcome record, however
it ends (answered, failed, cancelled by a client that went away).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import AsyncIterator, Callable, Iterable

import grpc
from opentelemetry import trace

import ponder
from ponder.common.auth import authenticate, current_principal
from ponder.common.config import PonderConfig
from ponder.common.errors import InvalidArgument, grpc_status
from ponder.common.telemetry import Tracing, extract_metadata
from ponder.router import costing, genai
from ponder.router.catalog import estimate_tokens
from ponder.router.clients import PoolClients
from ponder.router.contexts import ContextStore
from ponder.router.convert import breaker_to_proto, plan_to_proto, response_to_proto
from ponder.router.dispatch import Run, timeout_s
from ponder.router.feedback import CostFeedback, FeedbackUnavailable, parse_feedback
from ponder.router.metrics import RouterMetrics
from ponder.router.outcomes import FeedbackStore, Outcome, OutcomeLog
from ponder.router.policies.base import Policy
from ponder.router.requestlog import log_request
from ponder.router.strategies.base import StreamDelta, Strategy
from ponder.router.types import Answer, Plan, Request
from ponder.router.validate import validate
from ponder.v1 import common_pb2, router_pb2

_OK = grpc.StatusCode.OK.name
_CANCELLED = grpc.StatusCode.CANCELLED.name
Metadata = Iterable[tuple[str, str | bytes]]


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


class RequestPath:
    """The router's steps for one request, shared by every front door."""

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
        verifier=None,  # ponder.common.auth key verifier, when the router requires keys
    ):
        self.quotas = quotas
        self.verifier = verifier
        self.state = state
        self.tracing = tracing
        self.tracer = tracing.tracer
        self.outcomes = outcomes
        self.contexts = contexts
        self.metrics = metrics
        self.feedback = feedback
        self.clock = clock
        self.costs = CostFeedback()
        self.http_url = ""  # the OpenAI-compatible front's base URL, set when it serves

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

    # ------------------------------------------------------------ entry points
    async def generate(
        self, request: router_pb2.GenerateRequest, metadata: Metadata = (), remaining_s: float | None = None,
        span: str = "router.generate",
    ) -> router_pb2.GenerateResponse:
        """The whole answer. Raises a ``PonderError`` (or a bug) for the caller's door to map."""
        async with self._request(request, metadata, span) as t:
            async with contextlib.aclosing(self._run(t, request, remaining_s, stream=False)) as items:
                async for _ in items:
                    pass
            return response_to_proto(t.req.request_id, t.plan, t.answer, t.usage)

    async def stream(
        self, request: router_pb2.GenerateRequest, metadata: Metadata = (), remaining_s: float | None = None,
        span: str = "router.generate_stream", on_plan: Callable[[str, Plan], None] | None = None,
    ) -> AsyncIterator[router_pb2.GenerateEvent]:
        """Text deltas as generated, then one final event. Closing the iterator early
        (a client that went away) cancels the pool calls and records the request as CANCELLED.

        ``on_plan(request_id, plan)`` is called once, before the first event, with
        the plan that produces the output (after any fallback)."""
        async with self._request(request, metadata, span) as t:
            async with contextlib.aclosing(self._run(t, request, remaining_s, stream=True, on_plan=on_plan)) as items:
                async for item in items:
                    if isinstance(item, StreamDelta):
                        yield router_pb2.GenerateEvent(
                            delta=common_pb2.TokenDelta(text=item.text, sample_index=item.sample_index, thinking=item.thinking)
                        )
                    else:
                        yield router_pb2.GenerateEvent(final=response_to_proto(t.req.request_id, t.plan, item, t.usage))

    async def plan(self, request: router_pb2.GenerateRequest, metadata: Metadata = ()) -> router_pb2.PlanResponse:
        """The plan the router would choose, with its candidates; generates nothing."""
        with self._span("router.plan_only", metadata):
            st = self.state
            req = await self._prepare(st, request, dry_run=True)
            plan = await st.policy.plan(req)
            return router_pb2.PlanResponse(request_id=req.request_id, plan=plan_to_proto(plan))

    async def record_feedback(self, request: router_pb2.FeedbackRequest) -> router_pb2.FeedbackResponse:
        request_id, correct, score = parse_feedback(request)
        if self.feedback is None:
            raise FeedbackUnavailable()
        await self.feedback.put(request_id, correct, score)
        return router_pb2.FeedbackResponse(request_id=request_id)

    async def status(self) -> router_pb2.StatusResponse:
        """Every pool's health, load and breaker (a pool that does not answer is reported, not raised)."""
        st = self.state
        failover = getattr(st.policy.catalog, "failover", None)

        async def one(p) -> router_pb2.PoolStatus:
            c = st.clients[p.name]
            out = router_pb2.PoolStatus(
                name=p.name, tier=p.tier, backend=p.backend.kind, model=p.model_label(), address=c.address
            )
            if failover is not None:
                out.breaker.CopyFrom(breaker_to_proto(failover.breakers.snapshot(p.name)))
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
            http=router_pb2.HttpFront(url=self.http_url),
        )

    # ------------------------------------------------------------ steps
    def _span(self, name: str, metadata: Metadata):
        md = list(metadata) if metadata else None
        return self.tracer.start_as_current_span(name, context=extract_metadata(md) if md else None,
                                                 attributes={"ponder.tenant": current_principal().tenant})

    async def _prepare(self, st: RouterState, request, dry_run: bool = False) -> Request:
        """Shape check, then the stored context resolved into the request, so planning sees all of it.
        A dry run (Plan) neither counts a use of a consolidated context nor queues a consolidation."""
        req = validate(request, st.cfg)
        if req.context_id:
            if self.contexts is None:
                raise InvalidArgument("context_id", "this router has no context store")
            ctx = await self.contexts.resolve(req.context_id, count_use=not dry_run, query=req.query)
            req = with_context(req, ctx)
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attributes({"ponder.context_id": req.context_id, "ponder.context.consolidated": ctx.consolidated,
                                     "ponder.context.focused": ctx.focused, "ponder.context.tokens_raw": ctx.raw_tokens,
                                     "ponder.context.tokens_sent": ctx.sent_tokens})
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
    async def _request(self, request, metadata: Metadata, span: str):
        """One generation request's boundary: span and outcome record, whatever ended it.

        Yields a ``_Trace`` the body fills in; an answered request's samples feed
        the catalog's latency tracker and its cost the budget controller.
        """
        t = _Trace(self.clock(), self.state)
        status, err = _OK, ""
        with self._span(span, metadata):
            try:
                yield t
            except (asyncio.CancelledError, GeneratorExit):
                status, err = _CANCELLED, "client cancelled"
                raise
            except Exception as e:  # noqa: BLE001 - noted here, answered by the caller's error boundary
                code, err = grpc_status(e)
                status = code.name
                raise
            finally:
                self._finish(request, t, status, err)

    async def admit(self, metadata: Metadata, need: str) -> None:
        """For front doors without a gRPC interceptor (HTTP): check the bearer key in ``metadata``
        and make its tenant the caller's for this request; nothing when the router requires no keys."""
        if self.verifier is not None:
            await authenticate(self.verifier, metadata, need, "http")

    def _finish(self, request, t: _Trace, status: str, err: str) -> None:
        latency_ms = (self.clock() - t.t0) * 1000
        plan, usage, req = t.plan, t.usage, t.req
        tenant = current_principal().tenant
        if self.metrics:
            self.metrics.answered(plan.pool if plan else "", plan.strategy if plan else "", status,
                                  usage.compute_units if usage else 0.0, latency_ms / 1000)
            self.metrics.tenant_answered(tenant, status, usage.compute_units if usage else 0.0)
        if self.outcomes is not None:
            self.outcomes.record(Outcome(
                request_id=req.request_id if req else request.request_id,
                prompt=req.text if req else request.prompt[:100_000],
                plan=plan, usage=usage, latency_ms=latency_ms, status=status,
                labels=req.labels if req else dict(request.labels), error=err, tenant=tenant,
            ))
        log_request(t.st.cfg.router.log_prompts, req.request_id if req else request.request_id,
                    tenant, plan, status, latency_ms, usage.compute_units if usage else 0.0, req.text if req else "")
        if t.admission is not None:
            self.quotas.settle_later(t.admission, usage.compute_units if usage is not None and status == _OK else None)
        if usage is not None and status == _OK:
            t.st.policy.catalog.observe(req, plan, t.answer.samples)
            self.costs.observe(t.st.policy, usage.compute_units)

    async def _run(self, t: _Trace, request, remaining_s: float | None, stream: bool, on_plan=None):
        st = t.st
        t.req = await self._prepare(st, request)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(genai.request_attributes(t.req))
        deadline = timeout_s(st.cfg.routing.default_timeout_s, remaining_s, t.req)
        if self.quotas is not None:  # the tenant's quota: admitted, and what is left caps the plan
            t.admission = await self.quotas.admit(st.cfg, current_principal().tenant, t.req.request_id, deadline)
            t.req.quota = t.admission.left if t.admission is not None else None
        t.plan = await self._plan(st, t.req)
        if t.admission is not None:
            await self.quotas.reserve(t.admission, t.plan.expected_compute_units)
        run = Run(t.plan)
        async with contextlib.aclosing(run.items(st, t.req, deadline, stream, self.tracer)) as items:
            async for item in items:
                if on_plan is not None:
                    on_plan(t.req.request_id, run.plan)
                    on_plan = None
                if isinstance(item, Answer):
                    t.plan, t.answer = run.plan, item
                    t.usage = costing.usage(st.cfg, t.req, run.plan, item, (self.clock() - t.t0) * 1000)
                    if span.is_recording():
                        span.set_attributes(genai.response_attributes(t.req, run.plan, item, t.usage))
                yield item
