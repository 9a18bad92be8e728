"""The outcome log: one Redis stream record per request (plan, usage, latency, status).

Writes are off the request path: ``record`` only enqueues; a background task
batches records into pipelined XADDs. When Redis is down the writer keeps
retrying with backoff and holds up to ``max_buffer`` records; past that the
oldest are dropped and counted (``dropped``), never blocking requests.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import Any

log = logging.getLogger(__name__)


class OutcomeLog:
    def __init__(self, redis_client, stream: str, maxlen: int, max_buffer: int = 50_000, batch: int = 256):
        self.redis = redis_client
        self.stream = stream
        self.maxlen = maxlen
        self.max_buffer = max_buffer
        self.batch = batch
        self._buf: collections.deque[dict[str, str]] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False
        self.written = 0
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outcome-log")

    def record(self, fields: dict[str, Any]) -> None:
        flat = {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in fields.items()}
        if len(self._buf) >= self.max_buffer:
            self._buf.popleft()
            self.dropped += 1
        self._buf.append(flat)
        self._wake.set()

    async def _flush_once(self) -> None:
        # Take the batch out before awaiting, so records arriving during the
        # write (and overflow drops) only ever touch records not in flight.
        items = [self._buf.popleft() for _ in range(min(self.batch, len(self._buf)))]
        try:
            pipe = self.redis.pipeline(transaction=False)
            for f in items:
                pipe.xadd(self.stream, f, maxlen=self.maxlen, approximate=True)
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
