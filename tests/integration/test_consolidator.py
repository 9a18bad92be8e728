"""The consolidator against real servers: redis-server, gRPC on port 0, sim pools
(test doubles with a latency model) for the idle gate and the rethink calls."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest
import redis.asyncio as aioredis
import yaml

from ponder.common.config import ConsolidatorConfig, PonderConfig, PoolConfig, SimBackend
from ponder.common.errors import PoolUnavailable, grpc_status
from ponder.common.grpcutil import stop_server
from ponder.common.redis_server import LocalRedis
from ponder.common.telemetry import Tracing
from ponder.consolidation.policy import PolicyBook, parse_policies
from ponder.consolidation.pools import PoolDirectory
from ponder.consolidation.scheduler import IdleGate, Worker
from ponder.consolidation.servicer import start
from ponder.consolidation.store import ContextNotFound, ContextRepo
from ponder.consolidation.strategies import StepContext, StepResult, Strategy, StrategyRegistry
from ponder.pools.servicer import SERVICE as POOL_SERVICE, start_standalone
from ponder.router.contexts import ContextStore
from ponder.v1 import common_pb2, consolidation_pb2 as pb, consolidation_pb2_grpc, pool_pb2

FAST = dict(poll_s=0.05, claim_idle_s=0.5, heartbeat_s=0.1, retry_backoff_s=0.05, config_poll_s=0.1,
            default_strategy="rethink", default_passes=2, auto_min_tokens=0)
POLICY = "policies:\n- {name: fast, pool: small, idle: {min_idle_s: 0.2}, passes: [{kind: re_represent, max_tokens: 8}, {kind: precompute_answers, max_tokens: 8, num_questions: 2}]}\n"
TEXT = "The depot in Arlen holds 412 crates of copper wire. " * 3 + "Its manager is Oda Brandt."


class Flaky(Strategy):
    """Test double: step 1 fails with PoolUnavailable on its first try; counts calls."""

    name = "flaky"

    def __init__(self):
        self.calls: list[int] = []
        self.failed = False

    def steps(self, passes: int) -> int:
        return passes

    async def run_step(self, step: int, text: str, ctx: StepContext) -> StepResult:
        self.calls.append(step)
        if step == 1 and not self.failed:
            self.failed = True
            raise PoolUnavailable(ctx.pool, "connection refused (test double)")
        return StepResult(f"{text[:20]}|pass{step}", 10, 2, 3.0)


@pytest.fixture
async def sim_pool():
    cfg = PoolConfig(name="small", backend=SimBackend(ttft_ms=1, tpot_ms=20, output_tokens=100, max_concurrency=1))
    server, port, engine, health = await start_standalone(cfg, "127.0.0.1:0", Tracing("test", simple=True))
    cfg.address = f"127.0.0.1:{port}"
    yield cfg
    await stop_server(server, health, [POOL_SERVICE], 0)
    await engine.close()


def make_cfg(pool: PoolConfig, **over) -> PonderConfig:
    return PonderConfig(pools=[pool], consolidator=ConsolidatorConfig(**{**FAST, **over}))


@pytest.fixture
async def consolidator(sim_pool, redis_url, redis_client, tmp_path):
    policy = tmp_path / "consolidation.yaml"
    policy.write_text(POLICY)
    srv = await start(make_cfg(sim_pool), redis_url, "127.0.0.1:0", policy_file=str(policy))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}")
    yield srv, consolidation_pb2_grpc.ConsolidatorStub(channel)
    await channel.close()
    await srv.stop(0)


async def wait_job(stub, job_id: str, states=("done", "failed", "superseded"), timeout_s: float = 20.0) -> pb.Job:
    deadline = time.monotonic() + timeout_s
    while True:
        job = (await stub.Jobs(pb.JobsRequest(job_id=job_id))).jobs[0]
        if job.state in states or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)


async def test_put_consolidate_get_with_rethink_on_a_pool(consolidator):
    _, stub = consolidator
    info = await stub.PutContext(pb.PutContextRequest(context_id="doc", text=TEXT, tenant="t1"))
    assert info.tokens == -(-len(TEXT) // 4) and len(info.version) == 64 and info.expires_at > info.created_at
    got = await stub.GetContext(pb.GetContextRequest(context_id="doc", include_text=True))
    assert got.raw_text == TEXT and not got.HasField("consolidated")
    job = await stub.Consolidate(pb.ConsolidateRequest(context_id="doc", strategy="rethink", passes=2))
    assert job.state == "queued" and job.steps_total == 2 and job.pool == "small"
    again = await stub.Consolidate(pb.ConsolidateRequest(context_id="doc", strategy="rethink", passes=2))
    assert again.job_id == job.job_id  # one live job per (version, strategy, passes, pool)
    job = await wait_job(stub, job.job_id)
    assert job.state == "done" and job.steps_done == 2 and job.compute_units > 0 and job.model_tokens_out == 16
    got = await stub.GetContext(pb.GetContextRequest(context_id="doc", include_text=True))
    c = got.consolidated
    assert c.source_version == got.info.version and c.strategy == "rethink" and c.passes == 2
    assert "Questions and answers:" in c.text and "[simulated]" in c.text
    assert c.compute_units == pytest.approx(job.compute_units) and c.uses == 0
    status = await stub.Status(pb.ConsolidatorStatusRequest())
    assert status.contexts == 1 and status.policies == ["fast"] and set(status.strategies) >= {"extractive", "rethink"}
    assert status.pools[0].pool == "small" and status.pools[0].idle
    assert (await stub.DeleteContext(pb.DeleteContextRequest(context_id="doc"))).deleted
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stub.GetContext(pb.GetContextRequest(context_id="doc"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("call, field, code", [
    (("PutContext", pb.PutContextRequest(context_id="a", text="")), "text", grpc.StatusCode.INVALID_ARGUMENT),
    (("PutContext", pb.PutContextRequest(context_id="a", text="x" * 3_000_000)), "text", grpc.StatusCode.INVALID_ARGUMENT),
    (("PutContext", pb.PutContextRequest(context_id="a b", text="x")), "context_id", grpc.StatusCode.INVALID_ARGUMENT),
    (("PutContext", pb.PutContextRequest(context_id="a", text="x", ttl_s=-1)), "ttl_s", grpc.StatusCode.INVALID_ARGUMENT),
    (("GetContext", pb.GetContextRequest(context_id="missing")), "context_id", grpc.StatusCode.NOT_FOUND),
    (("Consolidate", pb.ConsolidateRequest(context_id="missing")), "context_id", grpc.StatusCode.NOT_FOUND),
    (("Consolidate", pb.ConsolidateRequest(context_id="a", strategy="summarize")), "strategy", grpc.StatusCode.INVALID_ARGUMENT),
    (("Consolidate", pb.ConsolidateRequest(context_id="a", pool="nope")), "pool", grpc.StatusCode.INVALID_ARGUMENT),
    (("Jobs", pb.JobsRequest(job_id="nope")), "job_id", grpc.StatusCode.NOT_FOUND),
])
async def test_bad_input_gets_a_status_naming_the_field(consolidator, call, field, code):
    _, stub = consolidator
    await stub.PutContext(pb.PutContextRequest(context_id="a", text="known"))
    method, req = call
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await getattr(stub, method)(req)
    assert e.value.code() == code and e.value.details().startswith(field)


async def test_a_busy_pool_holds_jobs_until_it_is_idle(consolidator, sim_pool):
    _, stub = consolidator
    from ponder.router.clients import PoolClient

    client = PoolClient("small", sim_pool.address)
    # Keep the sim pool busy: one request generating at a time, the rest queued (~1.6 s each).
    req = pool_pb2.PoolGenerateRequest(prompt="load", sampling=common_pb2.SamplingParams(max_tokens=80))
    load = [asyncio.create_task(client.generate(req, 30)) for _ in range(2)]
    await asyncio.sleep(0.1)
    await stub.PutContext(pb.PutContextRequest(context_id="doc", text=TEXT))
    job = await stub.Consolidate(pb.ConsolidateRequest(context_id="doc", strategy="rethink", passes=1))
    await asyncio.sleep(1.0)
    waiting = (await stub.Jobs(pb.JobsRequest(job_id=job.job_id))).jobs[0]
    assert waiting.state == "waiting_idle" and waiting.steps_done == 0
    pools = (await stub.Status(pb.ConsolidatorStatusRequest())).pools
    assert not pools[0].idle and "busy" in pools[0].reason
    await asyncio.gather(*load)
    await client.close()
    done = await wait_job(stub, job.job_id)
    assert done.state == "done" and done.steps_done == 1


async def _worker_env(redis_url, pool: PoolConfig, registry: StrategyRegistry, load, **over):
    client = aioredis.Redis.from_url(redis_url)
    cfg = make_cfg(pool, **over)
    repo = ContextRepo(client, cfg.consolidator.stream)
    gate = IdleGate(load, cfg.consolidator.poll_s)
    book = PolicyBook(None)
    book.policies = parse_policies(yaml.safe_load(POLICY.replace("0.2", "0")), "test")
    worker = Worker(repo, cfg.consolidator, registry, book, PoolDirectory(cfg), gate)
    return client, repo, worker


async def test_a_killed_workers_job_is_reclaimed_and_replay_changes_nothing(redis_url, redis_client, sim_pool):
    busy = True

    async def load(pool):
        return (3, 1) if busy else (0, 0)

    reg = StrategyRegistry()
    flaky = Flaky()
    reg.register("flaky", lambda cfg: flaky)
    c1, repo, w1 = await _worker_env(redis_url, sim_pool, reg, load)
    c2, _, w2 = await _worker_env(redis_url, sim_pool, reg, lambda pool: load(pool))
    await repo.put("doc", TEXT)
    job = await repo.enqueue("doc", "flaky", 1, "small", 1)
    stop1, stop2 = asyncio.Event(), asyncio.Event()
    t1 = asyncio.create_task(w1.run(stop1))
    for _ in range(500):  # up to 10 s on a loaded machine
        if (await repo.job(job.job_id)).worker == w1.name:
            break
        await asyncio.sleep(0.02)
    t1.cancel()  # the worker dies while it holds the job (no ack, no more heartbeats)
    await asyncio.gather(t1, return_exceptions=True)
    busy = False
    t2 = asyncio.create_task(w2.run(stop2))
    for _ in range(600):  # up to 30 s
        j = await repo.job(job.job_id)
        if j.state == "done":
            break
        await asyncio.sleep(0.05)
    stop2.set()
    await t2
    assert j.state == "done" and j.worker == w2.name and flaky.calls == [0]
    pending = redis_client.xpending(repo.stream, "consolidators")
    assert pending["pending"] == 0
    # Replaying the finished job (a duplicate delivery) changes nothing.
    r = await repo.resolve("doc")
    assert r.consolidated.uses == 1
    assert await w2.process(job.job_id, asyncio.Event()) is True
    assert await repo.finish(j, {"text": "other", "compute_units": 99.0}, 3600) == 0
    r = await repo.resolve("doc")
    assert r.consolidated.text == "The depot in Arlen h|pass0" and r.consolidated.uses == 2 and flaky.calls == [0]
    for c in (c1, c2):
        await c.aclose()


async def test_pool_down_mid_job_retries_with_progress_kept(redis_url, redis_client, sim_pool):
    async def idle(pool):
        return 0, 0

    reg = StrategyRegistry()
    flaky = Flaky()
    reg.register("flaky", lambda cfg: flaky)
    client, repo, worker = await _worker_env(redis_url, sim_pool, reg, idle)
    await repo.put("doc", TEXT)
    job = await repo.enqueue("doc", "flaky", 3, "small", 3)
    seen_partial = []
    orig = flaky.run_step

    async def watch(step, text, ctx):
        seen_partial.append((await repo.resolve("doc", count_use=False)).consolidated)
        return await orig(step, text, ctx)

    flaky.run_step = watch
    assert await worker.process(job.job_id, asyncio.Event())
    j = await repo.job(job.job_id)
    assert j.state == "done" and j.attempts == 1 and j.steps_done == 3
    assert flaky.calls == [0, 1, 1, 2]  # step 0 was not redone after the failure
    assert seen_partial == [None, None, None, None]  # nothing served before the job finished
    cons = await repo.consolidated("doc")
    assert cons.compute_units == 9.0 and cons.model_tokens_in == 30
    await client.aclose()


async def test_a_result_from_an_older_version_is_never_served(redis_url, redis_client):
    client = aioredis.Redis.from_url(redis_url)
    repo = ContextRepo(client)
    await repo.put("doc", "version one of the text")
    j1 = await repo.enqueue("doc", "extractive", 1, "small", 1)
    await repo.put("doc", "version two of the text")
    assert await repo.finish(j1, {"text": "v1 summary", "compute_units": 1.0}, 3600) == 2
    assert (await repo.job(j1.job_id)).state == "superseded"
    assert (await repo.resolve("doc")).consolidated is None
    j2 = await repo.enqueue("doc", "extractive", 1, "small", 1)
    assert await repo.finish(j2, {"text": "v2 summary", "compute_units": 1.0}, 3600) == 1
    assert (await repo.resolve("doc")).consolidated.text == "v2 summary"
    await repo.put("doc", "version three")
    r = await repo.resolve("doc")
    assert r.consolidated is None and r.raw_text == "version three"
    rec, cons = await repo.current("doc")
    assert cons is None and (await repo.consolidated("doc")).text == "v2 summary"
    await client.aclose()


async def test_router_resolve_with_and_without_a_consolidated_form(redis_url, redis_client):
    client = aioredis.Redis.from_url(redis_url)
    store = ContextStore(client, ConsolidatorConfig(auto_min_tokens=10))
    with pytest.raises(ContextNotFound) as e:
        await store.resolve("missing")
    assert grpc_status(e.value)[0] == grpc.StatusCode.NOT_FOUND
    raw = "The depot in Arlen holds 412 crates. " * 20
    await store.put("doc", raw)
    r = await store.resolve("doc")
    assert not r.consolidated and r.text == raw and r.raw_tokens == r.sent_tokens == -(-len(raw) // 4)
    await store.resolve("doc")
    await store.drain()
    jobs = await store.repo.jobs_of("doc")
    assert len(jobs) == 1 and jobs[0].strategy == "" and jobs[0].source_version == r.source_version
    assert redis_client.xlen(store.cfg.stream) == 1
    assert await store.repo.finish(jobs[0], {"text": "Arlen depot: 412 crates.", "compute_units": 40.0}, 3600) == 1
    first, second = await store.resolve("doc"), await store.resolve("doc")
    assert first.consolidated and first.text == "Arlen depot: 412 crates." and first.uses == 1 and second.uses == 2
    assert second.sent_tokens == 6 and second.consolidation_cu == 40.0 and second.amortised_cu == 20.0
    plan_only = await store.resolve("doc", count_use=False)
    assert plan_only.uses == 2
    r = await store.resolve("doc")
    assert (r.text, r.consolidated) == ("Arlen depot: 412 crates.", True)
    await store.put("doc", raw + " Changed.")
    assert not (await store.resolve("doc")).consolidated
    # Short contexts are not worth a job.
    await store.put("tiny", "x")
    await store.resolve("tiny")
    await store.drain()
    assert await store.repo.jobs_of("tiny") == []
    await client.aclose()


async def test_redis_restart_loses_no_context_or_result_and_workers_carry_on(tmp_path, sim_pool):
    r = LocalRedis(tmp_path / "redis").start()
    try:
        policy = tmp_path / "consolidation.yaml"
        policy.write_text(POLICY.replace("0.2", "0"))
        srv = await start(make_cfg(sim_pool), r.url, "127.0.0.1:0", policy_file=str(policy))
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}")
        stub = consolidation_pb2_grpc.ConsolidatorStub(channel)
        await stub.PutContext(pb.PutContextRequest(context_id="doc", text=TEXT))
        job = await wait_job(stub, (await stub.Consolidate(pb.ConsolidateRequest(context_id="doc", passes=1))).job_id)
        assert job.state == "done"
        before = await stub.GetContext(pb.GetContextRequest(context_id="doc", include_text=True))
        port = r.port
        r.stop()  # SIGTERM: redis-server flushes its append-only file
        await asyncio.sleep(0.3)
        r = LocalRedis(tmp_path / "redis", port=port).start()
        after = await stub.GetContext(pb.GetContextRequest(context_id="doc", include_text=True), timeout=10)
        assert after.raw_text == TEXT and after.consolidated.text == before.consolidated.text
        assert after.consolidated.source_version == after.info.version
        # The worker survived the outage and still takes new jobs.
        await stub.PutContext(pb.PutContextRequest(context_id="doc2", text=TEXT + " More."))
        job2 = await wait_job(stub, (await stub.Consolidate(pb.ConsolidateRequest(context_id="doc2", passes=1))).job_id)
        assert job2.state == "done"
        await channel.close()
        await srv.stop(0)
    finally:
        r.stop()


async def test_ponder_up_starts_the_consolidator(sim_pool, redis_url, redis_client):
    from ponder import stack

    cfg = make_cfg(sim_pool, port=0)
    said = []
    srv = await stack.start_consolidator(cfg, None, redis_url, said.append)
    try:
        assert srv is not None and "consolidator on 127.0.0.1:" in said[0]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            status = await consolidation_pb2_grpc.ConsolidatorStub(ch).Status(pb.ConsolidatorStatusRequest())
        assert status.worker and status.pools[0].pool == "small"
    finally:
        await srv.stop(0)
    off = make_cfg(sim_pool, enabled=False)
    assert await stack.start_consolidator(off, None, redis_url, said.append) is None
    assert await stack.start_consolidator(cfg, None, None, said.append) is None


async def test_metrics_count_steps_and_jobs(consolidator):
    srv, stub = consolidator
    await stub.PutContext(pb.PutContextRequest(context_id="doc", text=TEXT))
    job = await wait_job(stub, (await stub.Consolidate(pb.ConsolidateRequest(context_id="doc", passes=1))).job_id)
    assert job.state == "done"
    from prometheus_client import generate_latest

    metrics = srv.servicer.worker_metrics
    text = generate_latest(metrics.registry).decode()
    assert 'ponder_consolidator_steps_total{strategy="rethink"} 1.0' in text
    assert 'ponder_consolidator_jobs_total{state="done"} 1.0' in text


async def test_router_serves_the_consolidated_form_over_grpc(redis_client, sim_stack):
    from ponder.v1 import router_pb2

    contexts = sim_stack.router.servicer.contexts
    raw = "The depot in Arlen holds 412 crates of copper wire. Nothing else happened that day. " * 40
    await contexts.put("doc", raw)
    req = router_pb2.GenerateRequest(prompt="How many crates?", context_id="doc")
    first = await sim_stack.stub.Generate(req, timeout=10)
    jobs = await contexts.repo.jobs_of("doc")
    assert len(jobs) == 1  # the raw text was sent and a consolidation was queued
    assert await contexts.repo.finish(jobs[0], {"text": "Arlen depot: 412 crates of copper wire.",
                                                "compute_units": 50.0}, 3600) == 1
    second = await sim_stack.stub.Generate(req, timeout=10)
    assert first.usage.prompt_tokens >= len(raw) // 4
    assert second.usage.prompt_tokens < first.usage.prompt_tokens // 10
    assert (await contexts.repo.consolidated("doc")).uses == 1


FOCUS_FACTS = [f"The depot in {p} holds {n} crates of copper wire." for p, n in
               (("Arlen", 412), ("Brisk", 977), ("Corvo", 305), ("Dunmere", 618), ("Eskel", 240))]
FOCUS_RAW = " ".join(f"{f} The committee reviewed the routine budget outline at the spring meeting number {i}."
                     for i, f in enumerate(FOCUS_FACTS * 8))
FOCUS_FORM = " ".join(f"{f} The budget outline was discussed." for f in FOCUS_FACTS * 6)


async def test_router_focuses_a_query_on_the_consolidated_contexts_relevant_sentences(redis_url, redis_client):
    client = aioredis.Redis.from_url(redis_url)
    store = ContextStore(client, ConsolidatorConfig(auto_min_tokens=10))
    await store.put("doc", FOCUS_RAW)
    await store.resolve("doc")
    await store.drain()
    job = (await store.repo.jobs_of("doc"))[0]
    assert await store.repo.finish(job, {"text": FOCUS_FORM, "compute_units": 40.0}, 3600) == 1
    r = await store.resolve("doc", query="How many crates does the depot in Corvo hold?")
    assert r.consolidated and r.focused and r.uses == 1
    assert "The depot in Corvo holds 305 crates of copper wire." in r.text and "committee" not in r.text
    assert r.form_tokens == -(-len(FOCUS_FORM) // 4) and r.sent_tokens < r.form_tokens // 5 < r.raw_tokens
    # No query, or one that shares no word with the context: the whole form.
    for q in ("", "Why is the sky blue?"):
        whole = await store.resolve("doc", query=q)
        assert whole.consolidated and not whole.focused and whole.text == FOCUS_FORM
    # The index is built once per context version; a new text is raw again (and never focused).
    assert len(store._indexes) == 1
    await store.put("doc", FOCUS_RAW + " Changed.")
    r = await store.resolve("doc", query="How many crates does the depot in Corvo hold?")
    assert not r.consolidated and not r.focused and r.text == FOCUS_RAW + " Changed."
    await client.aclose()


async def test_router_sends_the_focused_context_over_grpc_for_prompts_and_chats(redis_client, sim_stack):
    from ponder.v1 import router_pb2

    contexts = sim_stack.router.servicer.contexts
    await contexts.put("doc", FOCUS_RAW)
    await contexts.repo.enqueue("doc", "extractive", 1, "small", 1)
    job = (await contexts.repo.jobs_of("doc"))[0]
    assert await contexts.repo.finish(job, {"text": FOCUS_FORM, "compute_units": 50.0}, 3600) == 1
    q = "How many crates does the depot in Eskel hold?"
    by_prompt = await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt=q, context_id="doc"), timeout=10)
    chat = router_pb2.GenerateRequest(context_id="doc", messages=[
        common_pb2.ChatMessage(role="user", content="Tell me about Arlen."), common_pb2.ChatMessage(role="assistant", content="ok"),
        common_pb2.ChatMessage(role="user", content=q)])
    by_chat = await sim_stack.stub.Generate(chat, timeout=10)
    for resp in (by_prompt, by_chat):
        assert resp.usage.context_tokens_raw == -(-len(FOCUS_RAW) // 4)
        assert 0 < resp.usage.context_tokens_sent <= -(-len(" ".join(FOCUS_FACTS)) // 4)
        assert resp.usage.consolidation_saved_cu > 0
    # The chat is focused on its last user turn, so both send the same context.
    assert by_chat.usage.context_tokens_sent == by_prompt.usage.context_tokens_sent


async def test_focus_indexes_are_built_once_and_bounded_by_text_size(redis_url, redis_client, monkeypatch):
    import ponder.router.contexts as contexts_module

    builds = []
    real = contexts_module.build_index

    def counting(*args):
        builds.append(args[0][:20])
        return real(*args)

    monkeypatch.setattr(contexts_module, "build_index", counting)
    client = aioredis.Redis.from_url(redis_url)
    # Room for one context's texts, not two.
    store = ContextStore(client, ConsolidatorConfig(auto_consolidate=False,
                                                    focus={"cache_chars": len(FOCUS_RAW) + len(FOCUS_FORM) + 10}))
    repo = store.repo
    for cid in ("a", "b"):
        await store.put(cid, FOCUS_RAW if cid == "a" else FOCUS_RAW.replace("copper", "brass"))
        job = await repo.enqueue(cid, "extractive", 1, "small", 1)
        assert await repo.finish(job, {"text": FOCUS_FORM, "compute_units": 1.0}, 3600) == 1
    q = "How many crates does the depot in Brisk hold?"
    # Ten concurrent first queries on one context: one build, all focused alike.
    got = await asyncio.gather(*(store.resolve("a", query=q) for _ in range(10)))
    assert len(builds) == 1 and all(r.focused and r.text == got[0].text for r in got)
    await store.resolve("b", query=q)
    assert len(builds) == 2 and [k[0] for k in store._indexes] == ["b"]  # "a" dropped: over cache_chars
    await store.resolve("a", query=q)
    assert len(builds) == 3
    await client.aclose()


async def test_a_failed_focus_sends_the_whole_form_and_is_retried(redis_url, redis_client, monkeypatch):
    import ponder.router.contexts as contexts_module

    real, calls = contexts_module.build_index, []

    def failing_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("index too large (test double)")
        return real(*args)

    monkeypatch.setattr(contexts_module, "build_index", failing_once)
    client = aioredis.Redis.from_url(redis_url)
    store = ContextStore(client, ConsolidatorConfig(auto_consolidate=False))
    await store.put("doc", FOCUS_RAW)
    job = await store.repo.enqueue("doc", "extractive", 1, "small", 1)
    assert await store.repo.finish(job, {"text": FOCUS_FORM, "compute_units": 1.0}, 3600) == 1
    q = "How many crates does the depot in Brisk hold?"
    first = await store.resolve("doc", query=q)
    assert first.consolidated and not first.focused and first.text == FOCUS_FORM
    second = await store.resolve("doc", query=q)
    assert second.focused and "Brisk holds 977" in second.text and len(calls) == 2
    await client.aclose()
