"""Consolidation strategies on a real small model: Gemma 3 270M Q4_K_M through llama.cpp."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from ponder.common.config import ConsolidatorConfig, Cost, ExtractiveSettings, LlamaCppBackend, PonderConfig, PoolConfig
from ponder.common.grpcutil import stop_server
from ponder.common.telemetry import Tracing
from ponder.consolidation.servicer import start
from ponder.consolidation.strategies import StepContext
from ponder.consolidation.strategies.extractive import Extractive, split_units
from ponder.consolidation.strategies.rethink import Rethink
from ponder.pools.models import ensure_default_gguf
from ponder.pools.servicer import SERVICE, start_standalone
from ponder.router.clients import PoolClient
from ponder.v1 import consolidation_pb2 as pb, consolidation_pb2_grpc

pytestmark = pytest.mark.integration

FACTS = [
    "The granary in Dunmere holds 7315 sacks of barley.",
    "The archive in Kestrel holds 2281 chests of tea.",
    "The mill in Zenith holds 9046 coils of rope.",
    "The yard in Fennick holds 4472 bundles of cedar planks.",
]
FILLER = [
    "The committee reviewed the routine budget outline at the monthly meeting and agreed to return to it later.",
    "The board reviewed the usual staffing plan at the annual meeting and agreed to return to it later.",
    "The panel reviewed the routine safety review at the monthly meeting and agreed to return to it later.",
    "The council reviewed the usual budget outline at the annual meeting and agreed to return to it later.",
]


@pytest.fixture(scope="module")
def gguf() -> str:
    return str(ensure_default_gguf())


@pytest.fixture
async def llama_pool(gguf):
    cfg = PoolConfig(name="small", backend=LlamaCppBackend(model_path=gguf, n_ctx=1024, n_threads=2))
    server, port, engine, health = await start_standalone(cfg, "127.0.0.1:0", Tracing("test", simple=True))
    cfg.address = f"127.0.0.1:{port}"
    yield cfg
    await stop_server(server, health, [SERVICE], 0)
    await engine.close()


async def test_extractive_keeps_informative_sentences_within_the_ratio(gguf):
    # Facts among bland, repetitive report prose; the same prose once more at the end.
    units = [u for pair in zip(FILLER, FACTS) for u in pair] + FILLER + FILLER[:1]
    text = " ".join(units)
    strategy = Extractive(ExtractiveSettings(model_path=gguf, target_ratio=2.0, window_tokens=128, n_threads=2))
    ctx = StepContext(pool="small", client=None, cost=Cost(), settings=ConsolidatorConfig())
    try:
        r = await strategy.run_step(0, text, ctx)
        raw_tokens = sum(len(strategy.scorer.tokenize(u)) for u in units)
    finally:
        await strategy.close()
    kept = split_units(r.text)
    assert kept and all(k in units for k in kept)
    assert [units.index(k) for k in kept] == sorted(units.index(k) for k in kept)  # original order
    scorer_tokens = r.tokens_in  # the repeated prose at the end is dropped before scoring
    unique = " ".join(units[:-len(FILLER) - 1])
    assert len(unique) // 8 < scorer_tokens < len(unique) // 2
    assert r.compute_units == pytest.approx(scorer_tokens * 0.1)
    # Kept tokens fit in half of the raw text's tokens (its repeats counted, though not scored).
    assert r.tokens_out <= raw_tokens / 2 and raw_tokens > scorer_tokens
    assert sum(f in kept for f in FACTS) > sum(f in kept for f in FILLER)


# A register unlike the bench's generated reports (a club newsletter): the method must keep
# entity-value statements in phrasing it has never seen.
NEWSLETTER_FACTS = [
    "Maria Lopez won the 2019 regional chess final in Valencia.",
    "Our treasurer, Tom Whitaker, reports a balance of 4,310 euros.",
    "The ferry to Ostend now leaves at 07:15 from pier 3.",
    "Professor Anika Rao will speak on March 12 about coastal birds.",
]
NEWSLETTER_PROSE = [
    "Everyone seemed to enjoy the afternoon, and the weather was kind to us for once.",
    "As always, we are grateful to all the volunteers who helped to set up the hall.",
    "It was lovely to see so many familiar faces, and a few new ones too.",
    "Please do keep sending in your ideas for future outings and talks.",
    "We hope to see as many of you as possible at the next gathering.",
    "Thanks again to everyone who brought cakes, which disappeared very quickly.",
    "There is always room for more helpers, so do get in touch if you can spare an hour.",
    "The committee would like to thank members for their patience over the past months.",
]


async def test_extractive_keeps_facts_in_an_unseen_register(gguf):
    units = NEWSLETTER_PROSE[:2] + NEWSLETTER_FACTS[:2] + NEWSLETTER_PROSE[2:5] + NEWSLETTER_FACTS[2:] + NEWSLETTER_PROSE[5:]
    strategy = Extractive(ExtractiveSettings(model_path=gguf, target_ratio=2.5, window_tokens=256, n_threads=2))
    ctx = StepContext(pool="small", client=None, cost=Cost(), settings=ConsolidatorConfig())
    try:
        r = await strategy.run_step(0, " ".join(units), ctx)
    finally:
        await strategy.close()
    kept = split_units(r.text)
    assert all(f in kept for f in NEWSLETTER_FACTS), kept
    assert r.tokens_out <= r.tokens_in / 2.5


async def test_rethink_pass_on_a_real_pool(llama_pool):
    client = PoolClient("small", llama_pool.address)
    settings = ConsolidatorConfig(rethink={"max_pass_tokens": 24})
    ctx = StepContext(pool="small", client=client, cost=llama_pool.cost, settings=settings)
    try:
        r = await Rethink(settings.rethink).run_step(0, " ".join(FACTS), ctx)
        qa = await Rethink(settings.rethink).run_step(1, r.text, ctx)
    finally:
        await client.close()
    assert r.text and 0 < r.tokens_out <= 24 and r.tokens_in > 40
    assert r.compute_units == pytest.approx(llama_pool.cost.units(r.tokens_in, r.tokens_out))
    assert qa.text.startswith(r.text) and "Questions and answers:" in qa.text


async def test_service_runs_extractive_then_rethink_on_the_real_model(llama_pool, gguf, redis_url, redis_client, tmp_path):
    policy = tmp_path / "consolidation.yaml"
    policy.write_text("policies:\n- {name: p, pool: small, idle: {min_idle_s: 0}, passes: [{kind: summarise, max_tokens: 24}]}\n")
    cfg = PonderConfig(pools=[llama_pool], consolidator=ConsolidatorConfig(
        poll_s=0.05, extractive={"model_path": gguf, "window_tokens": 128, "n_threads": 2}))
    srv = await start(cfg, redis_url, "127.0.0.1:0", policy_file=str(policy))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}")
    stub = consolidation_pb2_grpc.ConsolidatorStub(channel)
    try:
        text = " ".join(u for pair in zip(FILLER, FACTS) for u in pair)
        await stub.PutContext(pb.PutContextRequest(context_id="doc", text=text))
        job = await stub.Consolidate(pb.ConsolidateRequest(context_id="doc", strategy="extractive+rethink", passes=1))
        assert job.steps_total == 2
        deadline = time.monotonic() + 120
        while job.state not in ("done", "failed") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            job = (await stub.Jobs(pb.JobsRequest(job_id=job.job_id))).jobs[0]
        assert job.state == "done", job.error
        got = await stub.GetContext(pb.GetContextRequest(context_id="doc", include_text=True))
        c = got.consolidated
        assert c.strategy == "extractive+rethink" and c.passes == 2 and c.text
        assert c.model_tokens_in > 0 and c.model_tokens_out > 0 and c.compute_units == pytest.approx(job.compute_units)
    finally:
        await channel.close()
        await srv.stop(0)


async def test_a_focused_query_on_a_real_consolidation_is_answered_by_the_real_model(llama_pool, gguf, redis_url,
                                                                                     redis_client):
    """The router's path on real parts: the consolidator's extractive job on Gemma, the context store
    on redis-server focusing each question, and the llama.cpp pool answering from what was sent."""
    import redis.asyncio as aioredis

    from ponder.router.contexts import ContextStore
    from ponder.v1 import common_pb2, pool_pb2

    settings = ConsolidatorConfig(poll_s=0.05, extractive={"model_path": gguf, "window_tokens": 128, "n_threads": 2},
                                  focus={"min_form_tokens": 0})
    text = " ".join(u for i, fact in enumerate(FACTS) for u in (FILLER[i], fact, FILLER[(i + 1) % 4], FILLER[(i + 2) % 4]))
    client = aioredis.Redis.from_url(redis_url)
    store = ContextStore(client, settings)
    strategy = Extractive(settings.extractive)
    pool = PoolClient("small", llama_pool.address)
    try:
        await store.put("doc", text)
        await store.repo.enqueue("doc", "extractive", 1, "small", 1)
        job = (await store.repo.jobs_of("doc"))[0]
        step = await strategy.run_step(0, text, StepContext(pool="small", client=None, cost=Cost(), settings=settings))
        assert await store.repo.finish(job, {"text": step.text, "compute_units": step.compute_units}, 3600) == 1
        right = 0
        for fact in FACTS:
            words = fact.split()
            place, goods, answer = words[3], " ".join(words[-3:]).rstrip("."), words[5]
            q = f"How many {goods} does the {words[1]} in {place} hold?"
            ctx = await store.resolve("doc", query=q)
            assert ctx.consolidated and ctx.focused and fact in ctx.text and ctx.sent_tokens < ctx.form_tokens
            resp = await pool.generate(pool_pb2.PoolGenerateRequest(
                prompt=f"Notes: {ctx.text}\nQuestion: {q}\nAnswer:",
                sampling=common_pb2.SamplingParams(max_tokens=8, temperature=0.0)), 60)
            right += answer in resp.text
        # The focused notes hold the one fact asked about; the 270M model copies its number.
        assert right >= len(FACTS) - 1, right
    finally:
        await pool.close()
        await strategy.close()
        await client.aclose()
