"""Sleep-time consolidation: query-time tokens, latency, accuracy and amortised cost, raw vs consolidated.

Two parts, both on the local CPU model (Gemma 3 270M Q4_K_M through llama.cpp):

lookup          generated documents of 2,000-8,000 tokens: fact sentences (a place, a
                thing, a number) among report prose, with several questions per document
                whose answers are facts in it. Each document is consolidated once with the
                consolidator's default strategy (``extractive``) and every question is asked
                raw and consolidated. Reported: token_reduction (raw / consolidated query-time
                prompt tokens), answer_retention (share of answers whose fact survives in the
                consolidated form), accuracy raw vs consolidated, cold query latency (empty
                KV cache, one per document), amortised cost per query for 1..10 queries per
                context, and breakeven_queries (fewest queries per context at which the
                consolidated path costs less per query than raw).
stateful_gsm8k  ../shared/data/gsm8k/test.jsonl: context = every sentence but the last,
                query = the last. Each context is consolidated with ``extractive`` and with
                ``rethink`` (2 passes on a real llama.cpp pool over gRPC). Reported per
                strategy: token_reduction, consolidation cost per context, and the share of the
                context's numbers the form keeps. Accuracy needs a GPU-sized model: not here.

Costs are in compute units at the default small pool's prices (0.1 per prompt token,
1.0 per output token). Prints one JSON object last.

Usage: python bench/consolidation.py [--docs 4] [--questions 10] [--gsm8k 10] [--plot out.png]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time

sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "services"))

from ponder.common.config import Cost, ConsolidatorConfig, LlamaCppBackend, PoolConfig  # noqa: E402
from ponder.consolidation.strategies.base import StepContext  # noqa: E402
from ponder.consolidation.strategies.extractive import Extractive  # noqa: E402
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


def make_document(rng: random.Random, target_tokens: int, count_tokens, fact_share: float = 0.15):
    """(text, facts): report prose with fact sentences mixed in at about ``fact_share`` of
    the sentences; each fact is (sentence, question, answer, place) with a unique place+site."""
    pairs = [(p, s) for p in PLACES for s in SITES]
    rng.shuffle(pairs)
    sentences, facts = [], []
    tokens = 0
    while tokens < target_tokens:
        if rng.random() < fact_share and pairs:
            place, site = pairs.pop()
            goods, n = rng.choice(GOODS), rng.randint(101, 9899)
            s = f"The {site} in {place} holds {n} {goods}."
            facts.append((s, f"How many {goods} does the {site} in {place} hold?", str(n), place))
        else:
            s = rng.choice(FILLER).format(**{k: rng.choice(v) for k, v in SLOTS.items()})
        sentences.append(s)
        tokens += count_tokens(s)
    return " ".join(sentences), facts


def prompt(context: str, question: str) -> str:
    return f"Read the notes and answer with a number.\n\nNotes: {context}\n\nQuestion: {question}\nAnswer:"


class Answerer:
    """The local model answering questions (greedy, a few tokens)."""

    def __init__(self, path: str, n_ctx: int):
        from llama_cpp import Llama

        self.llm = Llama(model_path=path, n_ctx=n_ctx, n_batch=512, verbose=False)

    def tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=True))

    def ask(self, text: str, cold: bool = False) -> tuple[str, int, int, float]:
        """(answer, prompt tokens, output tokens, latency ms); ``cold`` empties the KV cache first."""
        if cold:
            self.llm.reset()
        t0 = time.perf_counter()
        out = self.llm.create_completion(text, max_tokens=8, temperature=0.0, stop=["\n"])
        ms = (time.perf_counter() - t0) * 1000
        u = out["usage"]
        return out["choices"][0]["text"], u["prompt_tokens"], u["completion_tokens"], ms


def retained(form: str, answer: str, place: str) -> bool:
    """Whether some sentence or line of ``form`` still names the fact's place and its number."""
    return any(answer in s and place in s for s in re.split(r"(?<=[.!?])\s+|\n+", form))


def cost_per_query(prompt_tokens: float, output_tokens: float, consolidation_cu: float = 0.0, queries: int = 1) -> float:
    return COST.units(prompt_tokens, output_tokens) + consolidation_cu / queries


async def lookup(args, path: str) -> dict:
    rng = random.Random(args.seed)
    answerer = Answerer(path, n_ctx=args.max_doc_tokens + 512)
    extractive = Extractive(ConsolidatorConfig().extractive)
    ctx = StepContext(pool="small", client=None, cost=COST, settings=ConsolidatorConfig())
    sizes = [round(2000 + i * (args.max_doc_tokens - 2000) / max(args.docs - 1, 1)) for i in range(args.docs)]
    rows, docs = [], []
    for size in sizes:
        text, facts = make_document(rng, size, lambda s: answerer.tokens(s) - 1)
        t0 = time.perf_counter()
        r = await extractive.run_step(0, text, ctx)
        cons_s = time.perf_counter() - t0
        qs = rng.sample(facts, min(args.questions, len(facts)))
        doc = {"raw_context_tokens": answerer.tokens(text), "consolidated_context_tokens": answerer.tokens(r.text),
               "facts": len(facts), "consolidation_cu": r.compute_units, "consolidation_s": cons_s,
               "retention": statistics.mean(retained(r.text, a, p) for _, _, a, p in qs)}
        base = len(rows)
        rows += [{"size": size, "retained": retained(r.text, a, place)} for _, _, a, place in qs]
        for form, name in ((text, "raw"), (r.text, "consolidated")):
            # The first question reads the whole context (empty KV cache): its latency is the
            # cold query latency. Later questions reuse the cached context, as a server would.
            for k, (_, q, a, place) in enumerate(qs):
                out, pt, ot, ms = answerer.ask(prompt(form, q), cold=k == 0)
                if k == 0:
                    doc[f"cold_latency_ms_{name}"] = ms
                row = rows[base + k]
                row.update({f"correct_{name}": a in out, f"prompt_tokens_{name}": pt, f"output_tokens_{name}": ot})
        docs.append(doc)
        print(f"lookup doc ~{size} tokens: {doc}", file=sys.stderr, flush=True)
    await extractive.close()

    def mean(key):
        return statistics.mean(r[key] for r in rows)

    pt_raw, pt_cons = mean("prompt_tokens_raw"), mean("prompt_tokens_consolidated")
    ot_raw, ot_cons = mean("output_tokens_raw"), mean("output_tokens_consolidated")
    cu_ctx = statistics.mean(d["consolidation_cu"] for d in docs)
    raw_cost = cost_per_query(pt_raw, ot_raw)
    amortised = {q: cost_per_query(pt_cons, ot_cons, cu_ctx, q) for q in range(1, 11)}
    breakeven = next((q for q in range(1, 11) if amortised[q] < raw_cost), None)
    return {
        "documents": len(docs), "questions": len(rows), "doc_tokens": sizes,
        "token_reduction": pt_raw / pt_cons,
        "context_token_reduction": statistics.mean(d["raw_context_tokens"] for d in docs)
        / statistics.mean(d["consolidated_context_tokens"] for d in docs),
        "answer_retention": mean("retained"),
        "accuracy_raw": mean("correct_raw"), "accuracy_consolidated": mean("correct_consolidated"),
        "prompt_tokens_raw": pt_raw, "prompt_tokens_consolidated": pt_cons,
        "cold_latency_ms_raw": statistics.mean(d["cold_latency_ms_raw"] for d in docs),
        "cold_latency_ms_consolidated": statistics.mean(d["cold_latency_ms_consolidated"] for d in docs),
        "consolidation_cu_per_context": cu_ctx,
        "consolidation_s_per_context": statistics.mean(d["consolidation_s"] for d in docs),
        "raw_cost_per_query": raw_cost,
        "amortised_cost_per_query": {str(q): v for q, v in amortised.items()},
        "breakeven_queries": breakeven,
        "strategy": "extractive",
        "target_ratio": ConsolidatorConfig().extractive.target_ratio,
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
    ap.add_argument("--max-doc-tokens", type=int, default=8000)
    ap.add_argument("--questions", type=int, default=10, help="questions per document")
    ap.add_argument("--gsm8k", type=int, default=10, help="GSM8K problems")
    ap.add_argument("--rethink-tokens", type=int, default=96, help="rethink max tokens per pass (GSM8K)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", help="write the amortised-cost plot here (PNG)")
    args = ap.parse_args(argv)
    path = str(ensure_default_gguf())
    t0 = time.perf_counter()
    result = {"model": "gemma-3-270m Q4_K_M (llama.cpp, CPU)", "lookup": await lookup(args, path)}
    result["stateful_gsm8k"] = await stateful_gsm8k(args, path)
    result["wall_s"] = time.perf_counter() - t0
    if args.plot:
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
