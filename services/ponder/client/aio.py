"""The asyncio client: one channel, typed results, deadlines across retries."""
from __future__ import annotations

import asyncio
import random
import time
from typing import AsyncIterator, Awaitable, Callable, Iterable, TypeVar

import grpc

from ponder.client.config import ClientConfig
from ponder.client.retry import RetryBudget, RetryPolicy, pushback_s
from ponder.client.types import Answer, Delta, PlanResult, Status
from ponder.common.errors import RETRYABLE, DeadlineExceeded, PonderError, from_status
from ponder.v1 import common_pb2, router_pb2, router_pb2_grpc

T = TypeVar("T")


def build_request(
    prompt: str = "", *, messages: Iterable[tuple[str, str] | dict] = (), max_tokens: int | None = None,
    temperature: float | None = None, top_p: float | None = None, top_k: int | None = None, stop: Iterable[str] = (),
    seed: int | None = None, budget_cu: float | None = None, max_latency_ms: float | None = None, pool: str = "",
    strategy: str = "", samples: int | None = None, thinking_budget: int | None = None, context_id: str = "",
    labels: dict[str, str] | None = None, request_id: str = "",
) -> router_pb2.GenerateRequest:
    """The router request for these arguments (pure; the router validates values and names bad fields)."""
    req = router_pb2.GenerateRequest(prompt=prompt, context_id=context_id, request_id=request_id, labels=labels or {})
    for m in messages:
        role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
        req.messages.append(common_pb2.ChatMessage(role=role, content=content))
    s = req.sampling
    for name, v in (("max_tokens", max_tokens), ("temperature", temperature), ("top_p", top_p), ("top_k", top_k),
                    ("seed", seed)):
        if v is not None:
            setattr(s, name, v)
    s.stop.extend(stop)
    if budget_cu is not None:
        req.budget.max_compute_units = budget_cu
    if max_latency_ms is not None:
        req.budget.max_latency_ms = max_latency_ms
    req.hints.pool, req.hints.strategy = pool, strategy
    if samples is not None:
        req.hints.samples = samples
    if thinking_budget is not None:
        req.hints.thinking_budget = thinking_budget
    return req


def to_error(e: grpc.aio.AioRpcError) -> PonderError:
    """ponder's category error for a failed call, with the server's message."""
    err = from_status(e.code(), e.details() or e.code().name)
    err.grpc_code = e.code()
    return err


class AsyncClient:
    """Router client. ``timeout_s`` is each call's default deadline, retries included."""

    def __init__(self, address: str | None = None, *, api_key: str | None = None, tls: bool | None = None,
                 ca_file: str | None = None, timeout_s: float = 300.0, retry: RetryPolicy | None = RetryPolicy(),
                 budget: RetryBudget | None = None, config: ClientConfig | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, rand: random.Random | None = None,
                 cert_file: str | None = None, key_file: str | None = None):
        """``cert_file``/``key_file``: a client certificate for servers that require mutual TLS."""
        self.config = config or ClientConfig.resolve(address, api_key, tls, ca_file, cert_file=cert_file,
                                                     key_file=key_file)
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy(max_attempts=1)
        self.budget = budget or RetryBudget()
        self._sleep, self._rand = sleep, rand or random.Random()
        self._channel: grpc.aio.Channel | None = None
        self._stub: router_pb2_grpc.RouterStub | None = None

    @property
    def stub(self) -> router_pb2_grpc.RouterStub:
        if self._stub is None:
            self._channel = self.config.channel()
            self._stub = router_pb2_grpc.RouterStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------------ calls
    async def generate(self, prompt: str = "", *, timeout_s: float | None = None, **kw) -> Answer:
        req = build_request(prompt, **kw)
        resp = await self._unary(lambda t: self.stub.Generate(req, timeout=t, metadata=self.config.metadata()), timeout_s)
        return Answer.from_proto(resp)

    async def plan(self, prompt: str = "", *, timeout_s: float | None = None, **kw) -> PlanResult:
        req = build_request(prompt, **kw)
        resp = await self._unary(lambda t: self.stub.Plan(req, timeout=t, metadata=self.config.metadata()), timeout_s)
        from ponder.client.types import Plan

        return PlanResult(resp.request_id, Plan.from_proto(resp.plan), resp)

    async def status(self, *, timeout_s: float | None = None) -> Status:
        resp = await self._unary(
            lambda t: self.stub.Status(router_pb2.StatusRequest(), timeout=t, metadata=self.config.metadata()), timeout_s)
        return Status.from_proto(resp)

    async def feedback(self, request_id: str, *, correct: bool | None = None, score: float | None = None,
                       timeout_s: float | None = None) -> None:
        req = router_pb2.FeedbackRequest(request_id=request_id)
        if correct is not None:
            req.correct = correct
        if score is not None:
            req.score = score
        await self._unary(lambda t: self.stub.Feedback(req, timeout=t, metadata=self.config.metadata()), timeout_s)

    async def stream(self, prompt: str = "", *, timeout_s: float | None = None, **kw) -> AsyncIterator[Delta | Answer]:
        """``Delta`` items as generated, then the ``Answer``. Retried only until the first event arrives."""
        req = build_request(prompt, **kw)
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        retry = 0
        while True:
            call = self.stub.GenerateStream(req, timeout=self._remaining(deadline), metadata=self.config.metadata())
            started = False
            try:
                async for ev in call:
                    started = True
                    if ev.HasField("delta"):
                        yield Delta(ev.delta.text, ev.delta.sample_index, ev.delta.thinking)
                    else:
                        self.budget.succeeded()
                        yield Answer.from_proto(ev.final)
                return
            except grpc.aio.AioRpcError as e:
                if started:
                    raise to_error(e) from None
                retry += 1
                await self._backoff_or_raise(e, retry, deadline)
            finally:
                call.cancel()

    # ------------------------------------------------------------ retries
    def _remaining(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("client", 0.0)
        return left

    async def _unary(self, call: Callable[[float], Awaitable[T]], timeout_s: float | None) -> T:
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        retry = 0
        while True:
            try:
                out = await call(self._remaining(deadline))
                self.budget.succeeded()
                return out
            except grpc.aio.AioRpcError as e:
                retry += 1
                await self._backoff_or_raise(e, retry, deadline)

    async def _backoff_or_raise(self, e: grpc.aio.AioRpcError, retry: int, deadline: float) -> None:
        """Sleep before retry ``retry`` when the policy, the server and the budget allow it; else raise."""
        if e.code() not in RETRYABLE:
            raise to_error(e) from None
        self.budget.failed()
        push = pushback_s(e.trailing_metadata())
        if retry >= self.retry.max_attempts or push == -1.0 or not self.budget.allows_retry():
            raise to_error(e) from None
        wait = push if push is not None else self.retry.backoff_s(retry, self._rand)
        if time.monotonic() + wait >= deadline:
            raise to_error(e) from None
        await self._sleep(wait)
