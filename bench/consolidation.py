"""Sleep-time consolidation: query-time tokens, latency, accuracy and amortised cost, raw vs consolidated.

Two parts, both on the local CPU model (Gemma 3 270M Q4_K_M through llama.cpp):

lookup          generated documents of 2,000-8,000 tokens: meeting-report prose with fact
                sentences mixed in (--fact-share of the sentences; half stock counts by site and
                place, half personal codes), every fact asked once (up to --questions per
                document) after one example answer. Each document is consolidated once with the
                consolidator's default strategy (``extractive``) and every question is asked
                raw, from the whole consolidated form, and from the router's focused selection
                of it (``consolidation.focus``). Reported: token_reduction (raw / consolidated query-time
                prompt tokens), answer_retention (share of answers whose fact survives in the
                consolidated form), accuracy raw vs consolidated, with 95 % Wilson intervals and
                the paired difference's 95 % interval, by fact kind too, cold query latency
                (empty KV cache, one per document), amortised cost per query for 1..10 queries
                per context, and breakeven_queries (fewest queries per context at which the
                consolidated path costs less per query than raw).
stateful_gsm8k  ../shared/data/gsm8k/test.jsonl: context = every sentence but the last,
                query = the last. Each context is consolidated with ``extractive`` and with
                ``rethink`` (2 passes on a real llama.cpp pool over gRPC). Reported per
                strategy: token_reduction, consolidation cost per context, and the share of the
                context's numbers the form keeps. Accuracy needs a GPU-sized model: not here.

sweep           retention and query-time token reduction of ``extractive`` over a grid of
                fact weight x target ratio, no answering: each document is scored once and
                re-selected per setting. For choosing defaults on ``--split dev``.

Documents are seeded by ``split:seed:index``: ``--split dev`` documents (for choosing
settings) never coincide with ``--split test`` ones (reported). ``--styles log`` is a second,
independently written document style (a field-station log: other filler, whose weekdays and
months are capitals that are not facts, and facts in several phrasings) to check that the
defaults do not know the report generator; ``--styles memo`` a third (an office memo whose facts
span two sentences, the value in the second, which opens with a pronoun). ``--settings fw:ratio[:separator],...`` answers every
question under several extractive settings in one run (scored once), ``--focus rel:neighbours:fill,...``
under several focus settings (``consolidation.focus``, on the first setting's form).

The lookup's top-level figures are the served arm's: what the router sends for a query on a
consolidated context, the focused selection (the first focus setting), or the first setting's form
with ``--focus off``. ``query_agnostic`` reports the first setting's whole form; with more than one
arm, ``by_setting`` reports each and ``paired_vs_served`` pairs each with the served arm question by
question.

Costs are in compute units at the default small pool's prices (0.1 per prompt token,
1.0 per output token). Prints one JSON object last.

Usage: python bench/consolidation.py [--docs 4] [--min-doc-tokens 2000] [--max-doc-tokens 8000] [--questions 40]
       [--fact-share 0.2] [--gsm8k 10] [--parts lookup,gsm8k,sweep] [--split test] [--seed 0]
       [--styles report] [--settings 8:6,12:6] [--sweep-weights 0,4,8] [--sweep-ratios 5,6] [--plot out.png]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import statistics
import sys
import time

sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "services"))

from ponder.common.stats import wilson  # noqa: E402
from ponder.common.config import (  # noqa: E402
    Cost, ConsolidatorConfig, ExtractiveSettings, FocusSettings, LlamaCppBackend, PoolConfig,
)
from ponder.consolidation.focus import build_index, focus  # noqa: E402
from ponder.consolidation.strategies.base import StepContext  # noqa: E402
from ponder.consolidation.strategies.extractive import (  # noqa: E402
    Extractive, SelfInformationScorer, split_units,
)
from ponder.consolidation.strategies.rethink import Rethink  # noqa: E402
from ponder.pools.models import ensure_default_gguf  # noqa: E402

GSM8K = __import__("pathlib").Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
COST = Cost()  # the default small pool's prices
PLACES = ["Arlen", "Brisk", "Corvo", "Dunmere", "Eskel", "Farrow", "Gantry", "Hollis", "Ilvan", "Jorvik", "Kestrel",
          "Lumen", "Marrow", "Norwick", "Oster", "Pellam", "Quarry", "Rusk", "Selden", "Tarvik", "Ulmer", "Varga",
          "Wexley", "Yarrow", "Zenith", "Ashby", "Bramble", "Cinder", "Delft", "Elmsworth", "Fennick", "Galloway"]
SITES = ["depot", "warehouse", "harbour store", "mill", "archive", "workshop", "granary", "yard"]
GOODS = ["crates of copper wire", "barrels of lamp oil", "sacks of barley", "rolls of canvas", "boxes of glass jars",
         "coils of rope", "bales of wool", "chests of tea", "cases of ink", "bundles of cedar planks"]
FIRST = ["Ada", "Bruno", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ingrid", "Jonas", "Kira", "Lars", "Mina",
         "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wim", "Yuri", "Zora"]
LAST = ["Holm", "Brandt", "Okafor", "Marsh", "Petrov", "Lund", "Castell", "Iversen", "Nakamura", "Ferro", "Quill",
        "Dane", "Sato", "Weller", "Ruiz", "Aalto"]
CODES = ["locker code", "badge number", "desk extension", "parking permit number"]
FILLER = [
    "The {team} reviewed the {adj} {topic} at the {period} meeting and agreed to return to it later.",
    "As in previous years, the {team} noted that the {topic} remained {adj} and asked for a short update.",
    "Members of the {team} thanked everyone involved in the {topic} for their patience during the {period} review.",
    "It was agreed that the {adj} {topic} would be discussed again once the {team} had gathered more views.",
    "The {team} also heard a brief report on the {topic}, which was described as {adj} but broadly on track.",
    "No decision on the {topic} was taken, and the {team} will revisit the matter at the {period} meeting.",
    "Several members of the {team} remarked that the {topic} had been {adj} for some time.",
]
SLOTS = {
    "team": ["committee", "board", "working group", "steering group", "council", "panel"],
    "adj": ["ongoing", "routine", "general", "familiar", "usual", "standing", "regular"],
    "topic": ["staffing plan", "maintenance schedule", "budget outline", "safety review", "training programme",
              "records policy", "supplier list", "visitor guidance"],
    "period": ["spring", "summer", "autumn", "winter", "quarterly", "annual", "monthly"],
}
# The answer format shown once before the notes (its fact is not in any document).
EXAMPLE = ("Notes: The gate key of Anna Berg is 5512. The weather was mild.\n"
           "Question: What is the gate key of Anna Berg?\nAnswer: 5512\n\n")


# A second document style, written apart from the first for the dev check that the fact prior does
# not know the generator: a field-station log whose filler names weekdays and months (capitals that
# are not facts) and whose facts come in several phrasings with the value anywhere in the sentence.
LOG_PLACES = ["Aldergrove", "Birchwater", "Coldharbour", "Deepdale", "Eastmarsh", "Foxhollow", "Greystone",
              "Hawkridge", "Ironbridge", "Juniper Flats", "Kingsmoor", "Longmere", "Millbrook", "Northfold",
              "Oakenshaw", "Pinecrest", "Redcliff", "Stonyford", "Thornbury", "Upwell", "Westerby", "Yewdale"]
LOG_PEOPLE = [(f, la) for f in ["Amara", "Benedikt", "Celine", "Desmond", "Esther", "Florin", "Gideon", "Helka",
                                "Isidro", "Jasmin", "Konrad", "Leonie", "Matteo", "Noor", "Orla", "Piet"]
              for la in ["Abernathy", "Bergstrom", "Cavalcanti", "Dubois", "Eriksen", "Fairweather", "Gallo",
                         "Haddad", "Ishikawa", "Jankowski", "Kowalczyk", "Lindqvist"]]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["March", "April", "May", "June", "July", "August", "September", "October"]
LOG_FILLER = [
    "On {day} the wind picked up after lunch and {who} stayed near the huts.",
    "The {thing} in the main hut broke again, and {day} was spent looking for a spare one.",
    "Everyone agreed that the {month} weather had been kinder than {who} expected.",
    "A long talk about the {thing} ended, as usual, without {who} changing anything.",
    "By {day} evening the path behind the store had turned to mud, which annoyed {who}.",
    "The supply boat was late in {month}, so {who} made do with what was left in the pantry.",
    "Nothing much happened on {day} apart from {who} arguing about the {thing}.",
    "Someone suggested fixing the {thing} before {month}, and {who} quietly forgot the idea.",
]
LOG_WHO = ["most of the crew", "the cook", "the two students", "the night shift", "the skipper", "the new volunteer",
           "nobody in particular", "the older hands"]
LOG_THINGS = ["kettle", "generator", "radio", "stove", "water pump", "boat engine", "weather vane", "solar panel"]
LOG_PERSON_FACTS = [
    ("{first} {last} now sleeps in cabin {n}.", "Which cabin does {first} {last} sleep in?"),
    ("Cabin {n} was handed to {first} {last} on {day}.", "Which cabin was handed to {first} {last}?"),
    ("After the move, {first} {last} took the radio channel {n}.", "Which radio channel did {first} {last} take?"),
]
LOG_PLACE_FACTS = [
    ("The gauge at {place} read {n} millimetres of rain for {month}.", "How many millimetres did the gauge at {place} read?"),
    ("In {month} we counted {n} geese on the water near {place}.", "How many geese were counted near {place}?"),
    ("Trail marker {n} stands where the path to {place} leaves the road.", "Which trail marker stands on the path to {place}?"),
]


# A third style, for the check that focusing keeps facts split over two sentences: an office memo
# whose facts name their entity in one sentence and give the value in the next, which opens with
# a pronoun ("Nadia Brooks has moved to the audit team. Their desk phone is now 4471.").
MEMO_FILLER = [
    "Please remember that the {room} will be closed for cleaning on {day}.",
    "Thanks again to everyone who helped with the {event} last week.",
    "A reminder that expense forms are due at the end of {month}.",
    "The printer in the {room} is still waiting for a new part.",
    "If you have ideas for the {event}, please pass them on to the organisers.",
    "Coffee supplies in the {room} have been restocked, so help yourselves.",
    "Parking near the main entrance will be limited during the {event}.",
]
MEMO_SLOTS = {"room": ["kitchen", "meeting room", "library", "front office", "basement store", "lounge"],
              "event": ["open day", "charity run", "quiz night", "summer picnic", "staff survey", "fire drill"]}
MEMO_FIRST = ["Nadia", "Oscar", "Priya", "Rafael", "Saskia", "Tobias", "Uma", "Viktor", "Wanda", "Xavier", "Yasmin",
              "Zeno", "Agnes", "Boris", "Chiara", "Dario"]
MEMO_LAST = ["Brooks", "Carver", "Delacroix", "Ellison", "Fontaine", "Grady", "Hargrove", "Ingram", "Jessop", "Kendrick",
             "Lowry", "Mercer"]
MEMO_TEAMS = ["audit", "payroll", "logistics", "research", "facilities", "legal"]
MEMO_ATTRS = ["desk phone", "room number", "pager code", "cabinet key number"]
MEMO_STORES = ["stockroom", "depot", "cold store", "loading bay"]
MEMO_TOWNS = ["Ashcombe", "Bexley", "Carrow", "Dunholme", "Edgeley", "Fenwick", "Glossop", "Harwich", "Ilkley", "Jarrow",
              "Keswick", "Ludlow", "Malton", "Nantwich", "Otley", "Penrith", "Ripon", "Selby", "Thirsk", "Ulverston"]
MEMO_ITEMS = ["reams of paper", "boxes of toner", "chairs", "folding tables", "first aid kits", "laptops"]


def assemble(rng: random.Random, target_tokens: int, count_tokens, fact_share: float, fact, filler,
             facts_left=lambda: True):
    """(text, facts): sentences until ``target_tokens``, each a fact (``fact()``, a (text, question,
    answer, key, kind) tuple) with probability ``fact_share`` while ``facts_left()``, else ``filler()``."""
    sentences, facts, tokens = [], [], 0
    while tokens < target_tokens:
        if rng.random() < fact_share and facts_left():
            f = fact()
            facts.append(f)
            s = f[0]
        else:
            s = filler()
        sentences.append(s)
        tokens += count_tokens(s)
    return " ".join(sentences), facts


def memo_fact(rng: random.Random, people: list, stores: list):
    n = rng.randint(101, 9899)
    if rng.random() < 0.5:
        first, last = people.pop()
        attr = rng.choice(MEMO_ATTRS)
        text = f"{first} {last} has moved to the {rng.choice(MEMO_TEAMS)} team. Their {attr} is now {n}."
        return text, f"What is the {attr} of {first} {last}?", str(n), f"{first} {last}", "person"
    store, town = stores.pop()
    items = rng.choice(MEMO_ITEMS)
    text = f"The {store} in {town} was checked on {rng.choice(WEEKDAYS)}. It now holds {n} {items}."
    return text, f"How many {items} does the {store} in {town} hold?", str(n), town, "place"


def make_memo(rng: random.Random, target_tokens: int, count_tokens, fact_share: float = 0.15):
    """(text, facts) in the memo style (see MEMO_FILLER); same contract as ``make_document``, but a
    fact's text is two sentences and its value is in the second."""
    people = [(f, la) for f in MEMO_FIRST for la in MEMO_LAST]
    stores = [(s, t) for s in MEMO_STORES for t in MEMO_TOWNS]
    rng.shuffle(people)
    rng.shuffle(stores)
    return assemble(rng, target_tokens, count_tokens, fact_share, lambda: memo_fact(rng, people, stores),
                    lambda: rng.choice(MEMO_FILLER).format(day=rng.choice(WEEKDAYS), month=rng.choice(MONTHS),
                                                           **{k: rng.choice(v) for k, v in MEMO_SLOTS.items()}),
                    lambda: bool(people and stores))


def doc_rng(split: str, seed: int, index: int) -> random.Random:
    """The generator of one document: seeded by the string ``split:seed:index``, so the dev and
    test splits draw from disjoint seeds whatever ``seed`` and ``index`` are. ValueError for a
    split other than dev or test."""
    if split not in ("dev", "test"):
        raise ValueError(f"split must be dev or test, not {split!r}")
    return random.Random(f"{split}:{seed}:{index}")


def log_fact(rng: random.Random, people: list, places: list):
    day, month, n = rng.choice(WEEKDAYS), rng.choice(MONTHS), rng.randint(12, 9899)
    if rng.random() < 0.5:
        first, last = people.pop()
        s, q = rng.choice(LOG_PERSON_FACTS)
        key, kind = f"{first} {last}", "person"
    else:
        place = places.pop()
        s, q = rng.choice(LOG_PLACE_FACTS)
        first = last = ""
        key, kind = place, "place"
    f = {"first": first, "last": last, "place": key, "day": day, "month": month, "n": n}
    return s.format(**f), q.format(**f), str(n), key, kind


def make_log(rng: random.Random, target_tokens: int, count_tokens, fact_share: float = 0.15):
    """(text, facts) in the field-log style (see LOG_FILLER); same contract as ``make_document``."""
    people, places = list(LOG_PEOPLE), [f"{p} {k}" for p in LOG_PLACES for k in ("Lake", "Ridge", "Point", "Bay")]
    rng.shuffle(people)
    rng.shuffle(places)
    return assemble(rng, target_tokens, count_tokens, fact_share, lambda: log_fact(rng, people, places),
                    lambda: rng.choice(LOG_FILLER).format(day=rng.choice(WEEKDAYS), month=rng.choice(MONTHS),
                                                          who=rng.choice(LOG_WHO), thing=rng.choice(LOG_THINGS)),
                    lambda: bool(people and places))


def stock_fact(rng: random.Random, keys: list):
    (place, site), goods, n = keys.pop(), rng.choice(GOODS), rng.randint(101, 9899)
    return (f"The {site} in {place} holds {n} {goods}.", f"How many {goods} does the {site} in {place} hold?",
            str(n), place, "stock")


def code_fact(rng: random.Random, keys: list):
    (first, last), code, n = keys.pop(), rng.choice(CODES), rng.randint(1000, 9999)
    return (f"The {code} of {first} {last} is {n}.", f"What is the {code} of {first} {last}?",
            str(n), f"{first} {last}", "code")


def make_document(rng: random.Random, target_tokens: int, count_tokens, fact_share: float = 0.15):
    """(text, facts): meeting-report prose with fact sentences mixed in at about ``fact_share``
    of the sentences, half stock counts (site, place, goods, number) and half personal codes
    (code kind, person, number); each fact is (sentence, question, answer, key, kind) with a
    unique key (place+site, or person)."""
    stock_keys = [(p, s) for p in PLACES for s in SITES]
    people = [(f, la) for f in FIRST for la in LAST]
    rng.shuffle(stock_keys)
    rng.shuffle(people)
    return assemble(rng, target_tokens, count_tokens, fact_share,
                    lambda: stock_fact(rng, stock_keys) if rng.random() < 0.5 else code_fact(rng, people),
                    lambda: rng.choice(FILLER).format(**{k: rng.choice(v) for k, v in SLOTS.items()}))


def prompt(context: str, question: str) -> str:
    return (f"Answer each question with the number from the notes.\n\n{EXAMPLE}"
            f"Notes: {context}\nQuestion: {question}\nAnswer:")


def client_prompt(question: str) -> str:
    """What a client sends the router with the context's id: the prompt without the notes. Focusing
    reads all of it (instruction and example too), as the router does."""
    return prompt("", question).replace("Notes: \n", "")


class Answerer:
    """The local model answering questions (greedy, a few tokens)."""

    def __init__(self, path: str, n_ctx: int):
        from llama_cpp import Llama

        # swa_full: Gemma 3's sliding-window layers keep the whole context, so a document's KV
        # cache can be cut back to its prefix and reused by its next question (without it,
        # llama.cpp cannot remove part of a sliding-window cache and re-reads more).
        self.llm = Llama(model_path=path, n_ctx=n_ctx, n_batch=512, verbose=False, swa_full=True)

    def tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=True))

    def ask(self, text: str, cold: bool = False) -> tuple[str, int, int, float]:
        """(answer, prompt tokens, output tokens, latency ms); ``cold`` empties the KV cache first."""
        if cold:
            self.llm.reset()
        t0 = time.perf_counter()
        out = self.llm.create_completion(text, max_tokens=6, temperature=0.0, stop=["\n"])
        ms = (time.perf_counter() - t0) * 1000
        u = out["usage"]
        return out["choices"][0]["text"], u["prompt_tokens"], u["completion_tokens"], ms


def paired_diff(a: list[bool], b: list[bool], z: float = 1.96) -> tuple[float, list[float]]:
    """Mean of b - a over paired items and its 95 % normal interval."""
    d = [int(y) - int(x) for x, y in zip(a, b)]
    m = statistics.mean(d)
    se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else 1.0
    return m, [m - z * se, m + z * se]


def first_number(text: str) -> str:
    """The first run of digits in a model's answer ('' when none): '4821' in ' 4821.' but not in '14821'."""
    m = re.search(r"\d+", text)
    return m.group(0) if m else ""


def retained(form: str, answer: str, key: str, fact: str = "") -> bool:
    """Whether some sentence or line of ``form`` still names the fact's key (place or person) and its
    number; for a ``fact`` of several sentences (the memo style), whether all of it is there in order."""
    if len(split_units(fact)) > 1:
        return " ".join(fact.split()) in " ".join(form.split())
    return any(answer in s and key in s for s in re.split(r"(?<=[.!?])\s+|\n+", form))


def cost_per_query(prompt_tokens: float, output_tokens: float, consolidation_cu: float = 0.0, queries: int = 1) -> float:
    return COST.units(prompt_tokens, output_tokens) + consolidation_cu / queries


def parse_settings(spec: str | None) -> list[ExtractiveSettings]:
    """``fact_weight:ratio[:separator],...`` as extractive settings (the rest default; separator
    'space' or 'newline'); none: the default alone."""
    base = ConsolidatorConfig().extractive
    if not spec:
        return [base]
    out = []
    for item in spec.split(","):
        fw, ratio, *sep = item.split(":")
        update = {"fact_weight_nats": float(fw), "target_ratio": float(ratio)}
        if sep:
            update["unit_separator"] = sep[0]
        out.append(ExtractiveSettings.model_validate({**base.model_dump(), **update}))
    return out


def documents(args, count_tokens, style: str):
    """The split's documents: (size, text, facts) with sizes spread over the token range."""
    lo, hi = args.min_doc_tokens, args.max_doc_tokens
    sizes = [round(lo + i * (hi - lo) / max(args.docs - 1, 1)) for i in range(args.docs)]
    make = {"log": make_log, "memo": make_memo}.get(style, make_document)
    for i, size in enumerate(sizes):
        rng = doc_rng(args.split, args.seed, i)
        text, facts = make(rng, size, count_tokens, args.fact_share)
        yield size, text, facts, rng


def consolidate(scorer: SelfInformationScorer, text: str, settings: list[ExtractiveSettings]):
    """The extractive form of ``text`` under each setting, scoring once: (forms, tokens scored, seconds)."""
    t0 = time.perf_counter()
    scored = scorer.score(text)
    return [scored.select(st)[0] for st in settings], scored.scored, time.perf_counter() - t0


def sweep(args, path: str) -> dict:
    """Retention and query-time token reduction over fact weight x target ratio (no answering)."""
    from llama_cpp import Llama

    vocab = Llama(model_path=path, vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(vocab.tokenize(text.encode(), add_bos=True))

    grid = [(fw, ratio) for fw in args.sweep_weights for ratio in args.sweep_ratios]
    settings = parse_settings(",".join(f"{fw}:{r}" for fw, r in grid))
    scorer = SelfInformationScorer(settings[0])
    out = {}
    for style in args.styles:
        per = {g: {"kept": 0, "facts": 0, "pt_raw": [], "pt_cons": []} for g in grid}
        for size, text, facts, _ in documents(args, lambda t: count(t) - 1, style):
            forms, _, secs = consolidate(scorer, text, settings)
            for g, form in zip(grid, forms):
                acc = per[g]
                acc["kept"] += sum(retained(form, a, key, f) for f, _, a, key, _ in facts)
                acc["facts"] += len(facts)
                for _, q, _, _, _ in facts[:5]:
                    acc["pt_raw"].append(count(prompt(text, q)))
                    acc["pt_cons"].append(count(prompt(form, q)))
            print(f"sweep {style} doc ~{size} tokens, {len(facts)} facts, scored in {secs:.0f}s", file=sys.stderr, flush=True)
        out[style] = {f"{fw}:{r}": {"answer_retention": a["kept"] / a["facts"],
                                    "token_reduction": statistics.mean(a["pt_raw"]) / statistics.mean(a["pt_cons"])}
                      for (fw, r), a in per.items()}
    scorer.close()
    return {"split": args.split, "seed": args.seed, "docs": args.docs, "by_style": out}


def parse_focus(spec: str | None) -> list[FocusSettings]:
    """``min_relative_relevance:neighbours:fill[:stemmer[:follow_pronouns[:length_normalisation]]],...``
    as focus settings (fill and follow_pronouns 0 or 1, stemmer english or none; the rest default);
    none: the default alone; 'off': no focused arm."""
    base = ConsolidatorConfig().focus
    if spec == "off":
        return []
    if not spec:
        return [base]
    out = []
    for item in spec.split(","):
        rel, nb, fill, *rest = item.split(":")
        extra: dict = dict(zip(("stemmer", "follow_pronouns", "length_normalisation"), rest))
        if "follow_pronouns" in extra:
            extra["follow_pronouns"] = extra["follow_pronouns"] == "1"
        if "length_normalisation" in extra:
            extra["length_normalisation"] = float(extra["length_normalisation"])
        out.append(FocusSettings.model_validate({**base.model_dump(), "min_relative_relevance": float(rel),
                                                 "neighbours": int(nb), "fill": fill == "1", **extra}))
    return out


def index_key(fs: FocusSettings) -> tuple:
    """The focus settings a context's index depends on, in ``build_index``'s order."""
    return fs.stemmer, fs.follow_pronouns, fs.length_normalisation


async def lookup(args, path: str) -> dict:
    """Every question answered from the raw text, from each extractive setting's form, and (the
    router's path) from each focus setting's selection, built on the first setting's form."""
    answerer = Answerer(path, n_ctx=args.max_doc_tokens + 512)
    settings = parse_settings(args.settings)
    focus_settings = parse_focus(args.focus)
    scorer = SelfInformationScorer(settings[0])
    form_names = [f"s{j}" for j in range(len(settings))]
    focus_names = [f"f{j}" for j in range(len(focus_settings))]
    names = ["raw", *form_names, *focus_names]
    rows, docs, sizes = [], [], []
    for size, text, facts, rng in documents(args, lambda s: answerer.tokens(s) - 1, args.styles[0]):
        sizes.append(size)
        forms, scored, cons_s = consolidate(scorer, text, settings)
        qs = rng.sample(facts, min(args.questions, len(facts)))
        doc = {"raw_context_tokens": answerer.tokens(text), "facts": len(facts), "consolidation_s": cons_s,
               "consolidation_cu": scored * settings[0].prompt_token_cu}
        indexes = {index_key(fs): build_index(text, forms[0], settings[0].unit, *index_key(fs)) for fs in focus_settings}
        # What each arm sends for each question: raw and the forms are the same for every question
        # of a document; a focused arm's selection is the question's own.
        contexts = {"raw": [text] * len(qs), **{n: [f] * len(qs) for n, f in zip(form_names, forms)}}
        for n, fs in zip(focus_names, focus_settings):
            index = indexes[index_key(fs)]
            contexts[n] = [focus(index, client_prompt(q), fs).text or forms[0] for _, q, _, _, _ in qs]
        base = len(rows)
        rows += [{"size": size, "kind": kind} for _, _, _, _, kind in qs]
        for name in names:
            sent = contexts[name]
            if name != "raw":
                doc[f"context_tokens_{name}"] = statistics.mean(answerer.tokens(c) for c in sent)
                for k, (f, _, a, key, _) in enumerate(qs):
                    rows[base + k][f"retained_{name}"] = retained(sent[k], a, key, f)
            # The first question reads the whole context (empty KV cache): its latency is the
            # cold query latency. Later questions reuse what the cache shares with them, as a
            # server would (the whole context for raw and the forms); warm latency is their mean.
            warm = []
            for k, (_, q, a, _, _) in enumerate(qs):
                out, pt, ot, ms = answerer.ask(prompt(sent[k], q), cold=k == 0)
                if k == 0:
                    doc[f"cold_latency_ms_{name}"] = ms
                else:
                    warm.append(ms)
                rows[base + k].update({f"correct_{name}": first_number(out) == a, f"prompt_tokens_{name}": pt,
                                       f"output_tokens_{name}": ot})
            doc[f"warm_latency_ms_{name}"] = statistics.mean(warm) if warm else None
            right = sum(r[f"correct_{name}"] for r in rows[base:])
            print(f"lookup doc ~{size} tokens, {name}: {right}/{len(qs)} right", file=sys.stderr, flush=True)
        docs.append(doc)
        print(f"lookup doc ~{size} tokens: {doc}", file=sys.stderr, flush=True)
    scorer.close()
    results = {}
    for name in names[1:]:
        j = int(name[1:])
        results[name] = (summarise(rows, docs, name, settings[j]) if name[0] == "s"
                         else summarise(rows, docs, name, settings[0], focus_settings[j]))
    head = {"documents": len(docs), "questions": len(rows), "doc_tokens": sizes, "split": args.split,
            "seed": args.seed, "style": args.styles[0]}
    # The headline is what the router serves: the first focus setting's arm when focusing is on.
    served = focus_names[0] if focus_names and focus_settings[0].enabled else form_names[0]
    out = {**head, "served": served, **results[served], "query_agnostic": results[form_names[0]]}
    if len(results) > 2 or (len(results) == 2 and served == form_names[0]):
        out["by_setting"] = [{"arm": n, **r} for n, r in results.items()]
        out["paired_vs_served"] = [paired_settings(rows, served, n) for n in names[1:] if n != served]
    return out


def paired_settings(rows: list[dict], first: str, other: str) -> dict:
    """Two extractive settings on the same questions: how many each alone got right (the discordant
    pairs), and the accuracy difference (other - first) with its 95 % paired interval."""
    a = [r[f"correct_{first}"] for r in rows]
    b = [r[f"correct_{other}"] for r in rows]
    diff, ci = paired_diff(a, b)
    return {"first": first, "other": other, "right_first": sum(a), "right_other": sum(b),
            "right_first_only": sum(x and not y for x, y in zip(a, b)),
            "right_other_only": sum(y and not x for x, y in zip(a, b)),
            "accuracy_difference": diff, "accuracy_difference_ci95": ci}


def summarise(rows: list[dict], docs: list[dict], name: str, st: ExtractiveSettings,
              fs: FocusSettings | None = None) -> dict:
    """The lookup report of one arm (column ``name``: an extractive setting's form, or with ``fs`` the
    focused selection built on it) against the raw answers."""

    def mean(key):
        return statistics.mean(r[key] for r in rows)

    pt_raw, pt_cons = mean("prompt_tokens_raw"), mean(f"prompt_tokens_{name}")
    ot_raw, ot_cons = mean("output_tokens_raw"), mean(f"output_tokens_{name}")
    cu_ctx = statistics.mean(d["consolidation_cu"] for d in docs)
    raw_cost = cost_per_query(pt_raw, ot_raw)
    amortised = {q: cost_per_query(pt_cons, ot_cons, cu_ctx, q) for q in range(1, 11)}
    breakeven = next((q for q in range(1, 11) if amortised[q] < raw_cost), None)
    n = len(rows)
    raw_ok = [r["correct_raw"] for r in rows]
    cons_ok = [r[f"correct_{name}"] for r in rows]
    diff, diff_ci = paired_diff(raw_ok, cons_ok)
    by_kind = {}
    for kind in sorted({r["kind"] for r in rows}):
        sub = [r for r in rows if r["kind"] == kind]
        by_kind[kind] = {"questions": len(sub), "answer_retention": statistics.mean(r[f"retained_{name}"] for r in sub),
                         "accuracy_raw": statistics.mean(r["correct_raw"] for r in sub),
                         "accuracy_consolidated": statistics.mean(r[f"correct_{name}"] for r in sub)}
    # Retained but answered wrong when the raw answer was right: the model misreads the denser text.
    misread = sum(r["correct_raw"] and r[f"retained_{name}"] and not r[f"correct_{name}"] for r in rows)
    return {
        "answer_retention_ci95": wilson(sum(r[f"retained_{name}"] for r in rows), n),
        "accuracy_raw_ci95": wilson(sum(raw_ok), n),
        "accuracy_consolidated_ci95": wilson(sum(cons_ok), n),
        "accuracy_difference": diff, "accuracy_difference_ci95": diff_ci,
        "right_raw_wrong_consolidated_though_retained": misread,
        "by_fact_kind": by_kind,
        "token_reduction": pt_raw / pt_cons,
        "context_token_reduction": statistics.mean(d["raw_context_tokens"] for d in docs)
        / statistics.mean(d[f"context_tokens_{name}"] for d in docs),
        "answer_retention": mean(f"retained_{name}"),
        "accuracy_raw": mean("correct_raw"), "accuracy_consolidated": mean(f"correct_{name}"),
        "prompt_tokens_raw": pt_raw, "prompt_tokens_consolidated": pt_cons,
        "cold_latency_ms_raw": statistics.mean(d["cold_latency_ms_raw"] for d in docs),
        "cold_latency_ms_consolidated": statistics.mean(d[f"cold_latency_ms_{name}"] for d in docs),
        "warm_latency_ms_raw": statistics.mean(d["warm_latency_ms_raw"] for d in docs if d["warm_latency_ms_raw"]),
        "warm_latency_ms_consolidated": statistics.mean(
            d[f"warm_latency_ms_{name}"] for d in docs if d[f"warm_latency_ms_{name}"]),
        "consolidation_cu_per_context": cu_ctx,
        "consolidation_s_per_context": statistics.mean(d["consolidation_s"] for d in docs),
        "raw_cost_per_query": raw_cost,
        "amortised_cost_per_query": {str(q): v for q, v in amortised.items()},
        "breakeven_queries": breakeven,
        "strategy": "extractive",
        "extractive_settings": st.model_dump(exclude={"model_path", "n_threads"}),
        "focus_settings": fs.model_dump(exclude={"cache_contexts", "cache_chars"}) if fs is not None else None,
    }


def split_problem(question: str) -> tuple[str, str]:
    parts = [p for p in re.split(r"(?<=[.!?])\s+", question.strip()) if p]
    return " ".join(parts[:-1]), parts[-1]


async def stateful_gsm8k(args, path: str) -> dict:
    from ponder.common.grpcutil import stop_server
    from ponder.common.telemetry import Tracing
    from ponder.pools.servicer import SERVICE, start_standalone
    from ponder.router.clients import PoolClient

    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()[: args.gsm8k * 3]]
    problems = [split_problem(r["question"]) for r in rows]
    problems = [(c, q) for c, q in problems if c][: args.gsm8k]
    pool = PoolConfig(name="small", backend=LlamaCppBackend(model_path=path, n_ctx=2048))
    server, port, engine, health = await start_standalone(pool, "127.0.0.1:0", Tracing("bench", simple=True))
    client = PoolClient("small", f"127.0.0.1:{port}", route=())
    settings = ConsolidatorConfig(rethink={"max_pass_tokens": args.rethink_tokens})
    ctx = StepContext(pool="small", client=client, cost=COST, settings=settings)
    answerer_tokens = engine.backend.count_tokens
    out = {}
    try:
        for name, strategy, passes in (("extractive", Extractive(settings.extractive), 1),
                                       ("rethink", Rethink(settings.rethink), 2)):
            per = []
            for context, query in problems:
                text, cu, t0 = context, 0.0, time.perf_counter()
                for step in range(strategy.steps(passes)):
                    r = await strategy.run_step(step, text, ctx)
                    text, cu = r.text, cu + r.compute_units
                nums = re.findall(r"\d+(?:\.\d+)?", context)
                per.append({
                    "raw": answerer_tokens(f"{context}\n{query}"), "cons": answerer_tokens(f"{text}\n{query}"),
                    "cu": cu, "s": time.perf_counter() - t0,
                    "numbers_kept": statistics.mean(n in text for n in nums) if nums else 1.0,
                })
            await strategy.close()
            out[name] = {
                "token_reduction": statistics.mean(p["raw"] for p in per) / statistics.mean(p["cons"] for p in per),
                "consolidation_cu_per_context": statistics.mean(p["cu"] for p in per),
                "consolidation_s_per_context": statistics.mean(p["s"] for p in per),
                "number_retention": statistics.mean(p["numbers_kept"] for p in per),
                "query_prompt_tokens_raw": statistics.mean(p["raw"] for p in per),
                "query_prompt_tokens_consolidated": statistics.mean(p["cons"] for p in per),
            }
            print(f"gsm8k {name}: {out[name]}", file=sys.stderr, flush=True)
    finally:
        await client.close()
        await stop_server(server, health, [SERVICE], 0)
        await engine.close()
    default = ConsolidatorConfig().default_strategy
    return {"problems": len(problems), "strategy": default, **out[default], "by_strategy": out,
            "accuracy": None, "accuracy_note": "needs a GPU-sized model; the 270M CPU model scores near zero"}


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=4, help="lookup documents, sizes spread over 2,000..--max-doc-tokens")
    ap.add_argument("--min-doc-tokens", type=int, default=2000)
    ap.add_argument("--max-doc-tokens", type=int, default=8000)
    ap.add_argument("--fact-share", type=float, default=0.2, help="share of a document's sentences that are facts")
    ap.add_argument("--parts", default="lookup,gsm8k", help="comma-separated: lookup, gsm8k, sweep")
    ap.add_argument("--questions", type=int, default=40, help="questions per document (at most its facts)")
    ap.add_argument("--gsm8k", type=int, default=10, help="GSM8K problems")
    ap.add_argument("--rethink-tokens", type=int, default=96, help="rethink max tokens per pass (GSM8K)")
    ap.add_argument("--seed", type=int, default=0, help="documents are seeded by split:seed:index")
    ap.add_argument("--split", choices=["dev", "test"], default="test",
                    help="dev: documents for choosing defaults; test: the reported ones (disjoint seeds)")
    ap.add_argument("--styles", default="report", help="document styles, comma-separated: report, log, memo (lookup: the first)")
    ap.add_argument("--settings", help="lookup: extractive settings to compare, fact_weight:ratio[:space|newline],... "
                    "(default: the defaults)")
    ap.add_argument("--focus", help="lookup: focus settings to compare, "
                    "min_relative_relevance:neighbours:fill(0|1)[:english|none[:follow_pronouns(0|1)[:bm25_b]]],... "
                    "built on the first extractive setting's form (default: the defaults; 'off': none)")
    ap.add_argument("--sweep-weights", default="0,2,4,6,8,12", help="sweep: fact weights (nats)")
    ap.add_argument("--sweep-ratios", default="5,5.5,6,6.5,7", help="sweep: target ratios")
    ap.add_argument("--plot", help="write the amortised-cost plot here (PNG)")
    args = ap.parse_args(argv)
    args.styles = args.styles.split(",")
    args.sweep_weights = [float(x) for x in args.sweep_weights.split(",")]
    args.sweep_ratios = [float(x) for x in args.sweep_ratios.split(",")]
    path = str(ensure_default_gguf())
    t0 = time.perf_counter()
    parts = set(args.parts.split(","))
    result: dict = {"model": "gemma-3-270m Q4_K_M (llama.cpp, CPU)"}
    if "sweep" in parts:
        result["sweep"] = sweep(args, path)
    if "lookup" in parts:
        result["lookup"] = await lookup(args, path)
    if "gsm8k" in parts:
        result["stateful_gsm8k"] = await stateful_gsm8k(args, path)
    result["wall_s"] = time.perf_counter() - t0
    if args.plot and "lookup" in result:
        import matplotlib.pyplot as plt

        lk = result["lookup"]
        qs = list(range(1, 11))
        plt.plot(qs, [lk["amortised_cost_per_query"][str(q)] for q in qs], marker="o", label="consolidated (amortised)")
        plt.axhline(lk["raw_cost_per_query"], color="grey", linestyle="--", label="raw")
        plt.xlabel("queries per context")
        plt.ylabel("compute units per query")
        plt.legend()
        plt.savefig(args.plot, dpi=120)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
