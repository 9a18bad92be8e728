"""TLS and mutual TLS on the router, voting and consolidator servers and the HTTP front, with real
certificates made in the test: a TLS client connects, a plaintext one fails, mTLS refuses a client
without a certificate, and swapped certificate files are used by new connections without a restart."""
from __future__ import annotations

import os
import shutil
import ssl

import grpc
import httpx
import pytest

from ponder.client.config import ClientConfig
from ponder.common.errors import ConfigError
from ponder.common.grpcutil import stop_server
from ponder.common.telemetry import Tracing
from ponder.pools.servicer import SERVICE as POOL_SERVICE, start_standalone
from ponder.router.server import start_router
from ponder.v1 import router_pb2, router_pb2_grpc

from certs import CA
from conftest import sim_config

pytestmark = pytest.mark.integration


@pytest.fixture
async def pools():
    cfg = sim_config()
    running = []
    for p in cfg.pools:
        server, port, engine, health = await start_standalone(p, "127.0.0.1:0", Tracing("t"))
        running.append((server, engine, health))
        p.address = f"127.0.0.1:{port}"
    yield cfg
    for server, engine, health in running:
        await stop_server(server, health, [POOL_SERVICE], 0)
        await engine.close()


def tls_config(cfg, ca: CA, server, client_auth: str = "none"):
    cfg = cfg.model_copy(deep=True)
    cfg.tls = cfg.tls.model_validate({"cert_file": str(server.cert), "key_file": str(server.key), "ca_file": str(ca.pem),
                                      "client_auth": client_auth, "reload_check_s": 0})
    return cfg


async def status_code(cc: ClientConfig) -> grpc.StatusCode:
    async with cc.channel() as ch:
        try:
            await router_pb2_grpc.RouterStub(ch).Status(router_pb2.StatusRequest(), timeout=5)
        except grpc.aio.AioRpcError as e:
            return e.code()
    return grpc.StatusCode.OK


async def test_tls_client_connects_plaintext_fails(pools, tmp_path):
    ca = CA(tmp_path / "ca")
    server = ca.issue("router", server=True)
    handle = await start_router(tls_config(pools, ca, server), None, None, Tracing("t"), address="127.0.0.1:0")
    try:
        assert await status_code(ClientConfig.resolve(handle.address, ca_file=str(ca.pem), env={})) == grpc.StatusCode.OK
        assert await status_code(ClientConfig.resolve(handle.address, env={})) == grpc.StatusCode.UNAVAILABLE
        # A client trusting another CA does not accept the server.
        other = CA(tmp_path / "other", "other-ca")
        assert await status_code(ClientConfig.resolve(handle.address, ca_file=str(other.pem), env={})) \
            == grpc.StatusCode.UNAVAILABLE
    finally:
        await handle.stop(0)


async def test_mtls_required_refuses_a_client_without_certificate(pools, tmp_path):
    ca = CA(tmp_path / "ca")
    server, client = ca.issue("router", server=True), ca.issue("alice", server=False)
    stranger = CA(tmp_path / "stranger", "stranger-ca").issue("mallory", server=False)
    handle = await start_router(tls_config(pools, ca, server, "require"), None, None, Tracing("t"), address="127.0.0.1:0")
    try:
        base = dict(ca_file=str(ca.pem), env={})
        assert await status_code(ClientConfig.resolve(handle.address, **base)) == grpc.StatusCode.UNAVAILABLE
        assert await status_code(ClientConfig.resolve(handle.address, cert_file=str(stranger.cert),
                                                      key_file=str(stranger.key), **base)) == grpc.StatusCode.UNAVAILABLE
        # The environment carries the client certificate too (how the CLI gets it).
        env = {"PONDER_TLS_CA": str(ca.pem), "PONDER_TLS_CERT": str(client.cert), "PONDER_TLS_KEY": str(client.key)}
        assert await status_code(ClientConfig.resolve(handle.address, env=env)) == grpc.StatusCode.OK
    finally:
        await handle.stop(0)


def live_certificate(pools, tmp_path):
    """Two CAs, a live cert/key pair issued by the old one, and a config serving from that pair
    (checked for changes on every new connection): (old_ca, new_ca, live folder, config)."""
    old_ca, new_ca = CA(tmp_path / "old", "old-ca"), CA(tmp_path / "new", "new-ca")
    live = tmp_path / "live"
    live.mkdir()
    first = old_ca.issue("router", server=True)
    shutil.copy(first.cert, live / "tls.crt")
    shutil.copy(first.key, live / "tls.key")
    cfg = pools.model_copy(deep=True)
    cfg.tls = cfg.tls.model_validate({"cert_file": str(live / "tls.crt"), "key_file": str(live / "tls.key"),
                                      "reload_check_s": 0})
    return old_ca, new_ca, live, cfg


async def test_swapped_certificate_is_used_by_new_connections_without_restart(pools, tmp_path):
    old_ca, new_ca, live, cfg = live_certificate(pools, tmp_path)
    old_key = (live / "tls.key").read_bytes()
    handle = await start_router(cfg, None, None, Tracing("t"), address="127.0.0.1:0")
    try:
        trusts_old = ClientConfig.resolve(handle.address, ca_file=str(old_ca.pem), env={})
        trusts_new = ClientConfig.resolve(handle.address, ca_file=str(new_ca.pem), env={})
        held = trusts_old.channel()  # an open connection made before the swap keeps working
        stub = router_pb2_grpc.RouterStub(held)
        await stub.Status(router_pb2.StatusRequest(), timeout=5)
        assert await status_code(trusts_new) == grpc.StatusCode.UNAVAILABLE
        # Swap as Kubernetes does: new files renamed into place.
        second = new_ca.issue("router", server=True, sub="router-2")
        for src, dst in ((second.key, live / "tls.key"), (second.cert, live / "tls.crt")):
            shutil.copy(src, str(dst) + ".tmp")
            os.replace(str(dst) + ".tmp", dst)
        assert await status_code(trusts_new) == grpc.StatusCode.OK
        assert await status_code(trusts_old) == grpc.StatusCode.UNAVAILABLE
        await stub.Status(router_pb2.StatusRequest(), timeout=5)
        await held.close()
        assert handle.tls.reloads == 1
        # A broken pair is refused and the last good certificate keeps serving.
        (live / "tls.key").write_bytes(old_key)
        assert await status_code(trusts_new) == grpc.StatusCode.OK
    finally:
        await handle.stop(0)


async def test_http_front_serves_https_and_requires_client_certificates(pools, tmp_path):
    ca = CA(tmp_path / "ca")
    server, client = ca.issue("router", server=True), ca.issue("alice", server=False)
    handle = await start_router(tls_config(pools, ca, server, "require"), None, None, Tracing("t"),
                                address="127.0.0.1:0", http_address="127.0.0.1:0")
    try:
        assert handle.http_url.startswith("https://127.0.0.1:")
        with_cert = ssl.create_default_context(cafile=str(ca.pem))
        with_cert.load_cert_chain(client.cert, client.key)
        async with httpx.AsyncClient(verify=with_cert) as http:
            r = await http.get(f"{handle.http_url}/models", timeout=5)
            assert r.status_code == 200 and r.json()["data"]
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ca.pem))) as http:
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                await http.get(f"{handle.http_url}/models", timeout=5)
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.HTTPError):
                await http.get(handle.http_url.replace("https", "http") + "/models", timeout=5)
    finally:
        await handle.stop(0)


async def test_unreadable_or_mismatched_certificate_names_the_field(pools, tmp_path):
    ca = CA(tmp_path / "ca")
    a, b = ca.issue("a", server=True), ca.issue("b", server=True)
    cfg = pools.model_copy(deep=True)
    cfg.tls = cfg.tls.model_validate({"cert_file": str(a.cert), "key_file": str(b.key)})
    with pytest.raises(ConfigError) as e:
        await start_router(cfg, None, None, Tracing("t"), address="127.0.0.1:0")
    assert "tls.cert_file" in str(e.value)
    cfg.tls = cfg.tls.model_validate({"cert_file": str(tmp_path / "none.crt"), "key_file": str(a.key)})
    with pytest.raises(ConfigError) as e:
        await start_router(cfg, None, None, Tracing("t"), address="127.0.0.1:0")
    assert "tls.cert_file" in str(e.value) and "none.crt" in str(e.value)


async def test_cli_status_over_mtls_from_the_environment_shows_breakers(pools, tmp_path, monkeypatch, capsys):
    import asyncio
    import json

    from ponder import cli

    ca = CA(tmp_path / "ca")
    server, client = ca.issue("router", server=True), ca.issue("alice", server=False)
    handle = await start_router(tls_config(pools, ca, server, "require"), None, None, Tracing("t"), address="127.0.0.1:0")
    try:
        monkeypatch.setenv("PONDER_TLS_CA", str(ca.pem))
        assert await asyncio.to_thread(cli.main, ["status", "--json", "--address", handle.address]) == 1
        capsys.readouterr()
        monkeypatch.setenv("PONDER_TLS_CERT", str(client.cert))
        monkeypatch.setenv("PONDER_TLS_KEY", str(client.key))
        assert await asyncio.to_thread(cli.main, ["status", "--json", "--address", handle.address]) == 0
        out = json.loads(capsys.readouterr().out)
        assert [(p["name"], p["breaker"]["state"], p["breaker"]["consecutive_failures"]) for p in out["pools"]] \
            == [("small", "closed", 0), ("reasoning", "closed", 0)]
    finally:
        await handle.stop(0)


async def test_client_library_takes_a_client_certificate(pools, tmp_path):
    from ponder.client import AsyncClient

    ca = CA(tmp_path / "ca")
    server, client = ca.issue("router", server=True), ca.issue("alice", server=False)
    handle = await start_router(tls_config(pools, ca, server, "require"), None, None, Tracing("t"), address="127.0.0.1:0")
    try:
        c = AsyncClient(handle.address, ca_file=str(ca.pem), cert_file=str(client.cert), key_file=str(client.key),
                        timeout_s=10)
        try:
            answer = await c.generate("hello")
            assert answer.text
        finally:
            await c.close()
    finally:
        await handle.stop(0)


async def test_http_front_picks_up_a_swapped_certificate(pools, tmp_path):
    old_ca, new_ca, live, cfg = live_certificate(pools, tmp_path)
    handle = await start_router(cfg, None, None, Tracing("t"), address="127.0.0.1:0", http_address="127.0.0.1:0")
    try:
        async def models(ca: CA) -> int:
            async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ca.pem))) as http:
                return (await http.get(f"{handle.http_url}/models", timeout=5)).status_code

        assert await models(old_ca) == 200
        with pytest.raises(httpx.ConnectError):
            await models(new_ca)
        second = new_ca.issue("router", server=True, sub="router-2")
        for src, dst in ((second.key, live / "tls.key"), (second.cert, live / "tls.crt")):
            shutil.copy(src, str(dst) + ".tmp")
            os.replace(str(dst) + ".tmp", dst)
        import asyncio

        await asyncio.sleep(0.6)
        assert await models(new_ca) == 200
        with pytest.raises(httpx.ConnectError):
            await models(old_ca)
    finally:
        await handle.stop(0)
