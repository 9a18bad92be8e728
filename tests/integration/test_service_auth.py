"""API keys and mutual TLS on the voting and consolidator servers, and the router's own calls to
the voting service carrying its service key and client certificate (real gRPC, real redis-server)."""
from __future__ import annotations

import grpc
import pytest
import redis.asyncio as aioredis

from ponder.client.config import ClientConfig
from ponder.common.auth import KeyStore, bearer_interceptors
from ponder.common.errors import ConfigError
from ponder.common.telemetry import Tracing
from ponder.consolidation.servicer import start as start_consolidator
from ponder.router.server import start_router
from ponder.v1 import consolidation_pb2 as cpb, consolidation_pb2_grpc, router_pb2, router_pb2_grpc, voting_pb2, voting_pb2_grpc
from ponder.voting.servicer import start_from_config

from certs import CA
from test_tls import pools  # noqa: F401 - fixture

pytestmark = pytest.mark.integration


async def code_of(coro) -> grpc.StatusCode:
    try:
        await coro
    except grpc.aio.AioRpcError as e:
        return e.code()
    return grpc.StatusCode.OK


async def first(stream):
    async for ev in stream:
        return ev


def solve() -> voting_pb2.SolveRequest:
    req = voting_pb2.SolveRequest(task="hanoi", hanoi=voting_pb2.HanoiParams(disks=2), sampler="sim:0.99", seed=1)
    req.voting.k = 1
    return req


@pytest.fixture
async def keys(redis_url):
    r = aioredis.Redis.from_url(redis_url)
    await r.delete("ponder:keys")
    store = KeyStore(r)
    yield store
    await r.delete("ponder:keys")
    await r.aclose()


async def test_voting_and_router_to_voting_with_keys_and_mtls(pools, keys, redis_url, tmp_path, monkeypatch):  # noqa: F811
    ca = CA(tmp_path / "ca")
    server, client = ca.issue("ponder", server=True), ca.issue("alice", server=False)
    cfg = pools.model_copy(deep=True)
    cfg.auth.enabled, cfg.auth.cache_s = True, 0.0
    cfg.routing.budget.max_cu_per_request = 1e6
    cfg.redis.outcome_spill_path = str(tmp_path / "spill")
    cfg.tls = cfg.tls.model_validate({"cert_file": str(server.cert), "key_file": str(server.key),
                                      "ca_file": str(ca.pem), "client_auth": "require", "reload_check_s": 0})
    service_key, _ = await keys.create("ponder-router", ["generate"])
    feedback_only, _ = await keys.create("acme", ["feedback"])
    user_key, _ = await keys.create("acme", ["generate"])
    (tmp_path / "service-key").write_text(service_key + "\n")
    cfg.auth.service_key_file = str(tmp_path / "service-key")

    voting = await start_from_config(cfg, "127.0.0.1:0", Tracing("t"), redis_url=redis_url)
    router = await start_router(cfg, None, redis_url, Tracing("t"), address="127.0.0.1:0",
                                voting_address=f"127.0.0.1:{voting.port}")
    try:
        mtls = ClientConfig.resolve(f"127.0.0.1:{voting.port}", ca_file=str(ca.pem), cert_file=str(client.cert),
                                    key_file=str(client.key), env={})
        for key, want in ((None, grpc.StatusCode.UNAUTHENTICATED), (feedback_only, grpc.StatusCode.PERMISSION_DENIED),
                          (user_key, grpc.StatusCode.OK)):
            async with mtls.channel(interceptors=bearer_interceptors(key)) as ch:
                got = await code_of(first(voting_pb2_grpc.VotingStub(ch).Solve(solve(), timeout=10)))
                assert got == want, key
        # Without a client certificate the handshake fails, key or not.
        tls_only = ClientConfig.resolve(f"127.0.0.1:{voting.port}", ca_file=str(ca.pem), env={})
        async with tls_only.channel(interceptors=bearer_interceptors(user_key)) as ch:
            got = await code_of(first(voting_pb2_grpc.VotingStub(ch).Solve(solve(), timeout=10)))
            assert got == grpc.StatusCode.UNAVAILABLE
        # The router's calls to voting carry its service key and certificate: a task is solved end to end.
        to_router = ClientConfig.resolve(router.address, ca_file=str(ca.pem), cert_file=str(client.cert),
                                         key_file=str(client.key), env={})
        async with to_router.channel(interceptors=bearer_interceptors(user_key)) as ch:
            resp = await router_pb2_grpc.RouterStub(ch).Generate(router_pb2.GenerateRequest(task=solve()), timeout=30)
            assert resp.task_summary.steps_completed == 3 and resp.task_summary.success
    finally:
        await router.stop(0)
        await voting.stop(0)


async def test_router_without_the_service_key_is_refused_by_voting(pools, keys, redis_url, tmp_path, monkeypatch):  # noqa: F811
    cfg = pools.model_copy(deep=True)
    cfg.auth.enabled, cfg.auth.cache_s = True, 0.0
    cfg.routing.budget.max_cu_per_request = 1e6
    cfg.redis.outcome_spill_path = str(tmp_path / "spill")
    user_key, _ = await keys.create("acme", ["generate"])
    monkeypatch.delenv("PONDER_SERVICE_KEY", raising=False)
    voting = await start_from_config(cfg, "127.0.0.1:0", Tracing("t"), redis_url=redis_url)
    router = await start_router(cfg, None, redis_url, Tracing("t"), address="127.0.0.1:0",
                                voting_address=f"127.0.0.1:{voting.port}")
    try:
        async with grpc.aio.insecure_channel(router.address, interceptors=bearer_interceptors(user_key)) as ch:
            stub = router_pb2_grpc.RouterStub(ch)
            assert await code_of(stub.Generate(router_pb2.GenerateRequest(task=solve()), timeout=30)) \
                != grpc.StatusCode.OK
        # The service key from the environment is used when no file is configured.
        monkeypatch.setenv("PONDER_SERVICE_KEY", user_key)
        router2 = await start_router(cfg, None, redis_url, Tracing("t"), address="127.0.0.1:0",
                                     voting_address=f"127.0.0.1:{voting.port}")
        try:
            async with grpc.aio.insecure_channel(router2.address, interceptors=bearer_interceptors(user_key)) as ch:
                resp = await router_pb2_grpc.RouterStub(ch).Generate(router_pb2.GenerateRequest(task=solve()), timeout=30)
                assert resp.task_summary.success
        finally:
            await router2.stop(0)
    finally:
        await router.stop(0)
        await voting.stop(0)


async def test_consolidator_checks_keys_and_rights(pools, keys, redis_url, tmp_path):  # noqa: F811
    cfg = pools.model_copy(deep=True)
    cfg.auth.enabled, cfg.auth.cache_s = True, 0.0
    cfg.consolidator.workers = 0
    generate_key, _ = await keys.create("acme", ["generate"])
    admin_key, _ = await keys.create("ops", ["admin"])
    srv = await start_consolidator(cfg, redis_url, "127.0.0.1:0")
    try:
        addr = f"127.0.0.1:{srv.port}"
        for key, rpc, want in (
            (None, "Jobs", grpc.StatusCode.UNAUTHENTICATED),
            (generate_key, "Jobs", grpc.StatusCode.INVALID_ARGUMENT),  # admitted; the handler wants an id
            (generate_key, "Status", grpc.StatusCode.PERMISSION_DENIED),
            (admin_key, "Status", grpc.StatusCode.OK),
        ):
            async with grpc.aio.insecure_channel(addr, interceptors=bearer_interceptors(key)) as ch:
                stub = consolidation_pb2_grpc.ConsolidatorStub(ch)
                req = cpb.JobsRequest() if rpc == "Jobs" else cpb.ConsolidatorStatusRequest()
                assert await code_of(getattr(stub, rpc)(req, timeout=10)) == want, (key, rpc)
    finally:
        await srv.stop(0)


async def test_auth_without_a_key_source_is_a_config_error(pools):  # noqa: F811
    cfg = pools.model_copy(deep=True)
    cfg.auth.enabled = True
    with pytest.raises(ConfigError) as e:
        await start_from_config(cfg, "127.0.0.1:0", Tracing("t"))
    assert "auth.enabled" in str(e.value)
