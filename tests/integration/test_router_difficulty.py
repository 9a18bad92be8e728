"""The router serving with a trained difficulty classifier, the budget controller
in the request path, and the classifier hot-reloaded under load."""
from __future__ import annotations

import asyncio
import pathlib

import grpc
import httpx
import pytest
import redis.asyncio as aioredis

from ponder.cli import main as ponder_main
from ponder.common.config import PolicyConfig
from ponder.common.redis_server import free_port
from ponder.common.telemetry import Tracing
from ponder.router.budget import BUDGET_KEY
from ponder.router.server import start_router
from ponder.v1 import router_pb2, router_pb2_grpc

pytestmark = pytest.mark.integration

DATA = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data" / "routellm-mmlu"
WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


def train(out: pathlib.Path, *subjects: str) -> None:
    files = [str(DATA / f"mmlu_{s}.csv") for s in subjects]
    rc = ponder_main(["router", "train", "--outcomes", *files, "--weak", WEAK, "--strong", STRONG, "--out", str(out)])
    assert rc == 0


@pytest.fixture
async def difficulty_router(sim_stack, redis_url, tmp_path):
    if not DATA.is_dir():
        pytest.skip(f"outcome tables not found at {DATA}")
    model = tmp_path / "model"
    train(model, "anatomy", "astronomy", "college_biology")
    cfg = sim_stack.cfg.model_copy(deep=True)
    cfg.routing.policy = PolicyConfig(name="difficulty", params={"model_dir": str(model)})
    cfg.routing.budget.target_cu_per_request = 60.0
    cfg.router.config_poll_s = 0.05
    cfg.router.metrics_port = free_port()
    r = aioredis.Redis.from_url(redis_url)
    await r.delete(BUDGET_KEY)
    handle = await start_router(cfg, None, redis_url, Tracing("t"), address="127.0.0.1:0")
    ch = grpc.aio.insecure_channel(handle.address)
    yield handle, router_pb2_grpc.RouterStub(ch), model, r, cfg
    await ch.close()
    await handle.stop(0)
    await r.aclose()


QUESTIONS = [
    "Which of the following is a bone of the axial skeleton?\nA. femur\nB. sternum\nC. radius\nD. tibia\nAnswer:",
    "What is the approximate age of the universe?\nA. 13.8 billion years\nB. 4.5 billion years\nC. 1 million years\nD. 100 years\nAnswer:",
]


async def test_plans_come_from_the_classifier_and_the_budget(difficulty_router):
    handle, stub, _, r, cfg = difficulty_router
    plan = (await stub.Plan(router_pb2.GenerateRequest(prompt=QUESTIONS[0]), timeout=10)).plan
    assert plan.policy == "difficulty"
    assert len(plan.candidates) > 3
    feasible = [c for c in plan.candidates if c.feasible]
    assert all(0.0 < c.expected_accuracy < 1.0 for c in feasible)
    best = max(feasible, key=lambda c: c.score)
    assert (best.pool, best.strategy, best.samples, best.thinking_budget) == (
        plan.pool, plan.strategy, plan.samples, plan.thinking_budget)
    for i in range(6):
        await stub.Generate(router_pb2.GenerateRequest(prompt=QUESTIONS[i % 2]), timeout=10)
    for _ in range(50):
        state = await r.hgetall(BUDGET_KEY)
        if float(state.get(b"count", 0)) >= 6:
            break
        await asyncio.sleep(0.02)
    assert float(state[b"count"]) == 6 and float(state[b"cost_sum"]) > 0
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{cfg.router.metrics_port}/metrics")).text
    lam = [ln for ln in text.splitlines() if ln.startswith("ponder_router_budget_lambda_per_cu ")]
    assert lam and float(lam[0].split()[1]) > 0


async def test_classifier_hot_reload_drops_no_request(difficulty_router):
    handle, stub, model, _, _ = difficulty_router
    before = handle.servicer.state.policy.classifier
    done, errors = [], []

    async def client(i: int):
        for j in range(40):
            try:
                resp = await stub.Generate(router_pb2.GenerateRequest(prompt=QUESTIONS[(i + j) % 2]), timeout=10)
                done.append(resp.plan.pool)
            except grpc.aio.AioRpcError as e:  # pragma: no cover - the assertion below reports it
                errors.append(e)
            await asyncio.sleep(0.005)

    async def retrain():
        await asyncio.sleep(0.1)
        await asyncio.to_thread(train, model, "high_school_physics", "college_chemistry")

    await asyncio.gather(*(client(i) for i in range(4)), retrain())
    for _ in range(100):
        if handle.servicer.state.policy.classifier is not before:
            break
        await asyncio.sleep(0.05)
    assert not errors and len(done) == 160
    after = handle.servicer.state.policy.classifier
    assert after is not before
    assert any(f.endswith("mmlu_high_school_physics.csv") for f in after.report["files"])
