"""Backend registry: a pool's backend config names its implementation, imported only when used.

The kinds and their config models are registered in ``ponder.common.config``
(``BACKEND_CONFIGS``); each config class names its engine as ``module:Class``,
so heavy engines (llama.cpp, torch, vLLM) load only in pools that use them.
"""
from __future__ import annotations

import importlib

from ponder.common.config import BackendConfig, PoolConfig
from ponder.pools.backends.base import Backend, Delta, Done, GenParams

__all__ = ["Backend", "Delta", "Done", "GenParams", "backend_class", "make_backend", "make_pool_backend"]


def backend_class(cfg: BackendConfig) -> type[Backend]:
    """The engine class a backend config names; TypeError if it names none or no Backend."""
    module, _, name = type(cfg).implementation.partition(":")
    if not module or not name:
        raise TypeError(f"backend config {type(cfg).__name__} names no implementation")
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"{type(cfg).implementation} is not a Backend")
    return cls


def make_backend(cfg: BackendConfig) -> Backend:
    """Build the backend a pool config names; its module is imported here, lazily."""
    return backend_class(cfg)(cfg)


def make_pool_backend(cfg: PoolConfig) -> Backend:
    """The backend a pool runs: its configured engine, behind a SoftCoT assistant when the pool has one."""
    backend = make_backend(cfg.backend)
    if cfg.softcot is not None:
        from ponder.softcot.backend import SoftCoTEngine

        return SoftCoTEngine(cfg.softcot, backend)
    return backend
