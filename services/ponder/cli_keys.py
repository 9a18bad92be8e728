"""`ponder keys create|list|revoke`: API keys in the Redis key store (``ponder.common.auth``).

The key is printed once, on create; only its SHA-256 is stored. Redis is
``--redis-url``, else $REDIS_URL, else ``redis.url`` from the config.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from ponder.common.auth import RIGHTS, KeyStore
from ponder.common.config import load_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    keys = subparsers.add_parser("keys", help="create, list and revoke API keys (tenants)")
    keys.set_defaults(func=run)
    sub = keys.add_subparsers(dest="keys_command", required=True)
    for name, text in (("create", "create a key for a tenant (shown once)"), ("list", "list keys (never the keys themselves)"),
                       ("revoke", "revoke a key by its id")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", help="ponder.yaml")
        p.add_argument("--redis-url", help="Redis holding the keys (default: $REDIS_URL, else redis.url)")
        p.add_argument("--json", action="store_true", help="print JSON")
        if name == "create":
            p.add_argument("tenant", help="tenant the key acts for ([A-Za-z0-9._:-], 1..128)")
            p.add_argument("--rights", default="generate", help=f"comma-separated, of {', '.join(RIGHTS)} (default generate)")
            p.add_argument("--note", default="", help="free text stored with the key")
        if name == "revoke":
            p.add_argument("key_id", help="the 12-hex-digit id `ponder keys list` shows")


def _redis_url(args) -> str:
    url = args.redis_url or os.environ.get("REDIS_URL") or load_config(args.config).redis.url
    if not url:
        raise SystemExit("ponder keys: no Redis: pass --redis-url or set REDIS_URL")
    return url


async def _run(args) -> int:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(_redis_url(args))
    try:
        store = KeyStore(client)
        if args.keys_command == "create":
            key, rec = await store.create(args.tenant, [r for r in args.rights.split(",") if r], args.note)
            if args.json:
                print(json.dumps({"key": key, **rec}))
            else:
                print(key)
                print(f"key id {rec['key_id']} for tenant {rec['tenant']!r}, rights {','.join(rec['rights'])}; "
                      "store it now: it is not shown again", file=sys.stderr)
        elif args.keys_command == "list":
            rows = await store.list()
            if args.json:
                print(json.dumps(rows))
            for r in [] if args.json else rows:
                print(f"{r['key_id']}  {r['tenant']:<24} {','.join(r['rights']):<24} {r.get('note', '')}")
        else:
            await store.revoke(args.key_id)
            print(f"revoked {args.key_id}", file=sys.stderr)
    finally:
        await client.aclose()
    return 0


def run(args) -> int:
    return asyncio.run(_run(args))
