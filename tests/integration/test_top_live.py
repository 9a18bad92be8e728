"""``ponder top --json`` against a real router (sim pools, test doubles) and its real /metrics endpoint."""
from __future__ import annotations

import asyncio
import json

import pytest

from ponder.v1 import router_pb2

pytestmark = pytest.mark.integration


async def test_top_json_reports_pools_and_rates(sim_stack, capsys):
    from ponder import cli

    server, _ = sim_stack.router.servicer.path.metrics.serve(0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        top = asyncio.create_task(asyncio.to_thread(
            cli.main, ["top", "--json", "--count", "2", "--interval", "1.0", "--metrics", url,
                       "--address", sim_stack.router.address]))
        while not top.done():  # traffic all along, so both frames' scrapes see it move
            await sim_stack.stub.Generate(router_pb2.GenerateRequest(prompt="hi"), timeout=10)
            await asyncio.sleep(0.05)
        assert await top == 0
    finally:
        server.shutdown()
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["name"] for p in first["pools"]] == ["small", "reasoning"] and first["requests_per_s"] is None
    assert second["requests_per_s"] > 0 and second["error_ratio"] == 0.0 and second["plan_mix"] == {"small/single": 1.0}
