"""Formats of the identifiers that end up in Redis keys and fields, checked at the wire.

``context_id`` and tenant names become parts of Redis keys, so they are
restricted to ``[A-Za-z0-9._:-]`` (first character alphanumeric, 1..128);
a ``request_id`` is a hash field and an outcome record's value, so any
printable ASCII without spaces (1..128) is accepted. A bad one raises
``InvalidArgument`` naming the field and the allowed form.
"""
from __future__ import annotations

import re

KEY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
REQUEST_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")


def check_key_id(field: str, value: str) -> str:
    """``value`` when it may be part of a Redis key; InvalidArgument naming ``field`` otherwise."""
    from ponder.common.errors import InvalidArgument

    if not KEY_ID_RE.fullmatch(value):
        raise InvalidArgument(field, f"must be 1..128 of A-Z a-z 0-9 . _ : - starting with a letter or digit, got {value[:40]!r}")
    return value


def check_request_id(field: str, value: str) -> str:
    """``value`` when it is 1..128 printable ASCII characters without spaces; InvalidArgument otherwise."""
    from ponder.common.errors import InvalidArgument

    if not REQUEST_ID_RE.fullmatch(value):
        raise InvalidArgument(field, f"must be 1..128 printable ASCII characters without spaces, got {value[:40]!r}")
    return value
