"""First-to-ahead-by-k: the rule, red flags, batching and the sample cap."""
from __future__ import annotations

import pytest

from ponder.common.errors import InvalidArgument
from ponder.voting.errors import SampleCapReached
from ponder.voting.rule import RedFlag, VoteCounter, vote_step, vote_sync


def scripted(outcomes):
    """A synchronous draw that hands out a fixed sequence and records batch sizes."""
    it = iter(outcomes)
    sizes = []

    def draw(n):
        sizes.append(n)
        return [next(it) for _ in range(n)]

    return draw, sizes


def test_single_candidate_wins_at_k():
    c = VoteCounter(3)
    assert not c.add("A") and not c.add("A")
    assert c.add("A") and c.winner == "A"


def test_tie_does_not_decide_until_lead_reaches_k():
    c = VoteCounter(2)
    for o in ["A", "B", "A", "B"]:
        assert not c.add(o)
    assert c.lead() == 0 and c.needed() == 2
    assert not c.add("A")
    assert c.add("A") and c.winner == "A"
    assert c.votes == {"A": 4, "B": 2}


def test_lead_is_over_the_strongest_other_candidate():
    c = VoteCounter(2)
    for o in ["A", "B", "C", "A", "B"]:
        assert not c.add(o)
    # A: 2, B: 2, C: 1 -> nobody leads
    assert c.winner is None and c.needed() == 2
    assert not c.add("A")  # A 3 vs B 2: lead 1
    assert c.add("A")  # A 4 vs B 2


def test_red_flags_are_counted_but_never_vote():
    draw, _ = scripted([RedFlag("too_long"), "A", RedFlag("unparseable"), RedFlag("unparseable"), "A"])
    d = vote_sync(draw, 2, 10)
    assert d.winner == "A" and d.votes == {"A": 2}
    assert d.red_flags == 3 and d.samples == 5
    assert d.red_flag_reasons == {"too_long": 1, "unparseable": 2}


def test_batches_are_the_fewest_samples_that_could_decide():
    draw, sizes = scripted(["A", "B", "A", "A", "B", "A", "A"])
    d = vote_sync(draw, 3, 50)
    # first k=3 in parallel (A B A: lead 1), then 2 (A B: lead 1), then 2 (A A: lead 3)
    assert sizes == [3, 2, 2]
    assert d.winner == "A" and d.samples == 7 and d.votes == {"A": 5, "B": 2}


def test_batched_draw_matches_one_at_a_time():
    seq = ["A", "B", "B", "A", "C", "A", "A", "B", "A", "A", "A", "A"]
    draw, _ = scripted(seq)
    batched = vote_sync(draw, 3, 100)
    c = VoteCounter(3)
    n = next(i for i, o in enumerate(seq) if c.add(o)) + 1
    assert batched.samples == n and batched.winner == c.winner


def test_sample_cap_fails_clearly():
    draw, sizes = scripted(["A", "B"] * 20)
    with pytest.raises(SampleCapReached) as e:
        vote_sync(draw, 2, 7)
    assert sum(sizes) == 7
    assert "within 7 samples" in e.value.message and "k=2" in e.value.message


def test_all_red_flags_hit_the_cap():
    draw, _ = scripted([RedFlag("unparseable")] * 10)
    with pytest.raises(SampleCapReached) as e:
        vote_sync(draw, 1, 4)
    assert e.value.red_flags == 4


def test_k_must_be_positive():
    with pytest.raises(InvalidArgument) as e:
        VoteCounter(0)
    assert e.value.field == "k"


async def test_async_vote_step_uses_the_same_rule():
    seq = iter(["X", "X", "Y", "X"])
    sizes = []

    async def draw(n):
        sizes.append(n)
        return [next(seq) for _ in range(n)]

    d = await vote_step(draw, 2, 10)
    assert d.winner == "X" and sizes == [2] and d.samples == 2
