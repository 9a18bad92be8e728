"""Retrain fits the soft-thought gain of SoftCoT pools from softcot outcome records, and the
difficulty policy uses it in place of its prior."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ponder.common.config import parse_config
from ponder.router import cli_router
from ponder.router import outcome_schema as S
from ponder.router.catalog import PoolCatalog
from ponder.router.policies.difficulty import DifficultyPolicy
from ponder.router.training import retrain as R
from ponder.router.training.softcot_gain import fit_softcot_gain
from ponder.router.types import Request

EASY = "Add {a} and {b} (case {i})."
HARD = "Multiply {a} by {b}, then subtract {c} (case {i})."
P_PLAIN = {"easy": 0.8, "hard": 0.3}  # P(a plain sample of the SoftCoT pool's backbone is right)


def shifted(p, g):
    return 1 / (1 + np.exp(-(np.log(p / (1 - p)) + g)))


def synth_log(gain, n_single=800, n_softcot=800, seed=0):
    """Pool 'sc': single records right with P_PLAIN, softcot records with P_PLAIN shifted by ``gain`` logits."""
    rng = np.random.default_rng(seed)
    prompts, pools, correct, kinds = [], [], [], []
    for i, kind in enumerate(["single"] * n_single + ["softcot"] * n_softcot):
        hard = rng.random() < 0.5
        a, b = rng.integers(10, 99, size=2)
        prompts.append(HARD.format(a=a, b=b, c=a % 7, i=i) if hard else EASY.format(a=a, b=b, i=i))
        p = P_PLAIN["hard" if hard else "easy"]
        correct.append(bool(rng.random() < (shifted(p, gain) if kind == "softcot" else p)))
        pools.append("sc")
        kinds.append(kind)
    return R.OutcomeLog(prompts, pools, correct, len(prompts), "synthetic", kinds, [0] * len(prompts))


def test_softcot_records_are_their_own_kind():
    assert R.record_kind("softcot", {"samples": 1, "thinking_budget": 0}) == ("softcot", 0)
    assert R.record_kind("softcot", {})[0] == "softcot"
    assert R.record_kind("softcot", {"samples": 3})[0] == "skipped"


def test_fit_softcot_gain_recovers_known_gains_of_either_sign():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.1, 0.9, 6000)
    for g in (1.2, 0.0, -0.9):
        y = rng.random(6000) < shifted(p, g)
        assert fit_softcot_gain(p, y) == pytest.approx(g, abs=0.12)


@pytest.fixture(scope="module")
def retrained():
    """Classifiers retrained on logs whose soft-thought gain is +1 and -1 logits."""
    return {g: R.train_from_log(synth_log(g), min_rows=50) for g in (1.0, -1.0)}


@pytest.mark.parametrize("gain", [1.0, -1.0])
def test_retrain_fits_the_pools_soft_thought_gain(gain, retrained):
    clf = retrained[gain]
    fit = clf.report["softcot_logit_gain"]["sc"]
    assert fit["n"] == 800
    assert fit["gain"] == pytest.approx(gain, abs=0.3)
    # The classifier's p comes from single records only: softcot answers do not move it.
    assert clf.predict(EASY.format(a=12, b=30, i=9))["sc"] == pytest.approx(0.8, abs=0.1)
    assert clf.report["records_used"] == {"single": 800, "think": 0, "skipped": 0, "softcot": 800}


def test_too_few_or_one_sided_softcot_records_fit_nothing():
    clf = R.train_from_log(synth_log(1.0, n_single=300, n_softcot=29), min_rows=50)
    assert clf.report["softcot_logit_gain"] == {}
    assert "29 softcot records < min_softcot_rows 30" in clf.report["softcot_gain_skipped"]["sc"]
    log = synth_log(1.0, n_single=300, n_softcot=40)
    log.correct[-40:] = [True] * 40
    assert "only one class" in R.train_from_log(log, min_rows=50).report["softcot_gain_skipped"]["sc"]


POOLS = [
    {"name": "small"},
    {"name": "sc", "tier": "softcot", "backend": {"kind": "transformers"},
     "softcot": {"projection_path": "p.safetensors", "num_thought_tokens": 4}},
]


async def test_the_difficulty_policy_uses_the_fitted_gain_over_its_prior(retrained):
    clf = retrained[1.0]
    g = clf.report["softcot_logit_gain"]["sc"]["gain"]
    cfg = parse_config({"pools": POOLS, "routing": {"policy": {"name": "difficulty"},
                                                    "strategies": ["single", "softcot"]}})
    pol = DifficultyPolicy(DifficultyPolicy.Params(lambda_per_cu=0.0), PoolCatalog(cfg), clf)
    plan = await pol.plan(Request(request_id="r", prompt=EASY.format(a=12, b=30, i=9), hint_pool="sc"))
    soft = next(c for c in plan.candidates if c.strategy == "softcot")
    plain = next(c for c in plan.candidates if c.strategy == "single")
    assert f"soft-thought gain {g:.2f} (fitted, n=800)" in soft.note
    assert soft.expected_accuracy == pytest.approx(shifted(plain.expected_accuracy, g), abs=1e-5)
    assert plan.strategy == "softcot"
    # A harmful gain fitted from feedback makes the plain sample win.
    pol = DifficultyPolicy(DifficultyPolicy.Params(lambda_per_cu=0.0, softcot_logit_gain=2.0), PoolCatalog(cfg),
                           retrained[-1.0])
    plan = await pol.plan(Request(request_id="r", prompt=EASY.format(a=12, b=30, i=9), hint_pool="sc"))
    assert plan.strategy == "single"


def test_retrain_cli_reports_the_soft_thought_gain(redis_client, redis_url, tmp_path, capsys):
    from ponder.router.convert import plan_to_dict
    from ponder.router.types import Plan

    log = synth_log(1.0, n_single=300, n_softcot=120, seed=3)
    for i, (prompt, ok, kind) in enumerate(zip(log.prompts, log.correct, log.kinds)):
        redis_client.xadd(S.OUTCOME_STREAM, S.encode_outcome(f"r{i}", prompt, "sc", kind,
                                                             plan_to_dict(Plan("sc", kind)), {}))
        redis_client.hset(S.FEEDBACK_HASH, f"r{i}", S.encode_feedback(correct=ok))
    out = tmp_path / "m"
    assert cli_router.main(["router", "retrain", "--redis-url", redis_url, "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["used"]["softcot"] == 120 and res["softcot_logit_gain"]["sc"]["n"] == 120
    saved = json.loads((out / "model.json").read_text())["report"]["softcot_logit_gain"]["sc"]
    assert saved == res["softcot_logit_gain"]["sc"] and saved["gain"] > 0
    assert cli_router.main(["router", "retrain", "--redis-url", redis_url, "--out", str(out)]) == 0
    assert "120 softcot, soft-thought gain fitted: sc " in capsys.readouterr().out
    assert cli_router.main(["router", "retrain", "--redis-url", redis_url, "--out", str(out),
                            "--min-softcot-rows", "121"]) == 0
    assert "120 softcot, soft-thought gain fitted: none" in capsys.readouterr().out
