"""``ponder softcot train|eval``: train the projection, and measure accuracy with and without it.

  ponder softcot train --data FILE.jsonl|generated --out proj.safetensors [--steps N] [--batch N]
  ponder softcot eval  --projection proj.safetensors --data FILE.jsonl|generated [--n N] [--seeds 0,1]

``--data generated`` uses the generated arithmetic word problems (train split
for training, test split for eval); a JSONL file gives question/answer rows
(GSM8K) or question/rationale/answer rows. Models default to the pool's pair:
SmolLM2-135M-Instruct assistant, Gemma 3 270M backbone.
"""
from __future__ import annotations

import argparse
import json
import sys

from ponder.common.config import SoftCoT
from ponder.common.errors import InvalidArgument


def build_model(args: argparse.Namespace, projection_path: str | None):
    """Load assistant and backbone and a projection (from file, or a fresh seeded one)."""
    from ponder.pools.backends.torch_lm import CausalLM
    from ponder.pools.models import ensure_default_gguf
    from ponder.softcot.backend import default_assistant_path
    from ponder.softcot.checkpoint import ModelId, load_projection
    from ponder.softcot.model import SoftCoTModel, make_projection

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    assistant = CausalLM.load(args.assistant or default_assistant_path(), device=args.device, dtype=args.dtype)
    backbone = CausalLM.load(args.backbone or str(ensure_default_gguf()), device=args.device, dtype=args.dtype)
    cfg = SoftCoT(projection_path=projection_path or "<untrained>", num_thought_tokens=args.soft_tokens)
    if projection_path:
        proj, _ = load_projection(projection_path, ModelId.of(assistant), ModelId.of(backbone), backbone.device)
    else:
        rms = float(backbone.model.get_input_embeddings().weight.float().pow(2).mean().sqrt())
        scale = getattr(backbone.model.get_input_embeddings(), "embed_scale", 1.0)
        proj = make_projection(assistant.hidden_size, backbone.hidden_size, args.seed, rms * float(scale)).to(backbone.device)
    return SoftCoTModel(assistant, backbone, proj, cfg)


def examples(data: str, split: str, n: int, seed: int, offset: int = 0, levels: str = ""):
    from ponder.softcot import data as d

    if data == "generated":
        return d.generated(n, seed, split, _levels(levels) if levels else d.LEVELS)
    rows = d.read_jsonl(data, limit=offset + n)
    return rows[offset:offset + n]


def _levels(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InvalidArgument("levels", f"comma-separated integers, got {text!r}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from ponder.softcot.train import TrainSettings, train

    settings = TrainSettings(steps=args.steps, batch=args.batch, lr=args.lr, eval_every=args.eval_every,
                             checkpoint_every=args.checkpoint_every, seed=args.seed)
    settings.check()
    train_set = examples(args.data, "train", args.train_n, args.seed, levels=args.levels)
    eval_set = examples(args.data, "test", args.eval_n, args.seed + 10_000, offset=args.train_n, levels=args.levels)
    model = build_model(args, None)
    say = (lambda m: print(m, file=sys.stderr))
    result = train(model, train_set, eval_set, args.out, settings, resume=not args.no_resume, log=say,
                   progress=sys.stderr.isatty() or args.progress)
    print(json.dumps({"out": result["out"], "steps": result["steps"], "history": result["history"]}))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ponder.softcot.evaluate import evaluate

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds:
        raise InvalidArgument("seeds", "give at least one seed")
    model = build_model(args, args.projection)
    if args.data == "generated":
        sets = {s: examples("generated", "test", args.n, s, levels=args.levels) for s in seeds}
    else:  # disjoint slices of the file, one per seed
        sets = {s: examples(args.data, "test", args.n, 0, offset=args.offset + i * args.n) for i, s in enumerate(seeds)}
    report = evaluate(model, sets, args.max_tokens, args.temperature, log=lambda m: print(m, file=sys.stderr))
    report.pop("assistant_ms")
    print(json.dumps(report, indent=None if args.json else 2))
    return 0


def _models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="generated", help="JSONL file, or 'generated' (default)")
    p.add_argument("--assistant", help="assistant GGUF or directory (default: SmolLM2-135M-Instruct)")
    p.add_argument("--backbone", help="backbone GGUF or directory (default: Gemma 3 270M)")
    p.add_argument("--soft-tokens", type=int, default=4, help="soft thought tokens (default 4)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--dtype", default="float32", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--levels", default="", help="generated problem levels 1-4, comma-separated (default 1,2: where "
                   "the CPU backbone is neither at 0 nor at 100 %%)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    sc = subparsers.add_parser("softcot", help="train and evaluate the SoftCoT projection")
    sub = sc.add_subparsers(dest="softcot_cmd", required=True)
    t = sub.add_parser("train", help="train the projection (assistant and backbone stay frozen)")
    _models(t)
    t.add_argument("--out", required=True, help="projection file to write (.safetensors)")
    t.add_argument("--steps", type=int, default=200)
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--train-n", type=int, default=2000, help="training examples (default 2000)")
    t.add_argument("--eval-n", type=int, default=16, help="held-out examples for the eval loss")
    t.add_argument("--eval-every", type=int, default=25)
    t.add_argument("--checkpoint-every", type=int, default=25)
    t.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    t.add_argument("--progress", action="store_true", help="progress bar even when stderr is not a terminal")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="accuracy with and without soft thoughts on the same questions and seeds")
    _models(e)
    e.add_argument("--projection", required=True)
    e.add_argument("--n", type=int, default=30, help="questions per seed")
    e.add_argument("--seeds", default="0,1")
    e.add_argument("--offset", type=int, default=0, help="first row used from a JSONL file")
    e.add_argument("--max-tokens", type=int, default=48, help="backbone output tokens, equal in both arms")
    e.add_argument("--temperature", type=float, default=0.0)
    e.add_argument("--json", action="store_true", help="one line of JSON")
    e.set_defaults(func=cmd_eval)
    return sc


def main(argv: list[str] | None = None) -> int:
    """``python -m ponder.softcot.cli train|eval ...``: the same commands without the rest of the CLI."""
    ap = argparse.ArgumentParser(prog="ponder")
    add_parser(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(["softcot", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
