"""The consolidator's view of the pools: clients, prices and load (``Stats``).

The pool gRPC client is imported here and nowhere else in this package.
"""
from __future__ import annotations

from ponder.common.config import Cost, PonderConfig, PoolConfig
from ponder.common.errors import InvalidArgument, PoolUnavailable
from ponder.pools.client import PoolClient


class PoolDirectory:
    """Configured pools by name; one kept-open client each, made on first use.
    Pools without their own ``address`` are reached through ``serve_address``."""

    def __init__(self, cfg: PonderConfig, serve_address: str | None = None):
        self.cfg = cfg
        self.serve_address = serve_address
        self._clients: dict[str, PoolClient] = {}

    @property
    def names(self) -> list[str]:
        return self.cfg.pool_names

    def default_pool(self) -> str:
        if self.cfg.consolidator.default_pool:
            return self.cfg.consolidator.default_pool
        small = [p.name for p in self.cfg.pools if p.tier == "small"]
        return (small or self.cfg.pool_names)[0]

    def pool(self, name: str, field: str = "pool") -> PoolConfig:
        try:
            return self.cfg.pool(name)
        except KeyError:
            raise InvalidArgument(field, f"unknown pool {name!r}; configured pools: {', '.join(self.names)}") from None

    def cost(self, name: str) -> Cost:
        return self.pool(name).cost

    def client(self, name: str) -> PoolClient:
        if name not in self._clients:
            p = self.pool(name)
            addr = p.address or self.serve_address
            if addr is None:
                raise PoolUnavailable(name, "no address and no Serve gRPC proxy address")
            self._clients[name] = PoolClient(name, addr)
        return self._clients[name]

    async def load(self, name: str) -> tuple[int, int]:
        """(queue_depth, running) from the pool's Stats; PonderError when it does not answer."""
        s = await self.client(name).stats(timeout_s=5.0)
        return s.queue_depth, s.running

    async def close(self) -> None:
        for c in self._clients.values():
            await c.close()
        self._clients.clear()
