"""The ``cascade`` strategy through the router over real gRPC: standalone sim pools (latency-model
test doubles) and a real redis-server. Sim answers are all alike, so agreement keeps the cheap answer;
a scorer that doubts every answer escalates."""
from __future__ import annotations

import numpy as np
import pytest

from ponder.common.grpcutil import stop_server
from ponder.common.telemetry import Tracing
from ponder.pools.servicer import SERVICE as POOL_SERVICE, start_standalone
from ponder.router.confidence import FEATURE_NAMES, ConfidenceScorer
from ponder.router.server import start_router
from ponder.v1 import common_pb2, router_pb2, router_pb2_grpc

from conftest import sim_config

pytestmark = pytest.mark.integration


async def answer(redis_url, cascade: dict, prompt: str = "What is 3 + 4?"):
    import grpc

    cfg = sim_config(strategies=["single", "cascade"], cascade=cascade)
    tracing = Tracing("ponder-test")
    pools = []
    for p in cfg.pools:
        server, port, engine, health = await start_standalone(p, "127.0.0.1:0", tracing)
        pools.append((server, engine, health))
        p.address = f"127.0.0.1:{port}"
    handle = await start_router(cfg, None, redis_url, tracing, address="127.0.0.1:0")
    channel = grpc.aio.insecure_channel(handle.address)
    try:
        stub = router_pb2_grpc.RouterStub(channel)
        req = router_pb2.GenerateRequest(prompt=prompt, hints=common_pb2.Hints(strategy="cascade"))
        return cfg, await stub.Generate(req, timeout=10)
    finally:
        await channel.close()
        await handle.stop(0)
        for server, engine, health in pools:
            await stop_server(server, health, [POOL_SERVICE], 0)
            await engine.close()


async def test_agreeing_sim_samples_keep_the_small_answer(redis_url):
    cfg, resp = await answer(redis_url, {"agreement_samples": 2})
    assert resp.plan.strategy == "cascade" and resp.plan.pool == "small"
    assert "kept the small answer" in resp.plan.reason
    assert resp.usage.samples == 3 and resp.usage.output_tokens == 3 * 8
    assert resp.usage.compute_units == pytest.approx(cfg.pool("small").cost.units(resp.usage.prompt_tokens, 24))


async def test_a_doubting_scorer_escalates_and_both_calls_are_paid(redis_url, tmp_path):
    k = len(FEATURE_NAMES)
    path = ConfidenceScorer(np.zeros(k), np.ones(k), np.zeros(k), -3.0).save(tmp_path / "scorer.json")
    cfg, resp = await answer(redis_url, {"agreement_samples": 0, "scorer_path": str(path)})
    assert "escalated to reasoning" in resp.plan.reason
    assert resp.usage.samples == 2 and resp.usage.output_tokens == 16
    per_sample = resp.usage.prompt_tokens // 2
    small, dear = cfg.pool("small").cost, cfg.pool("reasoning").cost
    assert resp.usage.compute_units == pytest.approx(small.units(per_sample, 8) + dear.units(per_sample, 8))
