"""Outcome CSV loading, folds, cross-validation and the router CLI commands."""
import json
import pathlib

import numpy as np
import pytest

from ponder.router import cli_router
from ponder.router import outcome_schema as S
from ponder.router.training import metrics as M
from ponder.router.training.evaluate import assign_folds, cross_validate
from ponder.router.training.outcomes import OutcomeError, load_outcomes, shared_data_dir

MMLU = shared_data_dir() / "routellm-mmlu"
W, ST = "weak", "strong"


def synth_rows(n, seed=0):
    """Prompts whose difficulty shows in their numbers: the weak model fails on arithmetic."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        hard = rng.random() < 0.4
        if hard:
            a, b = rng.integers(100, 999, size=2)
            prompt = f"Compute {a} * {b} - {a % 7} and give the result (case {i})."
        else:
            prompt = f"Name the colour of the sky on a clear day, please (case {i})."
        weak = rng.random() < (0.3 if hard else 0.9)
        strong = rng.random() < (0.85 if hard else 0.95)
        rows.append((prompt, weak, strong))
    return rows


def write_csv(path: pathlib.Path, rows, header=("prompt", W, ST)):
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([str(x) for x in r])
    return path


def test_load_several_files_and_bool_spellings(tmp_path):
    a = write_csv(tmp_path / "a.csv", [("p1", "True", "false"), ("p2", "1", "0")])
    b = write_csv(tmp_path / "b.csv", [("p3", "yes", "NO")])
    t = load_outcomes([a, b], [W, ST])
    assert t.prompts == ["p1", "p2", "p3"]
    assert t.labels(W).tolist() == [True, True, True]
    assert t.labels(ST).tolist() == [False, False, False]
    assert t.files == [str(a), str(a), str(b)]


def test_missing_column_names_file_and_column(tmp_path):
    a = write_csv(tmp_path / "a.csv", [("p", "True")], header=("prompt", W))
    with pytest.raises(OutcomeError) as e:
        load_outcomes([a], [W, ST])
    assert e.value.column == ST and str(a) in e.value.message and "'strong'" in e.value.message


def test_non_boolean_cell_names_row_and_column(tmp_path):
    a = write_csv(tmp_path / "a.csv", [("p1", "True", "True"), ("p2", "maybe", "True")])
    with pytest.raises(OutcomeError) as e:
        load_outcomes([a], [W, ST])
    assert (e.value.file, e.value.column, e.value.row) == (str(a), W, 3)
    assert "'maybe'" in e.value.message and "row 3" in e.value.message


def test_fewer_rows_than_folds(tmp_path):
    a = write_csv(tmp_path / "a.csv", [("p1", "True", "True"), ("p2", "False", "True")])
    t = load_outcomes([a], [W, ST])
    with pytest.raises(OutcomeError, match="2 rows is fewer than 5 folds"):
        assign_folds(t, 5, False)


def test_one_class_only_is_refused(tmp_path):
    a = write_csv(tmp_path / "a.csv", [(f"p{i}", "True", "True") for i in range(10)])
    assert cli_router.main(["router", "train", "--outcomes", str(a), "--weak", W, "--strong", ST,
                            "--out", str(tmp_path / "m")]) == 2


def test_one_class_error_names_column(tmp_path):
    from ponder.router.training.evaluate import train

    a = write_csv(tmp_path / "a.csv", [(f"p{i}", "True", str(i % 2 == 0)) for i in range(10)])
    with pytest.raises(OutcomeError) as e:
        train(load_outcomes([a], [W, ST]), W, ST)
    assert e.value.column == W and "only one class" in e.value.message


def test_grouped_folds_keep_files_whole(tmp_path):
    files = [write_csv(tmp_path / f"f{i}.csv", synth_rows(5 + i, seed=i)) for i in range(6)]
    t = load_outcomes(files, [W, ST])
    fold = assign_folds(t, 3, True)
    for f in set(t.files):
        assert len({fold[i] for i, g in enumerate(t.files) if g == f}) == 1
    assert set(fold.tolist()) == {0, 1, 2}
    with pytest.raises(OutcomeError, match="at least 7 files"):
        assign_folds(t, 7, True)


@pytest.mark.slow
def test_cross_validation_beats_baselines_on_synthetic_data(tmp_path):
    files = [write_csv(tmp_path / f"f{i}.csv", synth_rows(120, seed=i)) for i in range(4)]
    t = load_outcomes(files, [W, ST])
    res = cross_validate(t, W, ST, k=4, group_by_file=True)
    assert res["n"] == 480 and len(res["per_fold"]) == 4
    assert res["apgr"] > res["baselines"]["random"]["apgr"] + 0.2
    assert res["baselines"]["oracle"]["apgr"] > res["apgr"]
    assert 0 <= res["cpt50"] <= res["cpt80"] <= 1


@pytest.mark.slow
def test_cross_validation_headline_is_the_whole_table_routed_by_out_of_fold_scores(tmp_path):
    files = [write_csv(tmp_path / f"f{i}.csv", synth_rows(100, seed=10 + i)) for i in range(3)]
    t = load_outcomes(files, [W, ST])
    res = cross_validate(t, W, ST, k=3, group_by_file=True, keep_scores=True)
    w, s = t.labels(W), t.labels(ST)
    whole = M.summary(M.router_curve(res["oof_scores"], w, s))
    assert (res["apgr"], res["cpt50"], res["cpt80"]) == (whole["apgr"], whole["cpt50"], whole["cpt80"])
    assert res["baselines"]["oracle"]["apgr"] == M.apgr(M.oracle_curve(w, s))
    assert res["baselines"]["length"]["apgr"] == M.apgr(M.router_curve([len(x) for x in t.prompts], w, s))
    fm = res["fold_mean"]
    assert fm["apgr"] == pytest.approx(sum(f["apgr"] for f in res["per_fold"]) / 3)
    assert set(fm["baselines"]) == {"random", "length", "oracle"}
    assert fm["baselines"]["oracle"]["apgr"] > fm["apgr"] > fm["baselines"]["random"]["apgr"]


@pytest.mark.slow
@pytest.mark.skipif(not MMLU.is_dir(), reason="shared MMLU outcome tables not present")
def test_cv_command_on_an_mmlu_subset(capsys):
    files = sorted(MMLU.glob("*.csv"))[:4]
    rc = cli_router.main(["router", "cv", "--outcomes", *map(str, files), "--weak",
                          "mistralai/Mixtral-8x7B-Instruct-v0.1", "--strong", "gpt-4-1106-preview",
                          "--folds", "2", "--group-by-file", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("apgr", "cpt50", "cpt80", "n"):
        assert key in res
    assert res["baselines"]["random"]["apgr"] == pytest.approx(0.5, abs=0.1)
    assert set(res["baselines"]) == {"random", "length", "oracle"}


def test_train_then_eval_with_plot(tmp_path, capsys):
    train_csv = write_csv(tmp_path / "train.csv", synth_rows(300, seed=1))
    test_csv = write_csv(tmp_path / "test.csv", synth_rows(200, seed=2))
    out = tmp_path / "model"
    assert cli_router.main(["router", "train", "--outcomes", str(train_csv), "--weak", W, "--strong", ST,
                            "--out", str(out), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["targets"] == [W, ST] and (out / "model.json").is_file()
    png = tmp_path / "curve.png"
    assert cli_router.main(["router", "eval", "--outcomes", str(test_csv), "--weak", W, "--strong", ST,
                            "--model", str(out), "--plot", str(png), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["apgr"] > 0.7 and res["baselines"]["length"]["apgr"] < res["apgr"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_guard_flag_fits_the_guard_and_saves_it(tmp_path, capsys):
    csv_ = write_csv(tmp_path / "t.csv", synth_rows(300, seed=4))
    for flag, guarded in (("--guard", True), ("--no-guard", False)):
        out = tmp_path / flag.strip("-")
        assert cli_router.main(["router", "train", "--outcomes", str(csv_), "--weak", W, "--strong", ST,
                                "--out", str(out), flag]) == 0
        saved = json.loads((out / "model.json").read_text())
        assert (saved["guard"] is not None) is guarded
    capsys.readouterr()


def test_eval_with_unknown_column_fails_cleanly(tmp_path, capsys):
    csv_ = write_csv(tmp_path / "t.csv", synth_rows(100))
    out = tmp_path / "model"
    cli_router.main(["router", "train", "--outcomes", str(csv_), "--weak", W, "--strong", ST, "--out", str(out)])
    rc = cli_router.main(["router", "eval", "--outcomes", str(csv_), "--weak", "other", "--strong", ST,
                          "--model", str(out)])
    assert rc == 2 and "no target 'other'" in capsys.readouterr().err


def test_retrain_from_outcome_log(redis_client, redis_url, tmp_path, capsys):
    rows = synth_rows(400, seed=3)
    for i, (prompt, weak, strong) in enumerate(rows):
        pool = "small" if i % 2 else "reasoning"
        ok = weak if pool == "small" else strong
        rid = f"r{i}"
        redis_client.xadd(S.OUTCOME_STREAM, S.encode_outcome(rid, prompt, pool, "single", {"pool": pool},
                                                             {S.USAGE_COMPUTE_UNITS: 12.5}))
        if i % 10:  # some requests never get feedback
            redis_client.hset(S.FEEDBACK_HASH, rid, S.encode_feedback(correct=ok) if i % 3 else
                              S.encode_feedback(score=1.0 if ok else 0.0))
    redis_client.xadd(S.OUTCOME_STREAM, S.encode_outcome("bad", "x", "small", "single", {}, {}, status="error"))
    redis_client.hset(S.FEEDBACK_HASH, "bad", S.encode_feedback(correct=True))
    out = tmp_path / "m"
    rc = cli_router.main(["router", "retrain", "--redis-url", redis_url, "--out", str(out), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["records"] == 401 and res["labelled"] == 360
    assert sorted(res["targets"]) == ["reasoning", "small"]
    from ponder.router.classifiers import load_classifier

    clf = load_classifier(out)
    p = clf.predict("Compute 512 * 733 - 4 and give the result (case 9).")
    q = clf.predict("Name the colour of the sky on a clear day, please (case 9).")
    assert p["small"] < q["small"]


def test_retrain_without_feedback_fails(redis_client, redis_url, tmp_path, capsys):
    redis_client.xadd(S.OUTCOME_STREAM, S.encode_outcome("r1", "p", "small", "single", {}, {}))
    rc = cli_router.main(["router", "retrain", "--redis-url", redis_url, "--out", str(tmp_path / "m")])
    assert rc == 2 and "no records with feedback among 1 records" in capsys.readouterr().err


def test_outcome_schema_round_trip():
    f = S.encode_outcome("id", "hi", "small", "best_of_n", {"samples": 3}, {S.USAGE_COMPUTE_UNITS: 7})
    rec = S.decode_outcome({k.encode(): v.encode() for k, v in f.items()})
    assert (rec.request_id, rec.pool, rec.plan["samples"], rec.compute_units, rec.status) == ("id", "small", 3, 7.0, S.STATUS_OK)
    assert S.feedback_correct(S.encode_feedback(score=0.7)) is True
    assert S.feedback_correct(S.encode_feedback(correct=False, score=0.9)) is False
    assert S.feedback_correct("{}") is None


# --- retrain: what each record teaches ---------------------------------------------------------

from ponder.router.training import retrain as R  # noqa: E402

EASY = "Name the colour of the sky on a clear day, please (case {i})."
HARD = "Compute {a} * {b} - {c} and give the result (case {i})."
P_TRUE = {"easy": 0.85, "hard": 0.35}  # P(one plain sample of pool 'reasoning' is right)


def think_p(p, budget, gain, ref=256):
    z = np.log(p / (1 - p)) + gain * np.log2(1 + budget / ref)
    return 1 / (1 + np.exp(-z))


def synth_log(n_single=600, n_think=600, n_bon=0, gain=0.8, seed=0):
    """Pool 'reasoning': single records right with P_TRUE, think records with the gain model, best_of_n always right."""
    rng = np.random.default_rng(seed)
    prompts, pools, correct, kinds, budgets = [], [], [], [], []
    for i, kind in enumerate(["single"] * n_single + ["think"] * n_think + ["skipped"] * n_bon):
        hard = rng.random() < 0.5
        a, b = rng.integers(100, 999, size=2)
        prompts.append(HARD.format(a=a, b=b, c=a % 7, i=i) if hard else EASY.format(i=i))
        p = P_TRUE["hard" if hard else "easy"]
        t = int(rng.choice([128, 256, 512])) if kind == "think" else 0
        correct.append(bool(rng.random() < (think_p(p, t, gain) if kind == "think" else p)) or kind == "skipped")
        pools.append("reasoning")
        kinds.append(kind)
        budgets.append(t)
    return R.OutcomeLog(prompts, pools, correct, len(prompts), "synthetic", kinds, budgets)


def test_record_kind_reads_the_plan():
    from ponder.router.convert import plan_to_dict
    from ponder.router.types import Plan

    assert R.record_kind("single", plan_to_dict(Plan("p", "single"))) == ("single", 0)
    assert R.record_kind("single", {}) == ("single", 0)  # an old record without the plan's fields
    assert R.record_kind("think", plan_to_dict(Plan("p", "think", thinking_budget=512))) == ("think", 512)
    assert R.record_kind("think", {"thinking_budget": 0})[0] == "skipped"
    assert R.record_kind("best_of_n", plan_to_dict(Plan("p", "best_of_n", samples=3)))[0] == "skipped"
    assert R.record_kind("vote", {"samples": 5})[0] == "skipped"


def test_fit_think_gain_recovers_a_known_gain():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.2, 0.9, 5000)
    t = rng.choice([128, 256, 512, 1024], 5000)
    y = rng.random(5000) < think_p(p, t, 0.8)
    assert R.fit_think_gain(p, t, y, 256) == pytest.approx(0.8, abs=0.1)
    # Thinking that hurts fits the bound g = 0.
    y = rng.random(5000) < think_p(p, t, -0.5)
    assert R.fit_think_gain(p, t, y, 256) == 0.0


def test_retrain_fits_the_thinking_gain_from_think_records():
    # Enough single records for a calibrated p: the gain inherits p's errors (seeds 0-5 fit 0.64-0.82).
    log = synth_log(n_single=2000, n_think=1000, gain=0.8)
    clf = R.train_from_log(log, min_rows=50, think_ref_tokens=256, min_think_rows=30)
    fit = clf.report["think_logit_gain"]["reasoning"]
    assert fit["n"] == 1000 and fit["ref_tokens"] == 256
    assert fit["gain"] == pytest.approx(0.8, abs=0.25)
    # The classifier learned p from the single records only (think answers are right more often).
    assert clf.predict(EASY.format(i=9))["reasoning"] == pytest.approx(0.85, abs=0.1)
    assert clf.report["records_used"] == {"single": 2000, "think": 1000, "skipped": 0}


def test_too_few_think_records_fit_nothing():
    clf = R.train_from_log(synth_log(n_think=29), min_think_rows=30)
    assert clf.report["think_logit_gain"] == {}
    assert "29 think records < min_think_rows 30" in clf.report["think_gain_skipped"]["reasoning"]


def test_best_of_n_records_do_not_train_the_classifier():
    log = synth_log(n_think=0, n_bon=1500)  # all right: as labels they would pull p towards 1
    clf = R.train_from_log(log)
    assert clf.report["records_used"] == {"single": 600, "think": 0, "skipped": 1500}
    p = clf.predict(HARD.format(a=512, b=733, c=1, i=9))["reasoning"]
    assert p == pytest.approx(0.35, abs=0.12)
    # A pool served only by best_of_n gets no target.
    log = synth_log(n_think=0, n_bon=100)
    log.pools[-100:] = ["small"] * 100
    assert R.train_from_log(log).targets == ["reasoning"]
    with pytest.raises(OutcomeError, match="no single-sample records among 100"):
        R.train_from_log(R.OutcomeLog(log.prompts[-100:], log.pools[-100:], log.correct[-100:], 100, "s",
                                      log.kinds[-100:], log.thinking_budgets[-100:]))


def test_retrain_cli_counts_records_per_kind(redis_client, redis_url, tmp_path, capsys):
    from ponder.router.convert import plan_to_dict
    from ponder.router.types import Plan

    log = synth_log(n_single=300, n_think=60, n_bon=40, seed=4)
    for i, (prompt, ok, kind, t) in enumerate(zip(log.prompts, log.correct, log.kinds, log.thinking_budgets)):
        strategy = {"single": "single", "think": "think", "skipped": "best_of_n"}[kind]
        plan = Plan("reasoning", strategy, samples=3 if strategy == "best_of_n" else 1, thinking_budget=t)
        redis_client.xadd(S.OUTCOME_STREAM, S.encode_outcome(f"r{i}", prompt, "reasoning", strategy,
                                                             plan_to_dict(plan), {}))
        redis_client.hset(S.FEEDBACK_HASH, f"r{i}", S.encode_feedback(correct=ok))
    out = tmp_path / "m"
    assert cli_router.main(["router", "retrain", "--redis-url", redis_url, "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["used"] == {"single": 300, "think": 60, "skipped": 40} and res["labelled"] == 400
    assert res["per_pool"] == {"reasoning": 300}
    assert set(res["think_logit_gain"]) == {"reasoning"}
    saved = json.loads((out / "model.json").read_text())["report"]["think_logit_gain"]["reasoning"]
    assert saved["n"] == 60 and saved["ref_tokens"] == 256 and saved["gain"] >= 0
    assert cli_router.main(["router", "retrain", "--redis-url", redis_url, "--out", str(out),
                            "--min-think-rows", "100"]) == 0
    text = capsys.readouterr().out
    assert "300 single" in text and "60 think" in text and "40 skipped (best_of_n and others)" in text
    assert "thinking gain fitted: none" in text


@pytest.mark.parametrize("flag", ["--think-ref-tokens", "--min-think-rows"])
def test_retrain_refuses_a_non_positive_think_setting(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_router.main(["router", "retrain", "--redis-url", "redis://127.0.0.1:1", flag, "0",
                         "--out", str(tmp_path / "m")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "must be >= 1, got 0" in err


# --- N models, cascades and bad input --------------------------------------------------------------

def three_model_rows(n, seed=0):
    """Models cheap < mid < dear: mid fixes the arithmetic cheap fails, dear adds little over mid."""
    rng = np.random.default_rng(seed)
    rows = []
    for prompt, weak, strong in synth_rows(n, seed):
        hard = prompt.startswith("Compute")
        rows.append((prompt, weak, rng.random() < (0.8 if hard else 0.92), strong))
    return rows


def test_cv_routes_among_three_models_with_costs(tmp_path, capsys):
    f = write_csv(tmp_path / "t.csv", three_model_rows(240), header=("prompt", "cheap", "mid", "dear"))
    rc = cli_router.main(["router", "cv", "--outcomes", str(f), "--models", "cheap,mid,dear", "--costs", "1,4,9",
                          "--folds", "3", "--classifier", "hashed-linear", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    cc = res["cost_curve"]
    assert set(cc["models"]) == {"cheap", "mid", "dear"} and res["acc_weak"] < res["acc_strong"]
    # Cheapest weak, dearest strong for the two-model figures; the router beats a random mix of the two.
    assert cc["auc"] > cc["baselines"]["random"]["auc"] and cc["auc"] <= cc["baselines"]["oracle"]["auc"] + 1e-9
    assert set(res["ece"]) == {"cheap", "mid", "dear"}


@pytest.mark.parametrize("argv,message", [
    (["--models", "weak"], "need at least two model columns"),
    (["--models", "weak,strong", "--costs", "1,2,3"], "3 costs for 2 models"),
    (["--models", "weak,gone"], "column 'gone'"),
    (["--weak", "weak"], "--weak and --strong, or --models"),
])
def test_bad_model_lists_name_file_and_column(tmp_path, capsys, argv, message):
    f = write_csv(tmp_path / "t.csv", synth_rows(40))
    rc = cli_router.main(["router", "cv", "--outcomes", str(f), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and str(f) in err


def test_cascade_needs_the_response_column(tmp_path, capsys):
    f = write_csv(tmp_path / "t.csv", synth_rows(60))
    rc = cli_router.main(["router", "cv", "--outcomes", str(f), "--weak", W, "--strong", ST, "--cascade"])
    err = capsys.readouterr().err
    assert rc == 2 and "column 'weak_response'" in err and str(f) in err


def test_cascade_on_responses_beats_prompt_only_when_answers_tell(tmp_path, capsys):
    rng = np.random.default_rng(5)
    rows = []
    for prompt, weak, strong in synth_rows(300, seed=5):
        a, b = (int(v) for v in rng.integers(2, 99, size=2))
        answer = f"{a} + {b} = {a + b}.\n#### {a + b}" if weak else f"{a} + {b} = {a + b + 3} and th"
        rows.append((prompt, weak, strong, answer))
    f = write_csv(tmp_path / "r.csv", rows, header=("prompt", W, ST, W + "_response"))
    rc = cli_router.main(["router", "cv", "--outcomes", str(f), "--weak", W, "--strong", ST, "--cascade",
                          "--costs", "1,20", "--classifier", "hashed-linear", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["cascade"]["apgr"] > res["apgr"] + 0.05 and res["cascade"]["costs"] == [1.0, 20.0]


def test_retrain_refuses_a_single_usable_pool():
    log = synth_log(n_single=200, n_think=0)
    with pytest.raises(OutcomeError, match=r"too few labelled rows per pool.*1 usable pool\(s\) \(reasoning\), need 2"):
        R.train_from_log(log, min_pools=2)
    assert R.train_from_log(log).targets == ["reasoning"]


def test_retrain_cv_report_measures_apgr_on_prompts_both_pools_answered():
    rows = synth_rows(300, seed=4)
    prompts, pools, correct = [], [], []
    for prompt, weak, strong in rows:  # shadow traffic: every prompt answered by both pools
        prompts += [prompt, prompt]
        pools += ["small", "reasoning"]
        correct += [bool(weak), bool(strong)]
    log = R.OutcomeLog(prompts, pools, correct, len(prompts), "synthetic")
    rep = R.cv_report(log, "hashed-linear")
    assert rep["paired"] == 300 and rep["roles"] == {"weak": "small", "strong": "reasoning"}
    assert rep["apgr"] > 0.6 and rep["pools"]["small"]["auc"] > 0.7
    alternating = R.OutcomeLog(prompts[::2][:150] + prompts[1::2][150:], pools[::2][:150] + pools[1::2][150:],
                               correct[::2][:150] + correct[1::2][150:], 300, "synthetic")
    rep = R.cv_report(alternating, "hashed-linear")
    assert rep["apgr"] is None and "APGR needs both pools' outcomes on the same prompts" in rep["apgr_note"]


def test_train_and_eval_with_three_models(tmp_path, capsys):
    f = write_csv(tmp_path / "t.csv", three_model_rows(150), header=("prompt", "cheap", "mid", "dear"))
    out = tmp_path / "m"
    assert cli_router.main(["router", "train", "--outcomes", str(f), "--models", "cheap,mid,dear", "--costs", "1,4,9",
                            "--classifier", "hashed-linear", "--out", str(out), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["targets"] == ["cheap", "mid", "dear"]
    assert cli_router.main(["router", "eval", "--outcomes", str(f), "--models", "cheap,mid,dear", "--costs", "1,4,9",
                            "--model", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["cost_curve"]["baselines"]["best_single"]["model"] in {"mid", "dear"}
    from ponder.router.classifiers import load_classifier

    assert load_classifier(out).report["roles"] == {"weak": "cheap", "strong": "dear"}


def test_save_scorer_writes_a_scorer_the_cascade_strategy_loads(tmp_path, capsys):
    from ponder.router.confidence import ConfidenceScorer

    rng = np.random.default_rng(6)
    rows = []
    for prompt, weak, strong in synth_rows(200, seed=6):
        a, b = (int(v) for v in rng.integers(2, 99, size=2))
        answer = f"{a} + {b} = {a + b}.\n#### {a + b}" if weak else f"{a} + {b} = {a + b + 3} and th"
        rows.append((prompt, weak, strong, answer))
    f = write_csv(tmp_path / "r.csv", rows, header=("prompt", W, ST, W + "_response"))
    out = tmp_path / "scorer.json"
    rc = cli_router.main(["router", "cv", "--outcomes", str(f), "--weak", W, "--strong", ST, "--cascade",
                          "--classifier", "hashed-linear", "--save-scorer", str(out), "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["cascade"]["scorer"] == str(out)
    s = ConfidenceScorer.load(out)
    assert s.report["weights"]["has_prior"] == 0.0 and s.report["responses"] == W + "_response"
    prompt = rows[0][0]
    assert s.score(prompt, "12 + 30 = 42.\n#### 42") > 0.8 > 0.2 > s.score(prompt, "12 + 30 = 45 and th")


def test_save_scorer_needs_cascade(tmp_path, capsys):
    f = write_csv(tmp_path / "t.csv", synth_rows(40))
    rc = cli_router.main(["router", "cv", "--outcomes", str(f), "--weak", W, "--strong", ST,
                          "--save-scorer", str(tmp_path / "s.json")])
    assert rc == 2 and "--save-scorer" in capsys.readouterr().err


@pytest.mark.parametrize("rows,header,column,row,message", [
    ([("p1", "True", "True"), ("p2", "True")], ("prompt", W, ST), None, 3, "has 2 cells, the header has 3"),
    ([("p1", "True", "True"), ("  ", "True", "False")], ("prompt", W, ST), "prompt", 3, "empty prompt"),
    ([], ("prompt", W, ST), None, None, "has a header but no data rows"),
    ([("p1", "True", "")], ("prompt", W, ST), ST, 2, "expected a boolean (True/False), got ''"),
])
def test_malformed_tables_name_file_column_and_row(tmp_path, rows, header, column, row, message):
    a = write_csv(tmp_path / "a.csv", rows, header=header)
    with pytest.raises(OutcomeError) as e:
        load_outcomes([a], [W, ST])
    assert (e.value.file, e.value.column, e.value.row) == (str(a), column, row)
    assert message in e.value.message


def test_empty_file_and_a_column_missing_from_the_second_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(OutcomeError, match="file is empty") as e:
        load_outcomes([empty], [W, ST])
    assert e.value.file == str(empty)
    a = write_csv(tmp_path / "a.csv", [("p1", "True", "False")])
    b = write_csv(tmp_path / "b.csv", [("p2", "True")], header=("prompt", W))
    with pytest.raises(OutcomeError) as e:
        load_outcomes([a, b], [W, ST])
    assert (e.value.file, e.value.column) == (str(b), ST)


@pytest.mark.parametrize("models,costs,message", [
    (["weak", "weak"], None, "model columns repeat"),
    (["weak", "strong"], [1.0, 0.0], "cost 0.0 is not positive"),
])
def test_model_and_cost_lists_are_checked(tmp_path, models, costs, message):
    from ponder.router.training.evaluate import check_models

    t = load_outcomes([write_csv(tmp_path / "a.csv", synth_rows(10))], [W, ST])
    with pytest.raises(OutcomeError, match=message) as e:
        check_models(t, models, costs)
    assert e.value.file == str(tmp_path / "a.csv")
