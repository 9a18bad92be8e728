"""Config changes reach a running router without a restart, and its /metrics endpoint."""
from __future__ import annotations

import asyncio

import grpc
import httpx
import pytest
import yaml

from ponder.common.config import PonderConfig, RouterConfig
from ponder.common.redis_server import free_port
from ponder.common.telemetry import Tracing
from ponder.router.server import start_router, watch_config
from ponder.v1 import router_pb2, router_pb2_grpc

pytestmark = pytest.mark.integration


async def test_reload_under_load_drops_no_request(sim_stack):
    stub = sim_stack.stub
    cfg = sim_stack.cfg
    results = []

    async def client():
        for _ in range(30):
            r = await stub.Generate(router_pb2.GenerateRequest(prompt="some prompt of medium length"), timeout=10)
            results.append(r.plan.pool)

    async def reloads():
        for i in range(6):
            threshold = 5 if i % 2 == 0 else 400
            new = cfg.model_copy(deep=True)
            new.routing.policy.params = {"long_prompt_chars": threshold}
            await sim_stack.router.reload(new)
            await asyncio.sleep(0.02)

    await asyncio.gather(*(client() for _ in range(4)), reloads())
    assert len(results) == 120
    assert set(results) <= {"small", "reasoning"}
    final = await stub.Plan(router_pb2.GenerateRequest(prompt="some prompt of medium length"), timeout=10)
    assert final.plan.pool == "small"  # last reload: threshold 400


async def test_bad_config_is_refused_and_the_old_one_kept(sim_stack):
    bad = sim_stack.cfg.model_copy(deep=True)
    bad.routing.policy.params = {"long_prompt_chars": -1}
    from ponder.common.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        await sim_stack.router.reload(bad)
    assert exc.value.problems[0][0] == "routing.policy.params.long_prompt_chars"
    r = await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="still fine"), timeout=10)
    assert r.text


async def test_watched_config_file_is_applied(sim_stack, tmp_path, redis_url):
    cfg = sim_stack.cfg
    path = tmp_path / "ponder.yaml"
    data = cfg.model_dump(mode="json")
    path.write_text(yaml.safe_dump(data))
    mport = free_port()
    live = PonderConfig.model_validate({**data, "router": RouterConfig(port=0, metrics_port=mport).model_dump()})
    handle = await start_router(live, None, redis_url, Tracing("t"), address="127.0.0.1:0")
    watcher = asyncio.create_task(watch_config(str(path), handle, poll_s=0.05))
    try:
        async with grpc.aio.insecure_channel(handle.address) as ch:
            stub = router_pb2_grpc.RouterStub(ch)
            before = await stub.Plan(router_pb2.GenerateRequest(prompt="hello there"), timeout=5)
            assert before.plan.pool == "small"
            path.write_text("pools: [{name: x, backend: {kind: nope}}]")  # invalid: ignored
            await asyncio.sleep(0.2)
            assert (await stub.Plan(router_pb2.GenerateRequest(prompt="hello there"), timeout=5)).plan.pool == "small"
            data["routing"]["policy"]["params"] = {"long_prompt_chars": 3}
            path.write_text(yaml.safe_dump(data))
            for _ in range(50):
                after = await stub.Plan(router_pb2.GenerateRequest(prompt="hello there"), timeout=5)
                if after.plan.pool == "reasoning":
                    break
                await asyncio.sleep(0.05)
            assert after.plan.pool == "reasoning"
            await stub.Generate(router_pb2.GenerateRequest(prompt="hello there"), timeout=5)
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{mport}/metrics")).text
        line = [ln for ln in text.splitlines()
                if ln.startswith('ponder_router_planned_compute_units_per_second{pool="reasoning"')][0]
        assert float(line.split()[-1]) > 0
        assert 'ponder_router_requests_total{code="OK",pool="reasoning",strategy="think"} 1.0' in text
    finally:
        watcher.cancel()
        await handle.stop(0)
