"""OutcomeLog against a real redis-server: records land in the stream, survive Redis being down, overflow drops oldest."""
from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ponder.common.redis_server import free_port
from ponder.router.outcomes import OutcomeLog


@pytest.fixture
async def client(redis_url):
    c = Redis.from_url(redis_url)
    yield c
    await c.aclose()


@pytest.fixture
def stream() -> str:
    return f"test:outcomes:{uuid.uuid4().hex}"


async def entries(client: Redis, stream: str) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in await client.xrange(stream)]


class HeldPipelineRedis:
    """A real Redis client whose pipeline ``execute`` waits until ``release`` is set."""

    def __init__(self, real: Redis):
        self.real = real
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def pipeline(self, transaction: bool = True):
        pipe = self.real.pipeline(transaction=transaction)
        execute = pipe.execute

        async def held_execute(*args, **kwargs):
            self.entered.set()
            await self.release.wait()
            return await execute(*args, **kwargs)

        pipe.execute = held_execute
        return pipe


async def test_records_land_with_json_encoded_nested_fields(client, stream):
    log = OutcomeLog(client, stream, maxlen=1000)
    log.start()
    log.record({
        "request_id": "r1",
        "plan": {"pool": "small", "strategy": "single", "samples": 1},
        "usage": [12, 34],
        "ok": True,
        "compute_units": 1.5,
        "error": None,
    })
    log.record({"request_id": "r2", "status": "UNAVAILABLE"})
    await log.close(timeout_s=5)

    got = await entries(client, stream)
    assert [e["request_id"] for e in got] == ["r1", "r2"]
    first = got[0]
    assert first["plan"] == '{"pool":"small","strategy":"single","samples":1}'
    assert json.loads(first["plan"]) == {"pool": "small", "strategy": "single", "samples": 1}
    assert (first["usage"], first["ok"], first["compute_units"], first["error"]) == ("[12,34]", "true", "1.5", "null")
    assert got[1]["status"] == "UNAVAILABLE"
    assert (log.written, log.dropped) == (2, 0)
    assert log._task.done()


async def test_many_records_are_written_in_batches(client, stream):
    log = OutcomeLog(client, stream, maxlen=10_000, batch=7)
    log.start()
    for i in range(50):
        log.record({"i": str(i)})
    await log.close(timeout_s=5)
    assert [e["i"] for e in await entries(client, stream)] == [str(i) for i in range(50)]
    assert log.written == 50


async def test_close_with_nothing_recorded_returns_at_once(client, stream):
    log = OutcomeLog(client, stream, maxlen=1000)
    log.start()
    t0 = time.monotonic()
    await log.close(timeout_s=5)
    assert time.monotonic() - t0 < 1.0
    assert log.written == 0 and await client.exists(stream) == 0


async def test_unreachable_redis_keeps_records_and_close_does_not_hang():
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    try:
        log = OutcomeLog(down, "test:down", maxlen=1000)
        log.start()
        for i in range(5):
            log.record({"i": i})
        await asyncio.sleep(0.4)  # several failed attempts with backoff
        assert log.written == 0
        t0 = time.monotonic()
        await log.close(timeout_s=3)
        assert time.monotonic() - t0 < 3.5
        assert log._task.done()
        # Without a spill file, what Redis never took is counted as lost (see test_outcome_spill.py).
        assert log.written == 0 and log.dropped == 5 and not log._buf
    finally:
        await down.aclose()


async def test_close_gives_up_on_a_write_that_never_returns(client, stream):
    held = HeldPipelineRedis(client)  # never released: a Redis that accepts but never answers
    log = OutcomeLog(held, stream, maxlen=1000)
    log.start()
    log.record({"i": "0"})
    await asyncio.wait_for(held.entered.wait(), 2)
    t0 = time.monotonic()
    await log.close(timeout_s=0.3)
    assert 0.25 < time.monotonic() - t0 < 1.5
    await asyncio.sleep(0)
    assert log._task.done()
    assert log.written == 0 and log.dropped == 1 and not log._buf
    assert await client.exists(stream) == 0


async def test_overflow_drops_the_oldest_and_counts(client, stream):
    log = OutcomeLog(client, stream, maxlen=1000, max_buffer=3)
    for i in range(5):
        log.record({"i": str(i)})
    assert log.dropped == 2
    log.start()
    await log.close(timeout_s=5)
    assert [e["i"] for e in await entries(client, stream)] == ["2", "3", "4"]
    assert (log.written, log.dropped) == (3, 2)


async def test_records_are_written_once_redis_comes_back(client, stream):
    held = HeldPipelineRedis(client)
    log = OutcomeLog(held, stream, maxlen=1000)
    log.start()
    log.record({"i": "0"})
    await asyncio.wait_for(held.entered.wait(), 2)
    log.record({"i": "1"})  # arrives while the first batch is in flight
    held.release.set()
    await log.close(timeout_s=5)
    assert [e["i"] for e in await entries(client, stream)] == ["0", "1"]
    assert log.written == 2


async def test_overflow_during_a_write_loses_no_unwritten_record(client, stream):
    held = HeldPipelineRedis(client)
    log = OutcomeLog(held, stream, maxlen=1000, max_buffer=2)
    log.record({"i": "0"})
    log.record({"i": "1"})
    log.start()
    await asyncio.wait_for(held.entered.wait(), 2)
    log.record({"i": "2"})  # buffer full: drops the oldest, which is being written
    held.release.set()
    await log.close(timeout_s=5)
    written = [e["i"] for e in await entries(client, stream)]
    assert "2" in written
    assert len(written) + log.dropped + len(log._buf) >= 3
