"""Query-time focusing: of a stored context, send the sentences the query is about.

The consolidated form is query-agnostic: made before any question is known, it
keeps what looks informative and must serve every later question. Once a query
arrives the router knows what is asked, and a small model reads a few relevant
sentences far better than a dense run of every kept fact (question-aware
selection, as in LongLLMLingua's coarse stage).

  1. The raw context is split into the units the ``extractive`` strategy uses
     (sentences, exact repeats dropped), grouped into passages: the sentence after
     a question joins it as its answer, and with ``follow_pronouns`` a sentence that
     opens with a pronoun joins the one before it, so a fact told in two
     sentences ("Ada Holm joined in May. Her locker code is 4821.") is one
     passage, found by the names in the first and sent with the value in the
     second. The passages are indexed with BM25 (``bm25s``; English stop words
     dropped, words reduced to their Snowball stems with ``PyStemmer``, so "hold"
     finds "holds"), once per context version (``FocusIndex``).
  2. A query's relevance to each passage is its BM25 score (``length_normalisation``
     is BM25's b: passages are short and alike in length, so 0.5, not 0.75, lest a
     fact lose to its like because a sentence joined it). The passages scoring
     at least ``min_relative_relevance`` of the best are taken, most relevant
     first, with ``neighbours`` passages either side of each, while the taken
     tokens stay within the budget: the consolidated form's own tokens, so
     focusing never sends more than the form.
  3. With ``fill`` the rest of the budget is filled with the passages the form kept.
  4. The taken passages are sent in their original order.

What the form says that the raw text does not (a ``rethink`` pass's restatement,
its likely questions and their answers) is indexed too, after the raw passages,
so a query can be sent a precomputed answer.

No passage sharing a content word with the query (best relevance 0), or a form
shorter than ``min_form_tokens`` (a short reasoning context needs every premise,
and focusing it saves little): the consolidated form is sent as it is.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

from ponder.common.config import FocusSettings
from ponder.consolidation.store import estimate_tokens
from ponder.consolidation.strategies.extractive import drop_repeats, join_units, split_units, unit_key


STOPWORDS = "en"  # bm25s's English stop-word list, for passages and queries alike

# Words that, opening a sentence, refer back to the one before it.
PRONOUNS = frozenset({"he", "she", "it", "they", "his", "her", "its", "their", "them", "this", "these", "those",
                      "such"})


def opens_with_pronoun(unit: str) -> bool:
    """Whether the unit's first word is a pronoun that refers back (``PRONOUNS``)."""
    m = _FIRST_WORD.match(unit)
    return bool(m) and m.group(1).lower() in PRONOUNS


_FIRST_WORD = re.compile(r"\W*(\w+)")


@dataclasses.dataclass(frozen=True)
class FocusIndex:
    """One context version's passages (original order), their estimated tokens, whether the
    consolidated form kept any of their sentences, and a BM25 index over them."""

    units: tuple[str, ...]
    tokens: tuple[int, ...]
    in_form: tuple[bool, ...]
    form_tokens: int
    retriever: object  # bm25s.BM25, or None when the context has no indexable words
    stemmer: object = None  # the PyStemmer stemmer the units were indexed with, or None

    def relevance(self, query: str) -> np.ndarray:
        """BM25 score of every passage for ``query`` (0 for those sharing no content word with it)."""
        import bm25s

        if self.retriever is None:
            return np.zeros(len(self.units))
        terms = bm25s.tokenize(query, stopwords=STOPWORDS, stemmer=self.stemmer, return_ids=False, show_progress=False)[0]
        if not terms:
            return np.zeros(len(self.units))
        return np.asarray(self.retriever.get_scores(terms), dtype=float)


def make_stemmer(language: str):
    """A PyStemmer stemmer for ``language`` ('english'), or None for 'none'."""
    if language == "none":
        return None
    import Stemmer

    return Stemmer.Stemmer(language)


def passages(units: list[str], follow_pronouns: bool = True) -> list[list[str]]:
    """The units grouped into passages, in order: the unit after a question (ending in '?') joins
    it, as its answer; with ``follow_pronouns`` so does a unit that opens with a pronoun
    (``PRONOUNS``); every other unit starts a passage."""
    out: list[list[str]] = []
    for u in units:
        if out and (out[-1][-1].rstrip().endswith("?") or (follow_pronouns and opens_with_pronoun(u))):
            out[-1].append(u)
        else:
            out.append([u])
    return out


def build_index(raw_text: str, form_text: str, unit: str = "sentence", stemmer: str = "english",
                follow_pronouns: bool = True, length_normalisation: float = 0.5) -> FocusIndex:
    """The focus index of a context's raw text and its consolidated form; ``stemmer`` 'english'
    or 'none', ``length_normalisation`` BM25's b. Blocking (about 10 ms per 4,000 tokens); build it
    once per context version."""
    import bm25s

    stem = make_stemmer(stemmer)
    raw_units = drop_repeats(split_units(raw_text, unit))
    form_units = drop_repeats(split_units(form_text, unit))
    groups = passages(raw_units, follow_pronouns)
    kept = {unit_key(u) for u in form_units}
    in_form = [any(unit_key(u) in kept for u in g) for g in groups]
    # What the form says that the raw text does not (a rethink pass's restatement, its questions
    # and answers) can be found too; it follows the raw passages.
    raw_keys = {unit_key(u) for u in raw_units}
    extra = passages([u for u in form_units if unit_key(u) not in raw_keys], follow_pronouns)
    groups += extra
    in_form += [True] * len(extra)
    texts = [join_units(g) for g in groups]
    retriever = None
    corpus = bm25s.tokenize(texts, stopwords=STOPWORDS, stemmer=stem, show_progress=False) if texts else None
    if corpus is not None and corpus.vocab:
        retriever = bm25s.BM25(b=length_normalisation)
        retriever.index(corpus, show_progress=False)
    return FocusIndex(tuple(texts), tuple(estimate_tokens(t) for t in texts), tuple(in_form),
                      estimate_tokens(form_text), retriever, stem)


@dataclasses.dataclass(frozen=True)
class Focused:
    """What focusing chose: the text to send (None: send the consolidated form) and why."""

    text: str | None
    units: tuple[int, ...] = ()
    reason: str = ""


def choose_units(relevance: np.ndarray, tokens: tuple[int, ...], in_form: tuple[bool, ...], budget: int,
                 settings: FocusSettings) -> list[int]:
    """Indices of the passages to send, ascending (steps 2-3 above). Empty when none is relevant.
    The most relevant passage is always taken, even over the budget; others only within it."""
    if len(relevance) == 0 or float(relevance.max()) <= 0.0:
        return []
    best = float(relevance.max())
    order = sorted(range(len(relevance)), key=lambda i: (-relevance[i], i))
    relevant = [i for i in order if relevance[i] >= settings.min_relative_relevance * best]
    taken: list[int] = []
    seen: set[int] = set()
    used = 0

    def take(i: int, force: bool = False) -> bool:
        nonlocal used
        if i in seen or not 0 <= i < len(tokens):
            return True
        if not force and used + tokens[i] > budget:
            return False
        seen.add(i)
        taken.append(i)
        used += tokens[i]
        return True

    for rank, i in enumerate(relevant):
        if not take(i, force=rank == 0):
            continue
        for d in range(1, settings.neighbours + 1):
            take(i - d)
            take(i + d)
    if settings.fill:
        for i in range(len(tokens)):
            if in_form[i]:
                take(i)
    return sorted(taken)


def skip_reason(query: str, form_tokens: int, settings: FocusSettings) -> str:
    """Why a query is sent the whole form without looking at the passages ("" when it may be focused)."""
    if not settings.enabled:
        return "focus disabled"
    if not query:
        return "no query"
    if form_tokens < settings.min_form_tokens:
        return f"form under {settings.min_form_tokens} tokens"
    return ""


def focus(index: FocusIndex, query: str, settings: FocusSettings) -> Focused:
    """The focused text of ``index``'s context for ``query``, or Focused(None) with the reason
    the consolidated form is sent whole."""
    reason = skip_reason(query, index.form_tokens, settings)
    if reason:
        return Focused(None, reason=reason)
    keep = choose_units(index.relevance(query), index.tokens, index.in_form, index.form_tokens, settings)
    if not keep:
        return Focused(None, reason="no passage shares a content word with the query")
    return Focused(join_units([index.units[i] for i in keep]), tuple(keep), f"{len(keep)} relevant passages")
