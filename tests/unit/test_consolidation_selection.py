"""The extractive selection under its settings, and the consolidation bench's document split."""
from __future__ import annotations

import importlib.util
import pathlib
import random

import pytest

from ponder.consolidation.strategies.extractive import choose

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("consolidation_bench", ROOT / "bench" / "consolidation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Hand-made text: two fact sentences that a small model finds predictable (low self-information)
# among chatty filler it finds surprising. The right selection at ratio 2 is the two facts.
UNITS = [
    "Honestly the soup at lunch was rather odd and everybody grumbled about it.",
    "The locker code of Ada Holm is 4821.",
    "Someone hummed a tune nobody could place while the kettle whistled.",
    "The depot in Arlen holds 912 sacks of barley.",
]
INFO = [4.0, 2.5, 4.2, 2.6]           # mean self-information per unit, nats
TOKENS = [12, 12, 12, 12]             # 48 in all: ratio 2 leaves room for two units


def test_fact_weight_moves_the_selection_from_filler_to_facts():
    assert choose(UNITS, INFO, TOKENS, 2.0, 0.0, 0.6) == [0, 2]     # self-information alone keeps the filler
    assert choose(UNITS, INFO, TOKENS, 2.0, 8.0, 0.6) == [1, 3]     # the fact prior keeps both facts
    # A weight too small to overcome a 1.5-nat gap at density ~0.4-0.5 changes nothing.
    assert choose(UNITS, INFO, TOKENS, 2.0, 1.0, 0.6) == [0, 2]


def test_a_higher_ratio_keeps_fewer_tokens_and_the_best_facts_first():
    kept = choose(UNITS, INFO, TOKENS, 4.0, 8.0, 0.6)              # budget 12 tokens: one unit
    assert len(kept) == 1 and kept[0] in (1, 3)
    assert sum(TOKENS[i] for i in choose(UNITS, INFO, TOKENS, 1.0, 8.0, 0.6)) == sum(TOKENS)


def test_dev_and_test_documents_come_from_disjoint_seeds():
    bench = _bench()
    count = lambda s: len(s.split())  # noqa: E731 - a word count stands in for the tokenizer here
    seen = {}
    for split in ("dev", "test"):
        for seed in range(3):
            for i in range(4):
                text, facts = bench.make_document(bench.doc_rng(split, seed, i), 300, count, 0.2)
                seen.setdefault(split, set()).add(text)
    assert len(seen["dev"]) == 12 and len(seen["test"]) == 12
    assert not seen["dev"] & seen["test"]
    # The same split, seed and index give the same document.
    a = bench.make_document(bench.doc_rng("test", 0, 1), 300, count, 0.2)
    b = bench.make_document(bench.doc_rng("test", 0, 1), 300, count, 0.2)
    assert a == b
    with pytest.raises(ValueError, match="split"):
        bench.doc_rng("train", 0, 0)


def test_the_log_style_has_answerable_facts_and_capitalised_filler():
    bench = _bench()
    text, facts = bench.make_log(random.Random(3), 400, lambda s: len(s.split()), 0.3)
    assert facts and {k for *_, k in facts} <= {"person", "place"}
    keys = [key for _, _, _, key, _ in facts]
    assert len(keys) == len(set(keys))                               # every fact asked has one answer
    for sentence, _, answer, key, _ in facts:
        assert answer in sentence and key in sentence and sentence in text
        assert bench.retained(text, answer, key)
    # Its filler carries capitals that are not facts (weekdays, months), unlike the report style.
    assert any(d in text for d in bench.WEEKDAYS + bench.MONTHS)


def test_the_budget_counts_exact_repeats_so_the_ratio_is_raw_over_kept():
    from ponder.consolidation.strategies.extractive import drop_repeats, repeat_counts, select_units

    every = ["Fact 12 is here.", "Filler line.", "filler  line.", "Filler line.", "Other 7 fact."]
    assert drop_repeats(every) == ["Fact 12 is here.", "Filler line.", "Other 7 fact."]
    assert repeat_counts(every) == [1, 3, 1]
    tokens = [10, 10, 10]
    total = sum(c * t for c, t in zip(repeat_counts(every), tokens))   # 50 raw tokens
    # Ratio 2.5 of the raw text allows 20 tokens: two units. Of the de-duplicated text (30) only one.
    assert select_units([3.0, 1.0, 2.0], tokens, 2.5, total_tokens=total) == [0, 2]
    assert select_units([3.0, 1.0, 2.0], tokens, 2.5) == [0]


def test_kept_units_join_as_prose_or_one_per_line():
    from ponder.consolidation.strategies.extractive import join_units, split_units

    kept = [UNITS[1], UNITS[3]]
    assert join_units(kept, "space") == "The locker code of Ada Holm is 4821. The depot in Arlen holds 912 sacks of barley."
    lines = join_units(kept, "newline")
    assert lines.split("\n") == kept
    # Either form splits back into the same units, so a form can be consolidated again.
    assert split_units(lines) == split_units(join_units(kept, "space")) == kept
    # A unit carrying its own line break stays on one line.
    assert join_units(["a\nb.", "c."], "newline") == "a b.\nc."
    with pytest.raises(ValueError, match="unit_separator"):
        join_units(kept, "tab")


def test_unit_separator_is_checked_in_config_and_bench_settings():
    from ponder.common.config import ExtractiveSettings

    assert ExtractiveSettings().unit_separator == "space"
    with pytest.raises(ValueError, match="unit_separator"):
        ExtractiveSettings(unit_separator="tab")
    a, b = _bench().parse_settings("12:6,8:5:newline")
    assert (a.fact_weight_nats, a.target_ratio, a.unit_separator) == (12.0, 6.0, "space")
    assert (b.fact_weight_nats, b.target_ratio, b.unit_separator) == (8.0, 5.0, "newline")


def test_paired_settings_counts_discordant_questions():
    rows = [{"correct_s0": x, "correct_s1": y} for x, y in [(1, 1), (1, 0), (0, 1), (0, 1), (0, 0)]]
    p = _bench().paired_settings(rows, "s0", "s1")
    assert (p["right_first"], p["right_other"], p["right_first_only"], p["right_other_only"]) == (2, 3, 1, 2)
    assert p["accuracy_difference"] == pytest.approx(0.2)
    lo, hi = p["accuracy_difference_ci95"]
    assert lo < 0.2 < hi
