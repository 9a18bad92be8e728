"""bench/compute_optimal.py end to end on a scripted outcome table (a test double: answers drawn by level, no model)."""
from __future__ import annotations

import importlib.util
import json
import pathlib
import random

from ponder.tasksets import make_taskset

ROOT = pathlib.Path(__file__).resolve().parents[2]


def scripted_table(path: pathlib.Path, m: int = 6) -> None:
    """Level 1 always right, level 7 never; between, right with falling probability; one think sample each."""
    rng = random.Random(0)
    rows = []
    for q in make_taskset("arith", 42):
        p = 1.0 - (q.level - 1) / 6
        for mode, n, p_mode in (("plain", m, p), ("think", 1, min(1.0, p + 0.1))):
            for i in range(n):
                right = rng.random() < p_mode
                ans = q.answer if right else q.answer + rng.choice([1, 2, 10])
                rows.append({"id": q.id, "level": q.level, "kind": q.kind, "question": q.question, "answer": q.answer,
                             "mode": mode, "index": i, "seed": i, "text": str(ans), "thinking": "", "parsed": ans,
                             "correct": right, "finish_reason": "stop", "prompt_tokens": 30,
                             "output_tokens": 2 if mode == "plain" else 26, "thinking_tokens": 0 if mode == "plain" else 24,
                             "latency_ms": 1.0, "model": "scripted", "simulated": True})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (path.parent / (path.name + ".meta.json")).write_text(json.dumps({"temperature": 0.7, "thinking_budget": 24}))


def test_prints_one_json_object_with_the_issue_keys(tmp_path, capsys):
    table = tmp_path / "t.jsonl"
    scripted_table(table)
    spec = importlib.util.spec_from_file_location("compute_optimal", ROOT / "bench" / "compute_optimal.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    argv = ["--table", str(table), "--folds", "3", "--permutations", "50", "--classifier", "hashed-linear",
            "--plot", str(tmp_path / "p.png")]
    assert mod.main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("compute_ratio_at_equal_accuracy", "oracle_ratio", "curves"):
        assert key in out
    th = out["thinking"]
    assert set(th["share_by_bin"]) == {str(lv) for lv in range(1, 8)}
    assert 0 <= th["accuracy_policy"] <= 1 and 0 <= th["accuracy_always_think"] <= 1
    assert out["simulated"] and out["questions"] == 42 and out["samples_per_question"] == 6
    assert [n for n, _ in out["curves"]["uniform"]] == list(range(1, 7))
    # choosing n on the measured vote curves is an upper bound: it reaches uniform's best with no more samples
    assert out["hindsight_ratio"] is not None and out["hindsight_ratio"] <= 1.0 + 1e-9
    for key in ("compute_ratio_at_equal_accuracy", "oracle_ratio"):
        assert out[key] is None or out[key] > 0
    assert (tmp_path / "p.png").stat().st_size > 0
