"""The router's pool clients: one ``ponder.pools.client.PoolClient`` per configured pool."""
from __future__ import annotations

from ponder.common.config import PoolConfig
from ponder.pools.client import PoolClient


class PoolClients:
    """One kept-open client per configured pool; pools without their own ``address``
    are reached through ``default_address`` (the Serve gRPC proxy)."""

    def __init__(self, pools: list[PoolConfig], default_address: str | None = None):
        self.clients: dict[str, PoolClient] = {}
        for p in pools:
            addr = p.address or default_address
            if addr is None:
                raise ValueError(f"pool {p.name!r} has no address and no default (Serve gRPC proxy) address")
            self.clients[p.name] = PoolClient(p.name, addr)

    def __getitem__(self, name: str) -> PoolClient:
        return self.clients[name]

    async def close(self) -> None:
        for c in self.clients.values():
            await c.close()
