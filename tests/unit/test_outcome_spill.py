"""Outcome records are never lost: past the memory bound and at shutdown they go to an append-only
spill file, replayed into a real redis-server at the next start or when Redis comes back."""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ponder.common.redis_server import LocalRedis, free_port
from ponder.router.outcomes import OutcomeLog


def down_client() -> Redis:
    return Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))


async def ids(client: Redis, stream: str) -> list[str]:
    return [f[b"i"].decode() for _, f in await client.xrange(stream)]


@pytest.fixture
async def client(redis_url):
    c = Redis.from_url(redis_url)
    yield c
    await c.aclose()


async def test_overflow_and_shutdown_spill_then_the_next_start_replays_all(client, tmp_path):
    stream, spill = f"test:spill:{uuid.uuid4().hex}", tmp_path / "outcomes.spill"
    down = down_client()
    log = OutcomeLog(down, stream, maxlen=10_000, max_buffer=10, batch=4, spill_path=spill)
    log.start()
    for i in range(100):
        log.record({"i": str(i)})
    assert len(log._buf) <= 10 and log.spilled >= 90  # the bound holds while Redis is down
    await log.close(timeout_s=0.5)
    await down.aclose()
    assert (log.written, log.dropped, log.spilled) == (0, 0, 100)
    assert sorted(int(json.loads(x)["i"]) for x in spill.read_text().splitlines()) == list(range(100))

    again = OutcomeLog(client, stream, maxlen=10_000, spill_path=spill)
    again.start()
    again.record({"i": "new"})
    await again.close(timeout_s=5)
    got = await ids(client, stream)
    assert sorted(got) == sorted([*map(str, range(100)), "new"]) and len(got) == 101
    assert again.replayed == 100 and not list(tmp_path.iterdir())


async def test_records_spilled_during_an_outage_reach_redis_when_it_returns(tmp_path):
    stream, spill = f"test:spill:{uuid.uuid4().hex}", tmp_path / "o.spill"
    with LocalRedis(tmp_path / "data") as server:
        url = server.url
        client = Redis.from_url(url, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        log = OutcomeLog(client, stream, maxlen=10_000, max_buffer=5, batch=5, linger_s=0, spill_path=spill)
        log.start()
        server.stop()  # Redis gone mid-run
        for i in range(50):
            log.record({"i": str(i)})
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)
        assert log.written == 0 and log.spilled >= 45
        server.start()  # back, same port and data
        for _ in range(100):
            if log.written + log.replayed == 50:
                break
            await asyncio.sleep(0.1)
        await log.close(timeout_s=5)
        got = await ids(client, stream)
        await client.aclose()
    assert sorted(got, key=int) == [str(i) for i in range(50)] and log.dropped == 0


async def test_a_torn_last_line_is_skipped_and_the_rest_replayed(client, tmp_path):
    stream, spill = f"test:spill:{uuid.uuid4().hex}", tmp_path / "o.spill"
    spill.write_text('{"i":"0"}\n{"i":"1"}\n{"i":')  # a crash mid-append
    log = OutcomeLog(client, stream, maxlen=1000, spill_path=spill)
    log.start()
    await log.close(timeout_s=5)
    assert await ids(client, stream) == ["0", "1"] and not spill.exists()
