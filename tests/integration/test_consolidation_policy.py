"""ConsolidationPolicy pacing and retention against a real redis-server: max_pass_share
rests the pool between steps, min_interval_s defers a context's next consolidation,
retention.max_contexts evicts the oldest contexts but never one a running job holds."""
from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
import yaml

from ponder.common.config import ConsolidatorConfig, PonderConfig, PoolConfig, SimBackend
from ponder.consolidation.policy import PolicyBook, parse_policies
from ponder.consolidation.pools import PoolDirectory
from ponder.consolidation.scheduler import IdleGate, Worker
from ponder.consolidation.store import ContextRepo
from ponder.consolidation.strategies import StepContext, StepResult, Strategy, StrategyRegistry

FAST = dict(poll_s=0.02, claim_idle_s=5, heartbeat_s=0.1, retry_backoff_s=0.05, config_poll_s=0.1, auto_min_tokens=0)
POOL = PoolConfig(name="small", address="127.0.0.1:1", backend=SimBackend())


class Timed(Strategy):
    """Test double: each step sleeps ``step_s`` and records when it started and ended."""

    name = "timed"

    def __init__(self, step_s: float):
        self.step_s = step_s
        self.spans: list[tuple[float, float]] = []

    def steps(self, passes: int) -> int:
        return passes

    async def run_step(self, step: int, text: str, ctx: StepContext) -> StepResult:
        t0 = time.time()
        await asyncio.sleep(self.step_s)
        self.spans.append((t0, time.time()))
        return StepResult(f"{text[:10]}|{step}", 1, 1, 1.0)


async def idle(pool):
    return 0, 0


async def env(redis_url, policy: dict, strategy: Strategy):
    client = aioredis.Redis.from_url(redis_url)
    cfg = PonderConfig(pools=[POOL], consolidator=ConsolidatorConfig(**FAST))
    repo = ContextRepo(client, cfg.consolidator.stream)
    book = PolicyBook(None)
    book.policies = parse_policies(yaml.safe_load(yaml.safe_dump({"policies": [{"name": "p", "pool": "small", **policy}]})), "test")
    reg = StrategyRegistry()
    reg.register(strategy.name, lambda c: strategy)
    gate = IdleGate(idle, cfg.consolidator.poll_s, rest=repo.pool_rest_until)
    return client, repo, book, Worker(repo, cfg.consolidator, reg, book, PoolDirectory(cfg), gate)


async def test_max_pass_share_rests_the_pool_between_steps(redis_url, redis_client):
    timed = Timed(0.2)
    client, repo, _, worker = await env(
        redis_url, {"idle": {"min_idle_s": 0, "max_pass_share": 0.25}, "min_interval_s": 0}, timed)
    await repo.put("doc", "some text to consolidate. " * 4)
    job = await repo.enqueue("doc", "timed", 3, "small", 3)
    t0 = time.time()
    assert await worker.process(job.job_id, asyncio.Event())
    wall = time.time() - t0
    gaps = [timed.spans[i + 1][0] - timed.spans[i][1] for i in range(2)]
    # Each 0.2 s step is followed by a 0.6 s rest: consolidation took at most a quarter of the time.
    assert all(g >= 0.55 for g in gaps), gaps
    for (a, b), gap in zip(timed.spans, gaps):
        assert (b - a) / (b - a + gap) <= 0.26
    assert wall >= 1.7
    # The rest lives in Redis: another worker (replica) sees it.
    assert await repo.pool_rest_until("small") > time.time()
    await client.aclose()


async def test_full_share_does_not_rest(redis_url, redis_client):
    timed = Timed(0.1)
    client, repo, _, worker = await env(redis_url, {"idle": {"min_idle_s": 0, "max_pass_share": 1.0}, "min_interval_s": 0}, timed)
    await repo.put("doc", "some text. " * 4)
    job = await repo.enqueue("doc", "timed", 3, "small", 3)
    assert await worker.process(job.job_id, asyncio.Event())
    assert len(timed.spans) == 3 and await repo.pool_rest_until("small") == 0.0  # no rest was ever set
    await client.aclose()


async def test_min_interval_defers_the_next_consolidation_of_a_context(redis_url, redis_client):
    timed = Timed(0.0)
    client, repo, _, worker = await env(
        redis_url, {"idle": {"min_idle_s": 0, "max_pass_share": 1.0}, "min_interval_s": 1.0}, timed)
    await repo.put("doc", "first text. " * 4)
    j1 = await repo.enqueue("doc", "timed", 1, "small", 1)
    assert await worker.process(j1.job_id, asyncio.Event())
    done_at = (await repo.consolidated("doc")).created_at
    await repo.put("doc", "second text. " * 4)
    j2 = await repo.enqueue("doc", "timed", 1, "small", 1)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.3)
    parked = await repo.job(j2.job_id)
    assert parked.state == "deferred" and parked.not_before >= done_at + 1.0 - 1e-6
    assert len(timed.spans) == 1  # the second job has not run, and the worker is free meanwhile
    # Another context is not held up by the deferred one.
    await repo.put("other", "other text. " * 4)
    j3 = await repo.enqueue("other", "timed", 1, "small", 1)
    for _ in range(100):
        if (await repo.job(j3.job_id)).state == "done":
            break
        await asyncio.sleep(0.02)
    assert (await repo.job(j3.job_id)).state == "done"
    assert (await repo.job(j2.job_id)).state == "deferred"
    for _ in range(200):
        if (await repo.job(j2.job_id)).state == "done":
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    j2 = await repo.job(j2.job_id)
    # Spans: the first job, the other context's job, then the deferred one.
    assert j2.state == "done" and len(timed.spans) == 3 and timed.spans[2][0] >= done_at + 1.0 - 0.05
    assert (await repo.resolve("doc", count_use=False)).consolidated.text.startswith("second")
    await client.aclose()


async def test_max_contexts_evicts_the_oldest_but_never_one_in_use(redis_url, redis_client):
    client, repo, book, _ = await env(redis_url, {"retention": {"max_contexts": 3}}, Timed(0.0))
    for i in range(3):
        await repo.put(f"c{i}", f"text {i}")
        await asyncio.sleep(0.01)
    job = await repo.enqueue("c0", "timed", 1, "small", 1)
    await repo.update_job(job.job_id, state="running", worker="w")  # a worker holds c0's job
    await repo.put("c3", "text 3")
    assert await repo.evict_over(book.max_contexts()) == ["c1"]  # c0 is oldest but in use
    assert sorted(i.decode() for i in await client.smembers("ponder:contexts")) == ["c0", "c2", "c3"]
    await repo.put("c4", "text 4")
    await repo.update_job(job.job_id, state="done")
    assert await repo.evict_over(book.max_contexts()) == ["c0"]
    assert await repo.count() == 3
    # Putting a context again makes it the newest.
    await repo.put("c2", "text 2 again")
    await repo.put("c5", "text 5")
    assert await repo.evict_over(book.max_contexts()) == ["c3"]
    await client.aclose()
