"""PoolEngine: defaults and limits, the thinking phase, queue limit, stats and cancellation.

Runs on the ``sim`` backend with no delays, and on a scripted backend double
that records every GenParams it receives and whether its stream was closed early.
"""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from ponder.common.config import PoolConfig, SimBackend, Thinking
from ponder.common.errors import InvalidArgument, PoolOverloaded, grpc_status
from ponder.pools.backends import make_backend
from ponder.pools.backends.base import Backend, Delta, Done, GenParams
from ponder.pools.engine import PoolDelta, PoolEngine, PoolRequest, PoolResult


class ScriptedBackendDouble(Backend):
    """Yields scripted token texts per call; optionally holds before finishing or never ends."""

    simulated = False

    def __init__(
        self, script: list[list[str]] | None = None, kind: str = "double", endless: bool = False, max_concurrency: int = 1_000_000
    ):
        self.kind = kind
        self.max_concurrency = max_concurrency
        self.script = script or [["ok"]]
        self.endless = endless
        self.calls: list[GenParams] = []
        self.closed_early: list[bool] = []
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()

    @property
    def model(self) -> str:
        return "scripted-double"

    async def stream(self, params: GenParams):
        self.calls.append(params)
        texts = self.script[min(len(self.calls), len(self.script)) - 1]
        finished = False
        try:
            self.entered.set()
            if self.hold is not None:
                await self.hold.wait()
            n = 0
            while True:
                for t in texts:
                    n += 1
                    yield Delta(t)
                    await asyncio.sleep(0)
                if not self.endless:
                    break
            yield Done(prompt_tokens=len(params.prompt), output_tokens=n, finish_reason="stop")
            finished = True
        finally:
            self.closed_early.append(not finished)


def pool(**kw) -> PoolConfig:
    kw.setdefault("name", "p")
    kw.setdefault("backend", SimBackend(ttft_ms=0, tpot_ms=0, output_tokens=100))
    return PoolConfig(**kw)


def sim_engine(**kw) -> PoolEngine:
    cfg = pool(**kw)
    return PoolEngine(cfg, make_backend(cfg.backend))


async def collect(engine: PoolEngine, req: PoolRequest) -> tuple[list[PoolDelta], PoolResult]:
    deltas, result = [], None
    async with contextlib.aclosing(engine.stream(req)) as items:
        async for item in items:
            if isinstance(item, PoolResult):
                result = item
            else:
                deltas.append(item)
    return deltas, result


async def test_sim_uses_default_max_tokens():
    engine = sim_engine(max_tokens_default=8, max_tokens_limit=32)
    deltas, res = await collect(engine, PoolRequest(prompt="Hello there"))
    assert len(deltas) == 8 and not any(d.thinking for d in deltas)
    assert res.output_tokens == 8 and res.thinking_tokens == 0
    assert res.finish_reason == "length"
    assert res.text.startswith("[simulated]") and res.text == "".join(d.text for d in deltas)
    assert res.simulated is True and res.model.startswith("sim(")
    assert res.prompt_tokens == len("Hello there") // 4
    assert res.ttft_ms >= 0 and res.latency_ms >= res.ttft_ms


async def test_sim_stops_early_when_output_is_short():
    engine = sim_engine(backend=SimBackend(ttft_ms=0, tpot_ms=0, output_tokens=3))
    res = await engine.generate(PoolRequest(prompt="hi", max_tokens=10))
    assert (res.output_tokens, res.finish_reason) == (3, "stop")


@pytest.mark.parametrize("max_tokens", [0, 33])
async def test_max_tokens_out_of_range(max_tokens):
    engine = sim_engine(max_tokens_default=8, max_tokens_limit=32)
    with pytest.raises(InvalidArgument) as ei:
        await engine.generate(PoolRequest(prompt="hi", max_tokens=max_tokens))
    assert ei.value.field == "sampling.max_tokens"
    assert "1..32" in ei.value.problem and "'p'" in ei.value.problem
    assert engine.requests_total == 0


async def test_empty_prompt_and_negative_thinking_budget():
    engine = sim_engine()
    with pytest.raises(InvalidArgument) as ei:
        await engine.generate(PoolRequest(prompt=""))
    assert ei.value.field == "prompt"
    with pytest.raises(InvalidArgument) as ei:
        await engine.generate(PoolRequest(prompt="hi", thinking_budget=-1))
    assert ei.value.field == "thinking_budget"


async def test_sampling_defaults_and_values_reach_the_backend():
    double = ScriptedBackendDouble()
    engine = PoolEngine(pool(), double)
    await engine.generate(PoolRequest(prompt="a", request_id="r/0"))
    await engine.generate(PoolRequest(prompt="b", max_tokens=5, temperature=0.0, top_p=0.5, top_k=0, stop=("x",), seed=9))
    first, second = double.calls
    assert (first.max_tokens, first.temperature, first.top_p, first.top_k, first.seed) == (64, 0.8, 0.95, 40, None)
    assert first.request_id == "r/0"
    assert (second.max_tokens, second.temperature, second.top_p, second.top_k, second.stop, second.seed) == (
        5, 0.0, 0.5, 0, ("x",), 9,
    )


async def test_messages_pass_through_on_a_pool_without_thinking():
    double = ScriptedBackendDouble()
    engine = PoolEngine(pool(), double)
    turns = (("system", "Be brief."), ("user", "Hi"))
    await engine.generate(PoolRequest(prompt="", messages=turns))
    (call,) = double.calls
    assert call.messages == turns
    assert call.prompt == "System: Be brief.\nUser: Hi\nAssistant:"


THINKING = Thinking(budget_tokens=50, prompt_template="Q: {prompt}\nThink:\n", answer_prefix="\nA:", stop=["END"])


async def test_thinking_phase_runs_before_the_answer():
    double = ScriptedBackendDouble([["step one", ", step two"], [" 42"]])
    engine = PoolEngine(pool(thinking=THINKING), double)
    deltas, res = await collect(engine, PoolRequest(prompt="what?", max_tokens=4, stop=("\n",), thinking_budget=7))

    think, answer = double.calls
    assert think.prompt == "Q: what?\nThink:\n"
    assert (think.max_tokens, think.stop) == (7, ("END",))
    assert answer.prompt == "Q: what?\nThink:\n" + "step one, step two" + "\nA:"
    assert (answer.max_tokens, answer.stop) == (4, ("\n",))

    assert [(d.text, d.thinking) for d in deltas] == [("step one", True), (", step two", True), (" 42", False)]
    assert (res.thinking, res.text) == ("step one, step two", " 42")
    assert (res.thinking_tokens, res.output_tokens) == (2, 3)
    assert res.prompt_tokens == len(think.prompt) + len(answer.prompt)
    assert res.finish_reason == "stop"
    assert double.closed_early == [False, False]


async def test_thinking_phase_on_chat_turns_uses_the_flattened_prompt():
    double = ScriptedBackendDouble([["hmm"], ["yes"]])
    engine = PoolEngine(pool(thinking=THINKING), double)
    await engine.generate(PoolRequest(prompt="", messages=(("user", "Is it?"),), thinking_budget=3))
    think, answer = double.calls
    assert think.prompt == "Q: User: Is it?\nAssistant:\nThink:\n"
    assert think.messages == () and answer.messages == ()
    assert answer.prompt.endswith("hmm\nA:")


async def test_zero_budget_skips_the_thinking_phase():
    double = ScriptedBackendDouble([["direct"]])
    engine = PoolEngine(pool(thinking=THINKING), double)
    res = await engine.generate(PoolRequest(prompt="what?", thinking_budget=0))
    (call,) = double.calls
    assert call.prompt == "what?"
    assert (res.text, res.thinking, res.thinking_tokens) == ("direct", "", 0)


async def test_pool_without_thinking_refuses_a_budget_instead_of_dropping_it():
    double = ScriptedBackendDouble([["direct"]])
    engine = PoolEngine(pool(), double)
    with pytest.raises(InvalidArgument) as ei:
        await engine.generate(PoolRequest(prompt="what?", thinking_budget=100))
    assert ei.value.field == "thinking_budget"
    assert double.calls == []
    res = await engine.generate(PoolRequest(prompt="what?", thinking_budget=0))
    assert [c.prompt for c in double.calls] == ["what?"] and res.thinking_tokens == 0


async def test_thinking_on_sim_reports_tokens_apart():
    engine = sim_engine(thinking=THINKING, max_tokens_default=4)
    res = await engine.generate(PoolRequest(prompt="what?", thinking_budget=6))
    assert res.thinking_tokens == 6
    assert res.output_tokens == 10
    assert res.thinking.startswith("[simulated]") and res.text.startswith("[simulated]")


async def test_queue_limit_refuses_with_pool_overloaded():
    # A backend that runs one request at a time makes the engine queue the rest.
    double = ScriptedBackendDouble(max_concurrency=1)
    double.hold = asyncio.Event()
    engine = PoolEngine(pool(max_queued_requests=1), double)

    running = asyncio.create_task(engine.generate(PoolRequest(prompt="a")))
    await asyncio.wait_for(double.entered.wait(), 2)
    waiting = asyncio.create_task(engine.generate(PoolRequest(prompt="b")))
    for _ in range(5):
        await asyncio.sleep(0)
    assert (engine.running, engine.queue_depth) == (1, 1)

    with pytest.raises(PoolOverloaded) as ei:
        await engine.generate(PoolRequest(prompt="c"))
    assert (ei.value.pool, ei.value.queued, ei.value.max_queued) == ("p", 1, 1)
    assert grpc_status(ei.value)[0].name == "RESOURCE_EXHAUSTED"

    double.hold.set()
    first, second = await asyncio.wait_for(asyncio.gather(running, waiting), 2)
    assert first.text == second.text == "ok"
    assert [c.prompt for c in double.calls] == ["a", "b"]
    assert (engine.running, engine.queue_depth, engine.requests_total) == (0, 0, 2)


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_stats_return_to_idle_and_totals_grow():
    clock = ManualClock()
    cfg = pool(max_tokens_default=5)
    engine = PoolEngine(cfg, make_backend(cfg.backend), clock=clock)
    before = engine.stats()
    assert (before["queue_depth"], before["running"], before["requests_total"], before["output_tokens_total"]) == (0, 0, 0, 0)
    assert (before["pool"], before["backend"], before["simulated"]) == ("p", "sim", True)
    await asyncio.gather(*(engine.generate(PoolRequest(prompt="hi")) for _ in range(3)))
    after = engine.stats()
    assert (after["queue_depth"], after["running"]) == (0, 0)
    assert (after["requests_total"], after["output_tokens_total"]) == (3, 15)
    # No time has passed: nothing folded into the rate yet.
    assert after["tokens_per_s"] == 0.0
    # 15 tokens over 2 s is 7.5 tok/s, weighted 2 s / 10 s window = 0.2 -> 1.5.
    clock.now += 2.0
    assert engine.stats()["tokens_per_s"] == pytest.approx(1.5)
    # A full idle window replaces the average with the idle rate.
    clock.now += 10.0
    assert engine.stats()["tokens_per_s"] == 0.0


async def test_engine_admits_as_many_requests_as_the_backend_runs_at_once():
    double = ScriptedBackendDouble(max_concurrency=2)
    double.hold = asyncio.Event()
    engine = PoolEngine(pool(), double)
    tasks = [asyncio.create_task(engine.generate(PoolRequest(prompt=str(i)))) for i in range(3)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert (engine.running, engine.queue_depth) == (2, 1)
    double.hold.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert (engine.running, engine.queue_depth, engine.requests_total) == (0, 0, 3)


async def test_unset_sampling_fields_take_the_shared_defaults():
    from ponder.common.sampling import DEFAULTS

    double = ScriptedBackendDouble()
    engine = PoolEngine(pool(), double)
    await engine.generate(PoolRequest(prompt="a"))
    await engine.generate(PoolRequest(prompt="b", temperature=0.0, top_p=0.5, top_k=0))
    first, second = double.calls
    assert (first.temperature, first.top_p, first.top_k) == (DEFAULTS.temperature, DEFAULTS.top_p, DEFAULTS.top_k)
    assert (second.temperature, second.top_p, second.top_k) == (0.0, 0.5, 0)


async def test_stats_while_a_request_runs():
    double = ScriptedBackendDouble()
    double.hold = asyncio.Event()
    engine = PoolEngine(pool(), double)
    task = asyncio.create_task(engine.generate(PoolRequest(prompt="a")))
    await asyncio.wait_for(double.entered.wait(), 2)
    assert engine.stats()["running"] == 1
    double.hold.set()
    await task
    assert engine.stats()["running"] == 0


async def test_closing_the_stream_early_stops_the_backend():
    double = ScriptedBackendDouble([["tok"]], max_concurrency=1, endless=True)
    engine = PoolEngine(pool(), double)
    got = []
    async with contextlib.aclosing(engine.stream(PoolRequest(prompt="go", max_tokens=1000))) as items:
        async for item in items:
            got.append(item)
            if len(got) == 3:
                break
    assert [d.text for d in got] == ["tok"] * 3
    assert double.closed_early == [True]
    assert (engine.running, engine.queue_depth) == (0, 0)
    # The one-at-a-time gate was released: the next request runs.
    double.endless = False
    res = await asyncio.wait_for(engine.generate(PoolRequest(prompt="again")), 2)
    assert res.text == "tok"
    assert double.closed_early == [True, False]


async def test_cancelling_the_consumer_stops_the_backend():
    double = ScriptedBackendDouble([["tok"]], endless=True)
    engine = PoolEngine(pool(), double)
    task = asyncio.create_task(engine.generate(PoolRequest(prompt="go", max_tokens=1000)))
    await asyncio.wait_for(double.entered.wait(), 2)
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert double.closed_early == [True]
    assert engine.running == 0


async def test_cancel_while_queued_frees_the_queue_slot():
    double = ScriptedBackendDouble(max_concurrency=1)
    double.hold = asyncio.Event()
    engine = PoolEngine(pool(max_queued_requests=1), double)
    running = asyncio.create_task(engine.generate(PoolRequest(prompt="a")))
    await asyncio.wait_for(double.entered.wait(), 2)
    queued = asyncio.create_task(engine.generate(PoolRequest(prompt="b")))
    for _ in range(5):
        await asyncio.sleep(0)
    assert engine.queue_depth == 1
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert engine.queue_depth == 0
    double.hold.set()
    await running
    res = await asyncio.wait_for(engine.generate(PoolRequest(prompt="c")), 2)
    assert res.text == "ok"
    assert [c.prompt for c in double.calls] == ["a", "c"]
