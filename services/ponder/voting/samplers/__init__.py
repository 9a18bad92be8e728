"""Sampler specs (``sim:P[:R]``, ``pool:NAME``, ``mix:SPEC,SPEC``) and the registry that turns them into samplers.

``SamplerRegistry`` owns one ``PoolSampler`` (one channel) per pool and hands
it to every run that names the pool; scripted samplers are built per run so
each run's seed is its own.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

from ponder.common.config import Cost, PonderConfig
from ponder.common.errors import InvalidArgument, UnknownPool
from ponder.voting.samplers.base import Sample, Sampler
from ponder.voting.samplers.mix import MixedSampler
from ponder.voting.samplers.pool import PoolSampler
from ponder.voting.samplers.sim import ScriptedSampler

__all__ = ["MixedSampler", "PoolSampler", "PoolTarget", "Sample", "Sampler", "SamplerRegistry", "ScriptedSampler", "pool_targets"]


@dataclasses.dataclass(frozen=True, slots=True)
class PoolTarget:
    """Where a pool answers and what its tokens cost."""

    name: str
    address: str
    metadata: tuple[tuple[str, str], ...] = ()
    cost: Cost = dataclasses.field(default_factory=Cost)


def pool_targets(cfg: PonderConfig, serve_host: str = "127.0.0.1") -> dict[str, PoolTarget]:
    """Targets for every configured pool: its own ``address`` if set, else the Serve gRPC proxy."""
    out = {}
    for p in cfg.pools:
        if p.address:
            out[p.name] = PoolTarget(p.name, p.address, (), p.cost)
        else:
            out[p.name] = PoolTarget(p.name, f"{serve_host}:{cfg.serve.grpc_port}", (("application", p.name),), p.cost)
    return out


def parse_sim(spec: str) -> tuple[float, float]:
    """``sim:P`` or ``sim:P:R`` -> (P, R)."""
    parts = spec.split(":")
    try:
        p = float(parts[1])
        r = float(parts[2]) if len(parts) == 3 else 0.0
        if len(parts) not in (2, 3):
            raise ValueError
    except (IndexError, ValueError):
        raise InvalidArgument("sampler", f"expected sim:P or sim:P:R with numbers, got {spec!r}") from None
    return p, r


class SamplerRegistry:
    def __init__(self, pools: Mapping[str, PoolTarget] | None = None, default: str = "sim:0.99", **pool_kwargs):
        self.pools = dict(pools or {})
        self.default = default
        self.pool_kwargs = pool_kwargs
        self._open: dict[str, PoolSampler] = {}

    def get(self, spec: str, seed: int = 0) -> Sampler:
        """The sampler a spec names; InvalidArgument("sampler") for a bad or unknown one."""
        spec = spec or self.default
        kind, _, rest = spec.partition(":")
        if kind == "mix":
            return MixedSampler([self.get(s, seed) for s in rest.split(",") if s])
        if kind == "sim":
            p, r = parse_sim(spec)
            return ScriptedSampler(p, seed, r)
        if kind == "pool":
            if rest not in self.pools:
                raise UnknownPool("sampler", rest, sorted(self.pools) or ["(none configured)"])
            if rest not in self._open:
                t = self.pools[rest]
                self._open[rest] = PoolSampler(t.name, t.address, t.metadata, t.cost, **self.pool_kwargs)
            return self._open[rest]
        raise InvalidArgument("sampler", f"unknown sampler {spec!r}; use sim:P, pool:NAME or mix:SPEC,SPEC")

    async def close(self) -> None:
        for s in self._open.values():
            await s.close()
        self._open.clear()
