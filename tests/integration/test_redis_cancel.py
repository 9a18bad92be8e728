"""A loop awaiting redis-py's asyncio client ends when cancelled, even when the client swallows the cancel.

On a real redis-server: tasks that issue commands back to back are cancelled at random moments.
redis-py can swallow a cancel that lands inside a command (redis/redis-py#2028), so a bare
``while True`` loop may run on; ``ponder.common.eventloop.cancel_requested`` still sees the pending
request, and a loop that checks it always ends.
"""
from __future__ import annotations

import asyncio
import random

import redis.asyncio as aioredis

from ponder.common.eventloop import cancel_requested


async def test_a_loop_that_checks_cancel_requested_always_ends(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    rng = random.Random(7)

    async def busy():
        while not cancel_requested():
            await client.hset("ponder:test:cancel", "k", 1)

    try:
        for _ in range(40):
            task = asyncio.create_task(busy())
            await asyncio.sleep(rng.random() * 0.003)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=2.0)
            assert done == {task}, "a cancelled loop kept running"
    finally:
        await client.aclose()


async def test_cancel_requested_is_false_outside_a_cancel():
    assert cancel_requested() is False
