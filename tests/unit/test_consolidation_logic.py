"""Pure parts of the consolidator: unit selection, self-information, schedule, idle test, policies."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from ponder.common.config import ConsolidatorConfig, PonderConfig
from ponder.common.crd_models import ConsolidationPolicySpec
from ponder.common.errors import ConfigError, InvalidArgument
from ponder.consolidation.policy import (
    PolicyBook, eviction_victims, in_schedule, interval_wait_s, is_idle, parse_policies, rest_after_step_s,
)
from ponder.consolidation.store import check_id, check_text, estimate_tokens, version_of
from ponder.consolidation.strategies import default_registry
from ponder.consolidation.strategies.extractive import (
    drop_repeats, fact_density, fact_words, jaccard, mean_self_information, select_units, split_units, word_set,
)
from ponder.consolidation.strategies.rethink import chunks, output_budget
from ponder.router.contexts import ResolvedContext


def test_split_units_sentences_and_phrases():
    text = "First one. Second, with a clause; and more!\nThird?"
    assert split_units(text) == ["First one.", "Second, with a clause; and more!", "Third?"]
    assert split_units(text, "phrase") == ["First one.", "Second,", "with a clause;", "and more!", "Third?"]
    assert split_units("   \n ") == []


def test_drop_repeats_keeps_first():
    assert drop_repeats(["A b.", "c.", "a  B.", "d."]) == ["A b.", "c.", "d."]


def test_select_units_keeps_highest_within_budget_in_order():
    scores = [1.0, 5.0, 2.0, 4.0]
    tokens = [10, 10, 10, 10]
    assert select_units(scores, tokens, 2.0) == [1, 3]  # budget 20 tokens
    assert select_units(scores, tokens, 1.0) == [0, 1, 2, 3]
    # A high-scoring unit too large for the budget is skipped; smaller ones still fit.
    assert select_units([9.0, 1.0, 2.0], [100, 5, 5], 10.0) == [1, 2]
    # Nothing fits: the smallest unit is kept rather than nothing.
    assert select_units([1.0, 2.0], [50, 40], 100.0) == [1]
    assert select_units([], [], 5.0) == []


def test_fact_density_counts_numbers_and_names_after_the_first_word():
    assert fact_density("The ferry to Ostend leaves at 0715 daily.") == pytest.approx(2 / 7)
    assert fact_density("Nothing was decided at the meeting.") == 0.0
    assert fact_density("Hello") == 0.0
    assert fact_words("In 1998 Marie Dupont moved to Lyon.") == {"1998", "Marie", "Dupont", "Lyon"}


def test_near_repeats_go_but_facts_phrased_alike_stay():
    units = [
        "The panel discussed the routine budget at the spring meeting.",
        "The panel discussed the usual budget at the autumn meeting.",    # near repeat of 0, no new name/number
        "Flight 212 to Porto leaves from gate 14.",
        "Flight 388 to Porto leaves from gate 9.",                         # alike, but new numbers: a new fact
    ]
    words, facts = [word_set(u) for u in units], [fact_words(u) for u in units]
    assert jaccard(words[0], words[1]) >= 0.6 and jaccard(words[2], words[3]) >= 0.6
    scores, tokens = [3.0, 2.9, 2.0, 1.9], [10, 10, 10, 10]
    assert select_units(scores, tokens, 1.0, words, 0.6, facts) == [0, 2, 3]
    assert select_units(scores, tokens, 1.0, words, 0.6) == [0, 2]   # overlap alone would drop the second fact
    assert select_units(scores, tokens, 1.0) == [0, 1, 2, 3]


def test_mean_self_information_matches_log_softmax():
    logits = np.array([[0.0, 0.0], [10.0, 0.0]], dtype=np.float32)
    si = mean_self_information(logits, np.array([0, 1]))
    assert si[0] == pytest.approx(np.log(2), rel=1e-5)
    assert si[1] == pytest.approx(10 + np.log1p(np.exp(-10)), rel=1e-5)


def test_chunks_bound_size_and_keep_text():
    text = "One two three. " * 50 + "x" * 250
    parts = chunks(text, 100)
    assert all(len(p) <= 100 for p in parts)
    assert "".join(parts).replace(" ", "") == text.replace(" ", "")
    assert chunks("", 10) == []


@pytest.mark.parametrize("cron, when, expected", [
    (None, "2026-01-01T03:00", True),
    ("* 1-5 * * *", "2026-01-01T03:17", True),
    ("* 1-5 * * *", "2026-01-01T06:00", False),
    ("*/15 * * * *", "2026-01-01T06:30", True),
    ("*/15 * * * *", "2026-01-01T06:31", False),
    ("0 2 * * 0", "2026-01-04T02:00", True),   # a Sunday
    ("0 2 * * 0", "2026-01-05T02:00", False),
    ("0 0 1 * 1", "2026-01-05T00:00", True),   # dom or dow when both are restricted (Monday)
])
def test_in_schedule(cron, when, expected):
    t = dt.datetime.fromisoformat(when).replace(tzinfo=dt.timezone.utc)
    assert in_schedule(cron, t) is expected


def test_is_idle_thresholds():
    spec = ConsolidationPolicySpec(pool="small", idle={"max_ongoing_requests_per_replica": 1})
    assert is_idle(0, 1, spec)
    assert not is_idle(0, 2, spec)
    assert not is_idle(1, 0, spec)


def test_rethink_output_budget_is_a_share_of_the_input():
    assert output_budget(2000, 0.5, 16, 384) == 250  # 500 tokens read -> 250 written at most
    assert output_budget(40, 0.5, 16, 384) == 16      # short inputs keep the floor
    assert output_budget(40_000, 0.5, 16, 384) == 384  # the pass's max tokens still caps it
    assert output_budget(40, 0.5, 16, 8) == 8


def test_rest_after_step_keeps_consolidation_within_its_share():
    assert rest_after_step_s(1.0, 0.25) == pytest.approx(3.0)  # busy 1 s of every 4
    assert rest_after_step_s(2.0, 0.5) == pytest.approx(2.0)
    assert rest_after_step_s(5.0, 1.0) == 0.0
    assert rest_after_step_s(-1.0, 0.5) == 0.0
    for step in (0.1, 1.0, 7.5):  # the duty cycle is exactly the share
        assert step / (step + rest_after_step_s(step, 0.2)) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="max_pass_share"):
        rest_after_step_s(1.0, 0.0)


def test_interval_wait_counts_from_the_last_consolidation():
    assert interval_wait_s(None, 1000.0, 300.0) == 0.0
    assert interval_wait_s(900.0, 1000.0, 300.0) == pytest.approx(200.0)
    assert interval_wait_s(600.0, 1000.0, 300.0) == 0.0
    assert interval_wait_s(999.0, 1000.0, 0.0) == 0.0


def test_eviction_takes_the_oldest_and_spares_contexts_in_use():
    ids = ["a", "b", "c", "d", "e"]  # oldest first
    assert eviction_victims(ids, set(), 5, 3) == ["a", "b"]
    assert eviction_victims(ids, {"a"}, 5, 3) == ["b", "c"]
    assert eviction_victims(ids, {"a", "b", "c", "d"}, 5, 3) == ["e"]  # fewer than needed: the rest are in use
    assert eviction_victims(ids, set(), 5, 5) == []
    assert eviction_victims(ids, set(), 5, None) == []


def test_policy_book_cap_is_the_smallest_set():
    book = PolicyBook(None)
    assert book.max_contexts() is None
    book.policies = parse_policies({"policies": [
        {"name": "a", "pool": "small", "retention": {"max_contexts": 50}},
        {"name": "b", "pool": "large", "retention": {"max_contexts": 20}},
        {"name": "c", "pool": "mid"},
    ]}, "test")
    assert book.max_contexts() == 20


async def test_idle_gate_refuses_while_the_pool_rests():
    from ponder.consolidation.scheduler import IdleGate

    now = [1000.0]
    rest_until = {"small": 1005.0}

    async def idle(pool):
        return 0, 0

    async def rest(pool):
        return rest_until.get(pool, 0.0)

    gate = IdleGate(idle, 0.01, clock=lambda: now[0], rest=rest)
    spec = ConsolidationPolicySpec(pool="small", idle={"min_idle_s": 0, "max_pass_share": 0.5})
    ok, why = await gate.check("small", spec)
    assert not ok and "max_pass_share" in why
    now[0] = 1005.0
    assert (await gate.check("small", spec))[0]


def test_parse_policies_by_pool_and_errors():
    good = parse_policies({"policies": [{"name": "p", "pool": "small", "idle": {"min_idle_s": 5}}]}, "f")
    assert good["small"].name == "p" and good["small"].spec.idle.min_idle_s == 5
    with pytest.raises(ConfigError) as e:
        parse_policies({"policies": [{"name": "p", "pool": "small", "idle": {"min_idle_s": -1}}]}, "f")
    assert e.value.problems[0][0] == "policies[0].idle.min_idle_s"
    with pytest.raises(ConfigError) as e:
        parse_policies({"policies": [{"name": "a", "pool": "small"}, {"name": "b", "pool": "small"}]}, "f")
    assert e.value.problems[0][0] == "policies[1].pool"


def test_policy_book_reloads_and_keeps_old_on_bad_file(tmp_path):
    import os

    f = tmp_path / "consolidation.yaml"
    f.write_text("policies:\n- {name: p, pool: small, idle: {min_idle_s: 7}}\n")
    book = PolicyBook(f)
    assert book.for_pool("small").idle.min_idle_s == 7
    assert book.for_pool("other").idle.min_idle_s == ConsolidationPolicySpec(pool="other").idle.min_idle_s
    f.write_text("policies:\n- {name: p, pool: small, idle: {min_idle_s: 3}}\n")
    os.utime(f, (1, 1))
    assert book.reload() and book.for_pool("small").idle.min_idle_s == 3
    f.write_text("policies:\n- {name: p, pool: small, idle: {min_idle_s: nope}}\n")
    os.utime(f, (2, 2))
    assert not book.reload() and "min_idle_s" in book.error
    assert book.for_pool("small").idle.min_idle_s == 3


def test_registry_parses_chains_and_refuses_unknown_or_duplicates():
    reg = default_registry()
    assert reg.parse_chain("extractive+rethink") == ["extractive", "rethink"]
    with pytest.raises(InvalidArgument) as e:
        reg.parse_chain("summarize")
    assert e.value.field == "strategy" and "extractive" in e.value.problem
    with pytest.raises(InvalidArgument):
        reg.parse_chain("rethink+rethink")
    with pytest.raises(ValueError):
        reg.register("rethink", lambda cfg: None)
    steps = reg.plan(["extractive", "rethink"], 3, ConsolidatorConfig())
    assert [(s.name, i) for s, i in steps] == [("extractive", 0), ("rethink", 0), ("rethink", 1), ("rethink", 2)]


def test_input_checks_name_the_field():
    with pytest.raises(InvalidArgument) as e:
        check_text("", 10)
    assert e.value.field == "text"
    with pytest.raises(InvalidArgument) as e:
        check_text("x" * 11, 10)
    assert "max_context_chars" in e.value.problem
    with pytest.raises(InvalidArgument):
        check_id("has space")
    assert check_id("doc-1:v/2") == "doc-1:v/2"
    assert version_of("a") != version_of("b") and len(version_of("a")) == 64
    assert estimate_tokens("abcde") == 2 and estimate_tokens("") == 0


def test_resolved_context_amortises_cost():
    r = ResolvedContext("short", True, "v", raw_tokens=1000, sent_tokens=200, consolidation_cu=80.0, uses=4)
    assert r.saved_tokens == 800 and r.amortised_cu == 20.0
    assert r.saved_compute_units(0.1) == pytest.approx(60.0)
    raw = ResolvedContext("long", False, "v", 1000, 1000, 0.0, 0)
    assert raw.amortised_cu == 0.0 and raw.saved_compute_units(0.1) == 0.0


def test_config_refuses_unknown_default_pool():
    with pytest.raises(ValueError, match="consolidator.default_pool"):
        PonderConfig(consolidator={"default_pool": "nope"})
