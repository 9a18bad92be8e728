"""The outcome log: one Redis stream record per request (plan, usage, latency, status).

Writes are off the request path: ``record`` only enqueues (an ``Outcome`` or a
ready mapping); a background task encodes the records (``outcome_schema``)
and batches them into pipelined XADDs. When Redis is down the writer keeps
retrying with backoff and holds up to ``max_buffer`` records; past that the
oldest are dropped and counted (``dropped``), never blocking requests.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import time
from typing import Any, Mapping

from ponder.router import outcome_schema as schema
from ponder.router.convert import plan_to_dict

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class Outcome:
    """One request's outcome as the request path leaves it; encoded by the writer, off the path."""

    request_id: str
    prompt: str
    plan: Any  # ponder.router.types.Plan | None
    usage: Any  # ponder.v1.common_pb2.Usage | None
    latency_ms: float
    status: str
    labels: Mapping[str, str]
    error: str = ""
    ts: float = dataclasses.field(default_factory=time.time)

    def fields(self) -> dict[str, str]:
        p, u = self.plan, self.usage
        plan = {} if p is None else plan_to_dict(p)
        usage = {} if u is None else {
            "prompt_tokens": u.prompt_tokens, "output_tokens": u.output_tokens, "thinking_tokens": u.thinking_tokens,
            schema.USAGE_COMPUTE_UNITS: u.compute_units, "samples": u.samples,
            "context_tokens_raw": u.context_tokens_raw, "context_tokens_sent": u.context_tokens_sent,
            "consolidation_saved_cu": u.consolidation_saved_cu,
        }
        return schema.encode_outcome(
            self.request_id, self.prompt, p.pool if p else "", p.strategy if p else "", plan, usage, self.status,
            ts=self.ts, latency_ms=self.latency_ms, labels=self.labels, error=self.error,
        )


def _encode(item: Outcome | Mapping[str, Any]) -> dict[str, str]:
    if isinstance(item, Outcome):
        return item.fields()
    return {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in item.items()}


class OutcomeLog:
    def __init__(self, redis_client, stream: str, maxlen: int, max_buffer: int = 50_000, batch: int = 256,
                 linger_s: float = 0.05):
        self.redis = redis_client
        self.stream = stream
        self.maxlen = maxlen
        self.max_buffer = max_buffer
        self.batch = batch
        # Wait this long for more records before a write, so a busy router sends one
        # pipelined batch per interval instead of one round trip per request.
        self.linger_s = linger_s
        self._buf: collections.deque[Outcome | Mapping[str, Any]] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outcome-log")

    def record(self, item: Outcome | Mapping[str, Any]) -> None:
        """Enqueue one record (an ``Outcome``, or a mapping whose non-string values are JSON-encoded)."""
        if len(self._buf) >= self.max_buffer:
            self._buf.popleft()
            self.dropped += 1
        self._buf.append(item)
        if not self._wake.is_set():
            self._wake.set()

    async def _flush_once(self) -> None:
        # Take the batch out before awaiting, so records arriving during the
        # write (and overflow drops) only ever touch records not in flight.
        items = [self._buf.popleft() for _ in range(min(self.batch, len(self._buf)))]
        try:
            pipe = self.redis.pipeline(transaction=False)
            for item in items:
                pipe.xadd(self.stream, _encode(item), maxlen=self.maxlen, approximate=True)
            await pipe.execute()
        except BaseException:
            # Put the batch back in front, oldest first; what no longer fits is dropped and counted.
            room = self.max_buffer - len(self._buf)
            keep = items[len(items) - room:] if room < len(items) else items
            self.dropped += len(items) - len(keep)
            self._buf.extendleft(reversed(keep))
            raise
        self.written += len(items)

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if not self._buf:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._buf) < self.batch and not self._closing and self.linger_s:
                await asyncio.sleep(self.linger_s)
            try:
                await self._flush_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - Redis down: keep the records, retry
                if self._closing:
                    log.warning("outcome log: %d records not written at shutdown: %s", len(self._buf), e)
                    return
                log.warning("outcome log: redis write failed (%s); retrying in %.1fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Flush what is buffered (up to ``timeout_s``), then stop."""
        self._closing = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout_s)
            except asyncio.TimeoutError:
                self._task.cancel()


class FeedbackStore:
    """Correctness labels for answered requests, beside the outcome log (``outcome_schema.FEEDBACK_HASH``)."""

    def __init__(self, redis_client, key: str = schema.FEEDBACK_HASH):
        self.redis, self.key = redis_client, key

    async def put(self, request_id: str, correct: bool | None, score: float | None) -> None:
        await self.redis.hset(self.key, request_id, schema.encode_feedback(correct, score))
