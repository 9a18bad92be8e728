"""The outcome log: one Redis stream record per request (plan, usage, latency, status).

Writes are off the request path: ``record`` only enqueues (an ``Outcome`` or a
ready mapping); a background task encodes the records (``outcome_schema``)
and batches them into pipelined XADDs. When Redis is down the writer keeps
retrying with backoff and holds up to ``max_buffer`` records in memory.

Nothing is lost when a ``spill_path`` is given: past the bound the oldest
records are appended to that file (one JSON object a line, already encoded),
and at ``close`` whatever Redis did not take is appended there too (flushed
and fsynced). At start, and whenever the memory buffer has emptied after a
spill, the file is renamed aside and replayed into the stream in batches;
a replay cut short by a crash is replayed again at the next start, so records
are written at least once (a record's ``request_id`` identifies duplicates).
Without a spill file, overflow drops the oldest and counts them (``dropped``);
a spill file that cannot be written counts its records as dropped too.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import os
import pathlib
import time
from typing import Any, Mapping

from ponder.common.eventloop import cancel_requested
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
    tenant: str = ""
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
            ts=self.ts, latency_ms=self.latency_ms, labels=self.labels, error=self.error, tenant=self.tenant,
        )


def _encode(item: Outcome | Mapping[str, Any]) -> dict[str, str]:
    if isinstance(item, Outcome):
        return item.fields()
    return {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in item.items()}


class OutcomeLog:
    def __init__(self, redis_client, stream: str, maxlen: int, max_buffer: int = 50_000, batch: int = 256,
                 linger_s: float = 0.05, spill_path: str | os.PathLike | None = None):
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
        self.spill_path = pathlib.Path(spill_path) if spill_path is not None else None
        self.written = 0
        self.dropped = 0
        self.spilled = 0
        self.replayed = 0
        self._replay_due = self.spill_path is not None  # a previous run may have left records

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outcome-log")

    def record(self, item: Outcome | Mapping[str, Any]) -> None:
        """Enqueue one record (an ``Outcome``, or a mapping whose non-string values are JSON-encoded)."""
        if len(self._buf) >= self.max_buffer:
            self._overflow(len(self._buf) - self.max_buffer + 1)
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
            # Put the batch back in front, oldest first; what no longer fits spills (or is dropped).
            self._buf.extendleft(reversed(items))
            if len(self._buf) > self.max_buffer:
                self._overflow(len(self._buf) - self.max_buffer)
            raise
        self.written += len(items)

    # ------------------------------------------------------------ spill file
    def _overflow(self, n: int) -> None:
        """Move the ``n`` oldest buffered records to the spill file, or drop them without one."""
        n = min(n, len(self._buf))
        if self.spill_path is None:
            for _ in range(n):
                self._buf.popleft()
            self.dropped += n
            return
        # Spill a whole batch at a time so a long outage costs one write per batch, not per request.
        n = min(len(self._buf), max(n, self.batch))
        self._spill([self._buf.popleft() for _ in range(n)])

    def _spill(self, items: list, sync: bool = False) -> None:
        try:
            self.spill_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.spill_path, "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(_encode(i), separators=(",", ":")) + "\n" for i in items))
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
        except (OSError, TypeError, ValueError) as e:
            self.dropped += len(items)
            log.error("outcome log: %d records lost, spill file %s not written: %s", len(items), self.spill_path, e)
            return
        self.spilled += len(items)
        self._replay_due = True

    def _replay_files(self) -> list[pathlib.Path]:
        """Spill files waiting for replay, oldest first: those renamed aside earlier, then the live one."""
        p = self.spill_path
        aside = sorted(p.parent.glob(p.name + ".replay-*"), key=lambda f: int(f.name.rsplit("-", 1)[1]))
        if p.exists() and p.stat().st_size:
            target = p.with_name(f"{p.name}.replay-{time.time_ns()}")
            p.rename(target)  # new spills go to a fresh file while this one is replayed
            aside.append(target)
        return aside

    async def _replay(self) -> None:
        """Write every spilled record into the stream; a file is removed once all of it is in Redis."""
        for f in self._replay_files():
            lines = f.read_text(encoding="utf-8").splitlines()
            done = 0
            while done < len(lines):
                chunk = lines[done:done + self.batch]
                pipe = self.redis.pipeline(transaction=False)
                for line in chunk:
                    try:
                        fields = json.loads(line)
                    except ValueError:  # a line torn by a crash mid-write: nothing to replay
                        continue
                    pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
                await pipe.execute()
                done += len(chunk)
                self.replayed += len(chunk)
                if done < len(lines):  # keep progress, so a failure later replays only the rest
                    f.write_text("".join(x + "\n" for x in lines[done:]), encoding="utf-8")
            f.unlink()
        self._replay_due = False

    async def _run(self) -> None:
        backoff = 0.1
        while not cancel_requested():  # a cancel swallowed inside the Redis client still ends the loop
            if not self._buf and self._replay_due:
                try:
                    await self._replay()
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - Redis down: the file stays, retry later
                    if self._closing:
                        return
                    log.warning("outcome log: replay of %s failed (%s); retrying in %.1fs", self.spill_path, e, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                continue
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
                    self._close_out(e)
                    return
                log.warning("outcome log: redis write failed (%s); retrying in %.1fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _close_out(self, why: object) -> None:
        """At shutdown: what Redis did not take goes to the spill file (fsynced), or is counted as dropped."""
        if not self._buf:
            return
        items = list(self._buf)
        self._buf.clear()
        if self.spill_path is None:
            self.dropped += len(items)
            log.warning("outcome log: %d records not written at shutdown: %s", len(items), why)
            return
        self._spill(items, sync=True)
        log.warning("outcome log: %d records kept in %s for the next start (%s)", len(items), self.spill_path, why)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Flush what is buffered (up to ``timeout_s``), then spill the rest and stop."""
        self._closing = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout_s)
            except asyncio.TimeoutError:
                pass  # wait_for cancelled the writer; its batch in flight went back to the buffer
        self._close_out("redis did not answer in time")


class FeedbackStore:
    """Correctness labels for answered requests, beside the outcome log (``outcome_schema.FEEDBACK_HASH``)."""

    def __init__(self, redis_client, key: str = schema.FEEDBACK_HASH):
        self.redis, self.key = redis_client, key

    async def put(self, request_id: str, correct: bool | None, score: float | None) -> None:
        await self.redis.hset(self.key, request_id, schema.encode_feedback(correct, score))
