"""A pool replica's request handling: defaults, limits, the thinking phase and load stats.

``PoolEngine`` is independent of gRPC and of Ray: the Serve deployment and the
standalone server both wrap it. Requests past ``max_queued_requests`` waiting
for the engine are refused with PoolOverloaded rather than queued forever.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import logging
import time
from typing import AsyncIterator, Callable


from ponder.common.config import PoolConfig
from ponder.common.errors import InvalidArgument, PonderError, PoolOverloaded, Unavailable
from ponder.common.sampling import resolve
from ponder.pools.backends.base import Backend, Done, GenParams, flatten_messages


@dataclasses.dataclass(slots=True)
class PoolRequest:
    prompt: str
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    messages: tuple[tuple[str, str], ...] = ()
    thinking_budget: int = 0
    request_id: str = ""
    soft_thoughts: bool | None = None  # None: the pool's default


@dataclasses.dataclass(slots=True)
class PoolDelta:
    text: str
    thinking: bool


@dataclasses.dataclass(slots=True)
class PoolResult:
    text: str
    thinking: str
    finish_reason: str
    prompt_tokens: int
    output_tokens: int
    thinking_tokens: int
    latency_ms: float
    ttft_ms: float
    model: str
    simulated: bool
    soft_thought_tokens: int = 0
    assistant_tokens: int = 0
    assistant_ms: float = 0.0
    assistant_cu: float = 0.0


class PoolNotReady(Unavailable):
    """The pool's model did not load (missing or mismatched file): it answers nothing until fixed."""

    def __init__(self, pool: str, reason: str):
        self.pool, self.reason = pool, reason
        super().__init__(f"pool {pool!r} is not serving: {reason}")


class _Rate:
    """Exponentially weighted output tokens per second over a ``window_s`` horizon."""

    def __init__(self, clock: Callable[[], float], window_s: float = 10.0):
        self.clock, self.window_s = clock, window_s
        self.rate = 0.0
        self.last = clock()
        self.pending = 0

    def add(self, tokens: int) -> None:
        self.pending += tokens
        self._fold()

    def _fold(self) -> None:
        now = self.clock()
        dt = now - self.last
        if dt < 0.25:
            return
        alpha = min(1.0, dt / self.window_s)
        self.rate = (1 - alpha) * self.rate + alpha * (self.pending / dt)
        self.pending, self.last = 0, now

    def value(self) -> float:
        self._fold()
        return self.rate


class PoolEngine:
    def __init__(self, cfg: PoolConfig, backend: Backend, clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.backend = backend
        self.clock = clock
        self.queue_depth = 0
        self.running = 0
        self.requests_total = 0
        self.output_tokens_total = 0
        self._rate = _Rate(clock)
        # As many requests at once as the backend generates together; the rest queue here.
        self._gate = asyncio.Semaphore(max(1, backend.max_concurrency))
        self.replica = socket.gethostname()
        self.load_error = ""

    async def start(self) -> None:
        """Load the model. A load failure the project can name (a missing or mismatched
        file) leaves the pool up but NOT_SERVING: ``load_error`` says why and every
        request is refused with PoolNotReady (UNAVAILABLE, so routers fall back)."""
        try:
            await self.backend.start()
        except PonderError as e:
            self.load_error = e.message
            logging.getLogger(__name__).error("pool %s is not serving: %s", self.cfg.name, e.message)

    @property
    def serving(self) -> bool:
        return not self.load_error

    async def close(self) -> None:
        await self.backend.close()

    def stats(self) -> dict:
        return {
            "pool": self.cfg.name,
            "backend": self.backend.kind,
            "model": self.backend.model,
            "simulated": self.backend.simulated,
            "queue_depth": self.queue_depth,
            "running": self.running,
            "tokens_per_s": round(self._rate.value(), 3),
            "requests_total": self.requests_total,
            "output_tokens_total": self.output_tokens_total,
            "replica": self.replica,
            "load_error": self.load_error,
        }

    def _params(self, req: PoolRequest, prompt: str, max_tokens: int, stop: tuple[str, ...]) -> GenParams:
        temperature, top_p, top_k = resolve(req.temperature, req.top_p, req.top_k)
        return GenParams(
            prompt=prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            stop=stop,
            seed=req.seed,
            messages=req.messages if not self.cfg.thinking else (),
            request_id=req.request_id,
            soft_thoughts=req.soft_thoughts,
        )

    def _check(self, req: PoolRequest) -> int:
        max_tokens = self.cfg.max_tokens_default if req.max_tokens is None else req.max_tokens
        if not 1 <= max_tokens <= self.cfg.max_tokens_limit:
            raise InvalidArgument(
                "sampling.max_tokens", f"must be in 1..{self.cfg.max_tokens_limit} for pool {self.cfg.name!r}, got {max_tokens}"
            )
        if not req.prompt and not req.messages:
            raise InvalidArgument("prompt", "empty: give a prompt or messages")
        if req.thinking_budget < 0:
            raise InvalidArgument("thinking_budget", "must be >= 0")
        if req.thinking_budget and self.cfg.thinking is None:
            raise InvalidArgument(
                "thinking_budget", f"pool {self.cfg.name!r} has no thinking phase; send 0, got {req.thinking_budget}"
            )
        if req.soft_thoughts and self.cfg.softcot is None:
            raise InvalidArgument("soft_thoughts", f"pool {self.cfg.name!r} has no SoftCoT assistant (tier {self.cfg.tier!r})")
        if self.load_error:
            raise PoolNotReady(self.cfg.name, self.load_error)
        return max_tokens

    async def stream(self, req: PoolRequest) -> AsyncIterator[PoolDelta | PoolResult]:
        """Yield PoolDelta items, then one PoolResult. Thinking first when the pool thinks."""
        max_tokens = self._check(req)
        if self.queue_depth >= self.cfg.max_queued_requests:
            raise PoolOverloaded(self.cfg.name, self.queue_depth, self.cfg.max_queued_requests)
        t0 = self.clock()
        self.queue_depth += 1
        try:
            await self._gate.acquire()
        finally:
            self.queue_depth -= 1
        self.running += 1
        self.requests_total += 1
        ttft = None
        try:
            phases: list[tuple[str, int, tuple[str, ...], bool]] = []
            th = self.cfg.thinking
            base_prompt = req.prompt or flatten_messages(req.messages)
            budget = req.thinking_budget
            if th and budget:
                phases.append((th.prompt_template.format(prompt=base_prompt), budget, tuple(th.stop), True))
            phases.append(("", max_tokens, req.stop, False))
            texts = {True: [], False: []}
            prompt_tokens = output_tokens = thinking_tokens = 0
            soft = {"soft_thought_tokens": 0, "assistant_tokens": 0, "assistant_ms": 0.0}
            finish = "stop"
            for prompt, limit, stop, thinking in phases:
                if not thinking:
                    if th and budget:
                        prompt = phases[0][0] + "".join(texts[True]) + th.answer_prefix
                    else:
                        prompt = base_prompt
                gen = self.backend.stream(self._params(req, prompt, limit, stop))
                try:
                    async for item in gen:
                        if isinstance(item, Done):
                            prompt_tokens += item.prompt_tokens
                            output_tokens += item.output_tokens
                            if thinking:
                                thinking_tokens += item.output_tokens
                            else:
                                finish = item.finish_reason
                            soft["soft_thought_tokens"] += item.soft_thought_tokens
                            soft["assistant_tokens"] += item.assistant_tokens
                            soft["assistant_ms"] += item.assistant_ms
                            self._rate.add(item.output_tokens)
                            self.output_tokens_total += item.output_tokens
                            continue
                        if ttft is None:
                            ttft = (self.clock() - t0) * 1000
                        texts[thinking].append(item.text)
                        yield PoolDelta(item.text, thinking)
                finally:
                    await gen.aclose()
            yield PoolResult(
                text="".join(texts[False]),
                thinking="".join(texts[True]),
                finish_reason=finish,
                prompt_tokens=prompt_tokens,
                output_tokens=output_tokens,
                thinking_tokens=thinking_tokens,
                latency_ms=(self.clock() - t0) * 1000,
                ttft_ms=ttft if ttft is not None else (self.clock() - t0) * 1000,
                model=self.backend.model,
                simulated=self.backend.simulated,
                assistant_cu=soft["assistant_tokens"] * (self.cfg.softcot.assistant_token_cu if self.cfg.softcot else 0.0),
                **soft,
            )
        finally:
            self.running -= 1
            self._gate.release()

    async def generate(self, req: PoolRequest) -> PoolResult:
        async with contextlib.aclosing(self.stream(req)) as items:
            async for item in items:
                if isinstance(item, PoolResult):
                    return item
        raise AssertionError("stream ended without a result")
