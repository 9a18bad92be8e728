"""Query-time focusing of a consolidated context: which sentences a query is sent."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings as hsettings, strategies as st

from ponder.common.config import FocusSettings
from ponder.consolidation.focus import build_index, choose_units, focus, opens_with_pronoun
from ponder.consolidation.store import estimate_tokens
from ponder.router.types import Request

FILLER = [
    "The committee reviewed the routine budget outline and agreed to return to it later.",
    "Members thanked everyone involved in the training programme for their patience.",
    "No decision on the visitor guidance was taken at the spring meeting.",
    "Several members remarked that the maintenance schedule had been familiar for some time.",
]
FACTS = [
    "The locker code of Ada Holm is 4821.",
    "The depot in Arlen holds 912 sacks of barley.",
    "The badge number of Bruno Marsh is 3307.",
    "The mill in Corvo holds 118 bales of wool.",
    "The locker code of Greta Holm is 6650.",
]


def document() -> str:
    out = []
    for i, fact in enumerate(FACTS):
        out += [FILLER[i % len(FILLER)], fact, FILLER[(i + 1) % len(FILLER)]] * 2
    return " ".join(out)


def index(form_units=FACTS):
    return build_index(document(), " ".join(form_units))


LOOSE = FocusSettings(min_form_tokens=0)


def test_a_query_is_sent_the_sentence_that_answers_it_and_little_else():
    idx = index()
    f = focus(idx, "What is the locker code of Ada Holm?", LOOSE)
    assert f.text is not None and "Ada Holm is 4821" in f.text
    assert "Arlen" not in f.text and "committee" not in f.text
    assert estimate_tokens(f.text) < idx.form_tokens
    f = focus(idx, "How many sacks of barley does the depot in Arlen hold?", LOOSE)
    assert f.text.startswith("The depot in Arlen holds 912") and "Corvo" not in f.text


def test_units_are_deduplicated_and_marked_when_the_form_kept_them():
    idx = index(FACTS[:2])
    assert len(idx.units) == len(set(idx.units)) == len(FILLER) + len(FACTS)
    kept = {u for u, k in zip(idx.units, idx.in_form) if k}
    assert kept == set(FACTS[:2])


def test_the_form_is_sent_whole_when_focusing_cannot_help():
    idx = index()
    # Nothing in the context shares a content word with the query.
    assert focus(idx, "Why is the sky blue?", LOOSE).text is None
    assert focus(idx, "", LOOSE).text is None
    # Focusing off, or a form too short to be worth focusing (a reasoning context needs every premise).
    assert focus(idx, "locker code of Ada Holm?", LOOSE.model_copy(update={"enabled": False})).text is None
    assert focus(idx, "locker code of Ada Holm?", FocusSettings(min_form_tokens=idx.form_tokens + 1)).text is None
    assert focus(idx, "locker code of Ada Holm?", FocusSettings(min_form_tokens=idx.form_tokens)).text is not None


def test_the_relevance_threshold_neighbours_and_fill():
    rel = np.array([0.0, 4.0, 0.0, 2.5, 1.0, 0.0])
    tokens = (10, 10, 10, 10, 10, 10)
    in_form = (False, True, False, False, True, True)
    s = FocusSettings(min_form_tokens=0, min_relative_relevance=0.5)
    assert choose_units(rel, tokens, in_form, 100, s) == [1, 3]                     # >= half the best
    assert choose_units(rel, tokens, in_form, 100, s.model_copy(update={"min_relative_relevance": 0.8})) == [1]
    assert choose_units(rel, tokens, in_form, 100, s.model_copy(update={"min_relative_relevance": 0.2})) == [1, 3, 4]
    assert choose_units(rel, tokens, in_form, 100, s.model_copy(update={"neighbours": 1})) == [0, 1, 2, 3, 4]
    assert choose_units(rel, tokens, in_form, 100, s.model_copy(update={"fill": True})) == [1, 3, 4, 5]
    # The budget holds: the best unit first, the next only if it fits.
    assert choose_units(rel, tokens, in_form, 15, s) == [1]
    # The best unit is sent even when it alone is over the budget.
    assert choose_units(rel, (50, 50, 10, 10, 10, 10), in_form, 20, s) == [1]
    assert choose_units(np.zeros(6), tokens, in_form, 100, s) == []


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 10), st.integers(1, 40), st.booleans()), min_size=1, max_size=30),
       st.integers(0, 400), st.floats(0.05, 1.0), st.integers(0, 3), st.booleans())
def test_choice_properties(units, budget, rel_share, neighbours, fill):
    rel = np.array([u[0] for u in units])
    tokens = tuple(u[1] for u in units)
    in_form = tuple(u[2] for u in units)
    s = FocusSettings(min_relative_relevance=rel_share, neighbours=neighbours, fill=fill)
    got = choose_units(rel, tokens, in_form, budget, s)
    if rel.max() <= 0:
        assert got == []
        return
    best = int(np.argmax(rel))
    assert got == sorted(set(got)) and best in got
    # Within the budget, except for the best unit, which is always sent.
    assert sum(tokens[i] for i in got if i != best) <= max(budget - tokens[best], 0)
    # Without neighbours or fill, only units at or above the threshold are sent.
    if neighbours == 0 and not fill:
        assert all(rel[i] >= rel_share * rel.max() for i in got)


def test_the_query_of_a_chat_is_its_last_user_turn():
    r = Request("r", "", messages=(("system", "Be brief."), ("user", "first"), ("assistant", "ok"),
                                   ("user", "What is the locker code of Ada Holm?")))
    assert r.query == "What is the locker code of Ada Holm?"
    assert Request("r", "a prompt").query == "a prompt"
    assert Request("r", "", messages=(("system", "only this"),)).query == "only this"


def test_words_match_by_their_stem_unless_stemming_is_off():
    text = "The depot holds copper wire. The geese were counted at dawn. Nothing else happened."
    stemmed, exact = build_index(text, text), build_index(text, text, stemmer="none")
    assert stemmed.relevance("what does it hold")[0] > 0 == exact.relevance("what does it hold")[0]
    assert stemmed.relevance("how many geese did they count")[1] > exact.relevance("how many geese did they count")[1] > 0


def test_a_fact_split_over_two_sentences_is_sent_whole():
    text = ("The committee met in May. Ada Holm joined the depot team in spring. Her locker code is 4821. "
            "The weather was mild. Bruno Marsh joined the archive in June. His badge code is 7730. "
            "Nothing else happened. It was agreed to meet again. The yard in Corvo was inspected.")
    idx = build_index(text, text)
    assert idx.units == (
        "The committee met in May.", "Ada Holm joined the depot team in spring. Her locker code is 4821.",
        "The weather was mild.", "Bruno Marsh joined the archive in June. His badge code is 7730.",
        "Nothing else happened. It was agreed to meet again.", "The yard in Corvo was inspected.")
    q = "Which code does Ada Holm have?"  # the names are in one sentence, the code in the next
    assert focus(idx, q, LOOSE).text == "Ada Holm joined the depot team in spring. Her locker code is 4821."
    apart = build_index(text, text, follow_pronouns=False)
    assert len(apart.units) == 9 and "4821" not in (focus(apart, q, LOOSE).text or "")
    assert [opens_with_pronoun(u) for u in ("Its code is 1.", "'They left.'", "Items: 3.", "The end.", "")] == [
        True, True, False, False, False]


def test_what_a_rethink_form_adds_can_be_sent():
    form = ("The depot in Arlen holds 912 sacks of barley. Questions and answers: How many sacks do Arlen and "
            "Corvo hold together? Arlen and Corvo together hold 1030 sacks.")
    idx = build_index(document(), form)
    # A question and the sentence after it (its answer) are one passage.
    assert idx.units[-1] == ("Questions and answers: How many sacks do Arlen and Corvo hold together? "
                             "Arlen and Corvo together hold 1030 sacks.")
    assert idx.in_form[-1] and idx.units.count("The depot in Arlen holds 912 sacks of barley.") == 1
    f = focus(idx, "How many sacks do Arlen and Corvo hold together?", LOOSE)
    assert f.text is not None and "1030" in f.text
