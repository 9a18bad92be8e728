"""Projection files: safetensors weights plus metadata naming the model pair they were made for.

The metadata (JSON under the ``ponder.softcot`` key of the safetensors header)
records both models' identities and hidden sizes, the soft-token count and
markers used in training, the training data's SHA-256 and the step count.
Loading checks the file against the models it is about to serve: a missing or
unreadable file, another model pair, or other shapes raise ProjectionError
naming both sides.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib


from ponder.common.errors import FailedPrecondition

FORMAT = "ponder.softcot.projection/1"
META_KEY = "ponder.softcot"


class ProjectionError(FailedPrecondition):
    """A projection file that cannot serve the configured models (missing, corrupt, mismatched)."""


    def __init__(self, path: str, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"softcot projection {path!r}: {problem}")


@dataclasses.dataclass(frozen=True)
class ModelId:
    """Who a model is, as far as a projection cares: name, architecture and hidden size."""

    name: str
    architecture: str
    hidden_size: int

    @classmethod
    def of(cls, lm) -> "ModelId":
        return cls(lm.name, lm.architecture, lm.hidden_size)

    def __str__(self) -> str:
        return f"{self.name} ({self.architecture}, d={self.hidden_size})"


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def save_projection(path: str | os.PathLike[str], projection, assistant: ModelId, backbone: ModelId,
                    extra: dict) -> None:
    """Write weights and metadata atomically (a temporary file renamed into place)."""
    from safetensors.torch import save_file

    meta = {"format": FORMAT, "assistant": dataclasses.asdict(assistant), "backbone": dataclasses.asdict(backbone), **extra}
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".part-{os.getpid()}")
    tensors = {k: v.detach().to("cpu").float().contiguous() for k, v in projection.state_dict().items()}
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
    os.replace(tmp, path)


def read_projection(path: str | os.PathLike[str]) -> tuple[dict, dict]:
    """``(tensors, metadata)``; ProjectionError if the file is missing, unreadable or not ours."""
    from safetensors import safe_open

    p = str(path)
    if not os.path.isfile(p):
        raise ProjectionError(p, "file does not exist (train one with `ponder softcot train`)")
    try:
        with safe_open(p, framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise ProjectionError(p, f"unreadable or corrupt: {type(e).__name__}: {e}") from None
    try:
        meta = json.loads(header[META_KEY])
    except (KeyError, ValueError):
        raise ProjectionError(p, f"no {META_KEY} metadata: not a projection written by ponder") from None
    if meta.get("format") != FORMAT:
        raise ProjectionError(p, f"format {meta.get('format')!r}, expected {FORMAT!r}")
    if set(tensors) != {"weight", "bias"}:
        raise ProjectionError(p, f"tensors {sorted(tensors)}, expected ['bias', 'weight']")
    return tensors, meta


def check_pair(path: str, meta: dict, tensors: dict, assistant: ModelId, backbone: ModelId) -> None:
    """Refuse a projection made for another model pair or with other shapes; the error names both."""
    want = (backbone.hidden_size, assistant.hidden_size)
    got = tuple(tensors["weight"].shape)
    if got != want or tuple(tensors["bias"].shape) != (backbone.hidden_size,):
        raise ProjectionError(
            path,
            f"weight shape {list(got)} (made for assistant d={got[1] if len(got) > 1 else '?'} -> backbone "
            f"d={got[0] if got else '?'}) does not fit assistant {assistant} -> backbone {backbone}, "
            f"which needs {list(want)}",
        )
    for role, now in (("assistant", assistant), ("backbone", backbone)):
        then = ModelId(**meta[role])
        if then != now:
            raise ProjectionError(path, f"made for {role} {then}, but the pool's {role} is {now}")


def load_projection(path: str, assistant: ModelId, backbone: ModelId, device="cpu", dtype=None):
    """A ``Linear`` with the file's weights, checked against the model pair; and the metadata."""
    import torch

    tensors, meta = read_projection(path)
    check_pair(path, meta, tensors, assistant, backbone)
    proj = torch.nn.Linear(assistant.hidden_size, backbone.hidden_size, bias=True)
    proj.load_state_dict(tensors)
    proj.to(device=device, dtype=dtype or torch.float32)
    proj.requires_grad_(False)
    return proj, meta
