"""A causal LM in PyTorch: load (directory or GGUF), embed, and decode token by token.

Synchronous and free of asyncio, so the ``transformers`` backend runs it in a
worker thread and SoftCoT training and evaluation call it directly. Decoding
is a plain KV-cached loop over ``model(...)``: the prompt goes in once as input
embeddings (so a caller may replace some of them), then one token id per step.
torch and transformers are imported only here.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from typing import Callable, Iterator

from ponder.common.errors import BackendError, DependencyMissing, InvalidArgument
from ponder.pools.backends.base import Delta, Done

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}
# transformers patches torch globally while it builds a model (empty-weight init),
# so two models loading at once in two threads corrupt each other: loads take turns.
_LOAD_LOCK = threading.Lock()


def _torch():
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError:
        raise DependencyMissing("torch and transformers", "pip install 'ponder[softcot]'") from None
    return torch


def pick_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; other names pass through."""
    torch = _torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def pick_dtype(dtype: str, device: str):
    """``auto`` -> float32 on CPU, bfloat16 on GPU; a torch dtype."""
    torch = _torch()
    if dtype == "auto":
        return torch.float32 if device == "cpu" else torch.bfloat16
    return getattr(torch, DTYPES[dtype])


def gguf_cache_dir(path: str) -> str:
    """Where a GGUF's converted (dequantized, float32) model and tokenizer are kept, keyed by
    the file's name, size and mtime so a changed file is converted again."""
    from ponder.pools.models import cache_dir

    st = os.stat(path)
    return str(cache_dir() / "hf" / f"{os.path.basename(path)}-{st.st_size}-{st.st_mtime_ns}")


def _save_dequantized(model, tok, directory: str) -> None:
    """Write a GGUF-loaded model as a plain transformers directory (transformers refuses
    ``save_pretrained`` on it because it was quantized; the weights are dequantized already)."""
    from safetensors.torch import save_model

    os.makedirs(directory, exist_ok=True)
    cfg = model.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    cfg.save_pretrained(directory)
    model.generation_config.save_pretrained(directory)
    save_model(model, os.path.join(directory, "model.safetensors"))
    tok.save_pretrained(directory)


def load_model_and_tokenizer(path: str, device: str, dtype):
    """Load a causal LM and its tokenizer from a directory or a ``.gguf`` file.

    A GGUF is dequantized by the ``gguf`` package once and kept converted (float32
    safetensors and tokenizer) in the cache directory, because converting takes
    minutes on a small CPU; later loads read the converted copy, which holds the
    same weights. Raises BackendError naming the path when it is missing or unreadable.
    """
    if not os.path.exists(path):
        raise BackendError("transformers", f"model path {path!r} does not exist")
    src, kw = path, {}
    with _LOAD_LOCK:
        return _load_locked(path, src, kw, device, dtype)


def _load_locked(path: str, src: str, kw: dict, device: str, dtype):
    torch = _torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        if path.endswith(".gguf"):
            cached = gguf_cache_dir(path)
            if not os.path.exists(os.path.join(cached, ".complete")):
                gdir, gname = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
                tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
                model = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, dtype=torch.float32)
                tmp = f"{cached}.part-{os.getpid()}"
                _save_dequantized(model, tok, tmp)
                open(os.path.join(tmp, ".complete"), "w").close()
                os.replace(tmp, cached) if not os.path.exists(cached) else None
            src = cached
        tok = AutoTokenizer.from_pretrained(src, **kw)
        model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, **kw)
    except Exception as e:  # noqa: BLE001 - any loader failure names the file
        raise BackendError("transformers", f"cannot load {path!r}: {type(e).__name__}: {e}") from e
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model, tok


def filter_logits(logits, temperature: float, top_p: float, top_k: int):
    """Logits (1-D) after temperature, top-k (k <= 0: off) and nucleus (top_p >= 1: off) filtering.

    Removed entries are -inf; at least the most likely token always survives.
    """
    torch = _torch()
    logits = logits.float() / max(temperature, 1e-6)
    if 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, descending=True)
        cum = torch.softmax(sorted_logits, -1).cumsum(-1)
        drop = cum - torch.softmax(sorted_logits, -1) >= top_p  # keep the token that crosses top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, idx, drop), float("-inf"))
    return logits


@dataclasses.dataclass
class CausalLM:
    """A loaded model with its tokenizer; not thread-safe (one decode at a time)."""

    model: object
    tokenizer: object
    name: str
    max_context_tokens: int

    @classmethod
    def load(cls, path: str, device: str = "auto", dtype: str = "auto", max_context_tokens: int = 2048,
             num_threads: int | None = None) -> "CausalLM":
        torch = _torch()
        if num_threads:
            torch.set_num_threads(num_threads)
        dev = pick_device(device)
        model, tok = load_model_and_tokenizer(path, dev, pick_dtype(dtype, dev))
        return cls(model, tok, os.path.basename(path.rstrip("/")), max_context_tokens)

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def hidden_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[1])

    @property
    def architecture(self) -> str:
        return str(self.model.config.model_type)

    def encode(self, text: str, bos: bool = True) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        bos_id = self.tokenizer.bos_token_id
        if bos and bos_id is not None and (not ids or ids[0] != bos_id) and self._adds_bos():
            ids = [bos_id, *ids]
        return list(ids)

    def _adds_bos(self) -> bool:
        ids = self.tokenizer("a")["input_ids"]
        return bool(ids) and ids[0] == self.tokenizer.bos_token_id

    def embed(self, ids: list[int]):
        """Input embeddings ``[len(ids), hidden]`` as the model itself computes them
        (Gemma's scaling by sqrt(hidden) included)."""
        torch = _torch()
        t = torch.tensor([ids], dtype=torch.long, device=self.device)
        return self.model.get_input_embeddings()(t)[0]

    def eos_ids(self) -> set[int]:
        ids = set()
        for src in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(src, int):
                ids.add(src)
            elif src:
                ids.update(int(x) for x in src)
        for special in ("<end_of_turn>", "<|im_end|>"):
            tid = self.tokenizer.convert_tokens_to_ids(special)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and tid is not None:
                ids.add(tid)
        return ids

    def check_context(self, prompt_tokens: int, field: str = "prompt") -> None:
        if prompt_tokens >= self.max_context_tokens:
            raise InvalidArgument(
                field, f"{prompt_tokens} tokens leave no room in {self.name}'s context of {self.max_context_tokens}"
            )

    def decode(self, embeds, max_tokens: int, temperature: float = 0.0, top_p: float = 1.0, top_k: int = 0,
               seed: int | None = None, stop: tuple[str, ...] = (),
               cancelled: Callable[[], bool] = lambda: False) -> Iterator[Delta | Done]:
        """Generate from prompt embeddings ``[seq, hidden]``: Delta items, then one Done.

        Greedy when ``temperature <= 0``; else sampled with a generator seeded by
        ``seed`` (fresh entropy when None). Stops at an end-of-sequence token, a
        stop string (cut from the text, finish ``stop``), ``max_tokens`` or the
        context end (``length``), or when ``cancelled()`` turns true (``cancelled``).
        Text is held back while it may be the start of a stop string or ends in a
        partial UTF-8 character, so every Delta is final.
        """
        torch = _torch()
        n_prompt = int(embeds.shape[0])
        self.check_context(n_prompt)
        max_tokens = min(max_tokens, self.max_context_tokens - n_prompt)
        gen = torch.Generator(device="cpu")
        gen.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
        eos = self.eos_ids()
        hold = max((len(s) for s in stop), default=1) - 1
        out_ids: list[int] = []
        sent = 0
        finish = "length"
        cut_at_stop = False
        with torch.inference_mode():
            res = self.model(inputs_embeds=embeds[None].to(self.model.dtype), use_cache=True, logits_to_keep=1)
            while len(out_ids) < max_tokens:
                if cancelled():
                    finish = "cancelled"
                    break
                logits = res.logits[0, -1]
                if temperature <= 0:
                    tok = int(torch.argmax(logits).item())
                else:
                    probs = torch.softmax(filter_logits(logits.cpu(), temperature, top_p, top_k), -1)
                    tok = int(torch.multinomial(probs, 1, generator=gen).item())
                if tok in eos:
                    finish = "stop"
                    break
                out_ids.append(tok)
                text = self.tokenizer.decode(out_ids, skip_special_tokens=True)
                cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
                if cut >= 0:
                    if cut > sent:
                        yield Delta(text[sent:cut], 1)
                    finish, cut_at_stop = "stop", True
                    break
                safe = len(text) - hold
                while safe > sent and text[safe - 1] == "\ufffd":
                    safe -= 1
                if safe > sent:
                    yield Delta(text[sent:safe], 1)
                    sent = safe
                if len(out_ids) >= max_tokens:
                    break
                ids = torch.tensor([[tok]], dtype=torch.long, device=self.device)
                res = self.model(input_ids=ids, past_key_values=res.past_key_values, use_cache=True)
        if not cut_at_stop:
            text = self.tokenizer.decode(out_ids, skip_special_tokens=True)
            if len(text) > sent:
                yield Delta(text[sent:], 0)
        yield Done(n_prompt, len(out_ids), finish)
