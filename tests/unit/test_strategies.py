"""Strategies' pure parts: best_of_n's normalisation and vote, the per-sample pool request,
and the sample's duration measured around the pool call."""
from __future__ import annotations


import pytest

from ponder.router.strategies import base
from ponder.router.strategies.best_of_n import normalise, vote
from ponder.router.types import Plan, Request, SampleResult, Sampling
from ponder.v1 import common_pb2, pool_pb2


def sample(text: str) -> SampleResult:
    return SampleResult(
        text=text, thinking="", finish_reason="stop", prompt_tokens=1, output_tokens=1,
        thinking_tokens=0, ttft_ms=1.0, model="m", simulated=False, duration_ms=2.0,
    )


def votes(*texts: str) -> int:
    return vote([sample(t) for t in texts])


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Paris", "paris"),
        ("  Paris.  ", "paris"),
        ('"Paris!"', "paris"),
        ("The  answer\n is\t42 .", "the answer is 42"),
        ("?!", ""),
        ("3.14", "3.14"),
    ],
)
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_vote_majority_wins():
    assert votes("4", "5", "5", "4", "5") == 1


def test_vote_tie_goes_to_lowest_index():
    assert votes("a", "b") == 0
    assert votes("x", "b", "a", "b", "a") == 1
    assert votes("x", "a", "b", "b", "a") == 1


def test_vote_ignores_case_and_punctuation():
    assert votes("Blue", "red", "RED.", " red!") == 1
    assert votes("Paris.", "paris", "London") == 0


def test_vote_single_sample():
    assert votes("only") == 0


def test_registry_has_the_builtin_strategies():
    from ponder.router.strategies import build

    assert set(build()) == {"single", "think", "best_of_n", "softcot", "vote", "cascade"}


def test_pool_request_leaves_unset_sampling_unset():
    req = Request(request_id="r", prompt="hi")
    p = base.pool_request(req, Plan(pool="small", strategy="single"))
    assert p.request_id == "r/0"
    assert p.prompt == "hi"
    assert len(p.messages) == 0
    for field in ("max_tokens", "temperature", "top_p", "top_k", "seed"):
        assert not p.sampling.HasField(field), field
    assert list(p.sampling.stop) == []
    assert p.thinking_budget == 0


def test_pool_request_maps_sampling_and_offsets_seed_per_sample():
    req = Request(
        request_id="r",
        prompt="hi",
        sampling=Sampling(max_tokens=12, temperature=0.5, top_p=0.75, top_k=0, stop=("\n", "END"), seed=100),
    )
    plan = Plan(pool="small", strategy="best_of_n", samples=3)
    reqs = [base.pool_request(req, plan, i) for i in range(3)]
    assert [p.request_id for p in reqs] == ["r/0", "r/1", "r/2"]
    assert [p.sampling.seed for p in reqs] == [100, 101, 102]
    s = reqs[2].sampling
    assert (s.max_tokens, s.temperature, s.top_p, s.top_k, list(s.stop)) == (12, 0.5, 0.75, 0, ["\n", "END"])
    assert s.HasField("top_k")  # 0 is explicit (disabled), not unset


def test_pool_request_thinking_budget_from_plan_and_messages_copied():
    req = Request(request_id="r", prompt="", messages=(("system", "Be brief."), ("user", "2+2?")))
    p = base.pool_request(req, Plan(pool="reasoning", strategy="think", thinking_budget=128))
    assert p.thinking_budget == 128
    assert p.prompt == ""
    assert [(m.role, m.content) for m in p.messages] == [("system", "Be brief."), ("user", "2+2?")]


def test_pool_request_seed_offset_stays_in_uint64():
    req = Request(request_id="r", prompt="hi", sampling=Sampling(seed=2**64 - 1))
    plan = Plan(pool="small", strategy="best_of_n", samples=2)
    seeds = [base.pool_request(req, plan, i).sampling.seed for i in range(2)]
    assert seeds[0] != seeds[1]
    assert all(0 <= s < 2**64 for s in seeds)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class SlowPool:
    """A pool client test double that takes ``delay_s`` of the injected clock, unary or as one delta and the result."""

    def __init__(self, clock: FakeClock, delay_s: float):
        self.clock, self.delay_s = clock, delay_s
        self.result = pool_pb2.PoolGenerateResponse(text="4", output_tokens=1, time_to_first_token_ms=1.0)

    async def generate(self, preq, timeout_s):
        self.clock.now += self.delay_s
        return self.result

    async def stream(self, preq, timeout_s):
        yield pool_pb2.PoolGenerateChunk(delta=common_pb2.TokenDelta(text="4"))
        self.clock.now += self.delay_s
        yield pool_pb2.PoolGenerateChunk(final=self.result)


@pytest.mark.parametrize("stream", [False, True])
async def test_draw_measures_the_samples_duration(stream):
    req, plan = Request(request_id="r", prompt="2+2?"), Plan(pool="small", strategy="single")
    clock = FakeClock()
    items = [x async for x in base.draw(req, plan, SlowPool(clock, 0.05), 1.0, 0, stream, clock=clock)]
    result = items[-1]
    assert isinstance(result, SampleResult) and result.text == "4" and result.ttft_ms == 1.0
    assert result.duration_ms == pytest.approx(50.0)
    assert len(items) == (2 if stream else 1)
