"""API keys and tenants over real gRPC (sim pools, real redis-server): UNAUTHENTICATED without a
valid key, PERMISSION_DENIED without the right, the tenant in the outcome record, revocation,
and `ponder keys` as a real process."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ponder.common.auth import KeyStore, bearer_interceptors, digest, split_key
from ponder.common.grpcutil import stop_server
from ponder.common.telemetry import Tracing
from ponder.pools.servicer import SERVICE as POOL_SERVICE, start_standalone
from ponder.router.server import start_router
from ponder.v1 import router_pb2, router_pb2_grpc

from conftest import sim_config

pytestmark = pytest.mark.integration
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
async def secured(redis_url, tmp_path):
    r = aioredis.Redis.from_url(redis_url)
    await r.flushdb()
    cfg = sim_config()
    cfg.auth.enabled, cfg.auth.cache_s = True, 0.0
    cfg.redis.outcome_spill_path = str(tmp_path / "spill")
    tracing = Tracing("test")
    pools = []
    for p in cfg.pools:
        server, port, engine, health = await start_standalone(p, "127.0.0.1:0", tracing)
        pools.append((server, engine, health))
        p.address = f"127.0.0.1:{port}"
    handle = await start_router(cfg, None, redis_url, tracing, address="127.0.0.1:0")
    yield handle, KeyStore(r), r
    await handle.stop(0)
    for server, engine, health in pools:
        await stop_server(server, health, [POOL_SERVICE], 0)
        await engine.close()
    await r.aclose()


def stub(address: str, key: str | None):
    ch = grpc.aio.insecure_channel(address, interceptors=bearer_interceptors(key) or None)
    return ch, router_pb2_grpc.RouterStub(ch)


async def code_of(coro) -> grpc.StatusCode:
    try:
        await coro
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def test_keys_tenants_rights_and_revocation(secured):
    handle, store, r = secured
    key, rec = await store.create("acme", ["generate"])
    req = router_pb2.GenerateRequest(prompt="hi", request_id="auth-1")
    for k in (None, "pk_000000000000_" + "A" * 43, key[:-1] + ("B" if key[-1] != "B" else "C"), "not-a-key"):
        ch, s = stub(handle.address, k)
        async with ch:
            assert await code_of(s.Generate(req, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED, k
    ch, s = stub(handle.address, key)
    async with ch:
        resp = await s.Generate(req, timeout=5)
        assert resp.text
        assert await code_of(s.Feedback(router_pb2.FeedbackRequest(request_id="auth-1", correct=True), timeout=5)) \
            == grpc.StatusCode.PERMISSION_DENIED
        assert await code_of(s.Status(router_pb2.StatusRequest(), timeout=5)) == grpc.StatusCode.PERMISSION_DENIED
        # Health stays open for probes.
        h = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert h.status == health_pb2.HealthCheckResponse.SERVING
        await handle.servicer.outcomes.close()
        (_, fields), = await r.xrange(handle.servicer.state.cfg.redis.outcome_stream)
        assert fields[b"tenant"] == b"acme" and fields[b"request_id"] == b"auth-1"
        # Stored hashed: the key is nowhere in Redis.
        stored = json.dumps({k.decode(): v.decode() for k, v in (await r.hgetall("ponder:keys")).items()})
        assert key not in stored and digest(split_key(key)[1]) in stored
        await store.revoke(rec["key_id"])
        assert await code_of(s.Generate(req, timeout=5)) == grpc.StatusCode.UNAUTHENTICATED


def test_keys_cli_shows_the_key_once(redis_url):
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'services'}{os.pathsep}{ROOT / 'operators'}", "REDIS_URL": redis_url}

    def ponder(*a):
        return subprocess.run([sys.executable, "-m", "ponder.cli", "keys", *a], env=env, capture_output=True,
                              text=True, timeout=60, check=True)

    created = ponder("create", "team-a", "--rights", "generate,feedback", "--json")
    out = json.loads(created.stdout)
    assert out["key"].startswith(f"pk_{out['key_id']}_") and out["rights"] == ["feedback", "generate"]
    listed = ponder("list", "--json").stdout
    assert out["key_id"] in listed and out["key"] not in listed and "sha256" not in listed
    ponder("revoke", out["key_id"])
    assert out["key_id"] not in ponder("list", "--json").stdout
    bad = subprocess.run([sys.executable, "-m", "ponder.cli", "keys", "create", "bad tenant"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "tenant" in bad.stderr


async def test_over_quota_is_resource_exhausted_with_retry_pushback(sim_stack):
    cfg = sim_stack.cfg.model_copy(deep=True)
    cfg.routing.quotas.default.cu_per_minute = 0.001
    await sim_stack.router.reload(cfg)
    call = sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="hi"), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await call
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "cu_per_minute" in ei.value.details()
    pushback = dict(ei.value.trailing_metadata())["grpc-retry-pushback-ms"]
    assert 0 < int(pushback) <= 60_000
