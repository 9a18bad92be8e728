"""API keys against a real redis-server: what is stored verifies, whatever the secret's characters."""
from __future__ import annotations

import redis

from ponder.common.redis_server import LocalRedis


def test_keys_whose_secret_contains_an_underscore_verify(tmp_path, monkeypatch):
    """A url-safe secret contains '_' about half the time; its digest must cover the whole secret."""
    import asyncio

    from ponder.common import auth

    server = LocalRedis(tmp_path / "keys").start()
    try:
        client = redis.Redis.from_url(server.url)
        secret = "ab_" + "c" * 40
        monkeypatch.setattr(auth, "new_key", lambda: ("0123456789ab", f"pk_0123456789ab_{secret}"))
        store = auth.KeyStore(client, cache_s=0.0)
        token, rec = asyncio.run(store.create("acme"))
        who = asyncio.run(store.verify(*auth.split_key(token)))
        assert (who.tenant, rec["key_id"]) == ("acme", "0123456789ab")
        client.close()
    finally:
        server.stop()
