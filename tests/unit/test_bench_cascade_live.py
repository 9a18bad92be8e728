"""bench/cascade_live.py: its pure parts against hand-computed cases, and every arm end to end over sim pools
(test doubles that answer a fixed simulated text) behind real routers and a real redis-server."""
from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def bench():
    spec = importlib.util.spec_from_file_location("cascade_live", ROOT / "bench" / "cascade_live.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclass resolves annotations through the module
    spec.loader.exec_module(mod)
    return mod


def test_wilson_auroc_and_the_cost_matched_mix():
    m = bench()
    assert list(m.wilson(0, 0)) == [0.0, 1.0]
    lo, hi = m.wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert m.auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert m.auroc([0.5, 0.5], [True, False]) == 0.5
    assert m.auroc([1.0], [True]) is None
    # halfway in cost between (10 CU, 0.4) and (20 CU, 0.6) is 0.5; above the dear arm it is the dear arm
    assert m.mix_accuracy(15, (10, 0.4), (20, 0.6)) == pytest.approx(0.5)
    assert m.mix_accuracy(30, (10, 0.4), (20, 0.6)) == pytest.approx(0.6)
    assert m.mix_accuracy(5, (10, 0.4), (20, 0.6)) == pytest.approx(0.4)


def test_questions_are_interleaved_over_levels_and_calibration_shares_none():
    m = bench()
    ev = m.questions(9, 0, [1, 2, 3])
    assert [q.level for q in ev] == [1, 2, 3] * 3
    cal = m.questions(9, 1, [1, 2, 3], exclude={q.question for q in ev})
    assert len(cal) == 9 and not {q.question for q in cal} & {q.question for q in ev}


def test_every_arm_runs_over_sim_pools(redis_url, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert bench().main(["--sim", "--questions", "3", "--calibration", "3"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    arms = out["arms"]
    assert set(arms) >= {"cheap", "dear", "cascade_agree_l0", "cascade_agree_budget_dear", "cascade_agree_budget_mid"}
    assert out["simulated"] and out["questions"] == 3
    # the dear pool's prices are price_ratio times the small pool's; the cascade bills its three cheap samples
    assert arms["dear"]["mean_cu"] == pytest.approx(2.0 * arms["cheap"]["mean_cu"], rel=1e-3)
    # sim samples all agree: confidence 1, never escalates, three cheap samples per request
    assert out["confidence"]["cascade_agree_l0"]["values"] == {"1": 1.0}
    for name in ("cascade_agree_l0", "cascade_agree_budget_dear", "cascade_agree_budget_mid"):
        assert arms[name]["escalation_share"] == 0.0
        assert arms[name]["mean_cu"] == pytest.approx(3 * arms["cheap"]["mean_cu"], rel=1e-3)
    assert arms["cascade_agree_l0"]["mean_lambda_per_cu"] == 0.0
    assert arms["cascade_agree_budget_mid"]["mean_lambda_per_cu"] > arms["cascade_agree_budget_dear"]["mean_lambda_per_cu"] > 0
    assert out["calibration"]["budgets_cu"]["dear"] == pytest.approx(arms["dear"]["mean_cu"], rel=0.2)
    assert "prompt_only_at_cost" in arms["cascade_agree_l0"] or out["prompt_only_router"].startswith("no prompt-only")


def test_prompt_only_routing_spends_on_the_highest_gain_within_the_cost():
    m = bench()

    def row(right, cu):
        return m.Row("q", 1, right, cu, 1.0, False, None, None, "")

    cheap = [row(False, 10), row(True, 10), row(False, 10)]
    dear = [row(True, 20), row(True, 20), row(False, 20)]
    # budget for one dear answer: the highest gain (question 0) goes up
    assert m.routed_at_cost([0.5, 0.1, 0.3], cheap, dear, 40 / 3) == (
        pytest.approx(2 / 3), pytest.approx(40 / 3), [True, True, False])
    assert m.routed_at_cost([0.5, 0.1, 0.3], cheap, dear, 5)[:2] == (pytest.approx(1 / 3), pytest.approx(10))
    assert m.routed_at_cost([0.5, 0.1, 0.3], cheap, dear, 100)[:2] == (pytest.approx(2 / 3), pytest.approx(20))


def test_paired_difference_and_its_interval():
    m = bench()
    same = m.paired_diff([True, False] * 10, [True, False] * 10)
    assert same == {"diff": 0.0, "ci95": [0.0, 0.0]}
    d = m.paired_diff([True] * 20, [False] * 5 + [True] * 15)
    assert d["diff"] == 0.25 and 0 < d["ci95"][0] < 0.25 < d["ci95"][1] <= 0.5
