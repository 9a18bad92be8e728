"""The Node examples in examples/node, run against a real router (sim pools, test doubles) when node is installed."""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import shutil
import subprocess

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")]
EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples" / "node"


async def node(script: str, env: dict) -> dict:
    out = await asyncio.to_thread(subprocess.run, ["node", str(EXAMPLES / script), "The capital of France is"],
                                  capture_output=True, text=True, timeout=60, env={**os.environ, **env}, cwd=EXAMPLES)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


async def test_node_fetch_against_the_openai_api(sim_stack):
    from ponder.router.openai_http.serve import start_http

    front = await start_http(lambda: sim_stack.router.servicer.path, "127.0.0.1", 0)
    try:
        got = await node("ask_openai.mjs", {"PONDER_HTTP_URL": front.url})
    finally:
        await front.stop(0)
    assert got["text"].startswith("[simulated]") and got["pool"] == "small" and got["plan"]["pool"] == "small"
    assert got["usage"]["completion_tokens"] == 8


async def test_node_grpc_client_from_the_protos(sim_stack):
    # @grpc/grpc-js comes from `npm install` in examples/node (or NODE_PATH); never fetched by the test.
    probe = subprocess.run(["node", "-e", "require.resolve('@grpc/grpc-js'); require.resolve('@grpc/proto-loader')"],
                           cwd=EXAMPLES, capture_output=True)
    if probe.returncode != 0:
        pytest.skip("@grpc/grpc-js not installed (cd examples/node && npm install)")
    got = await node("ask_grpc.js", {"PONDER_ADDRESS": sim_stack.router.address})
    assert got["text"].startswith("[simulated]") and got["plan"]["pool"] == "small"
    assert got["usage"]["output_tokens"] == 8
