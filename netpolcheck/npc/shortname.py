"""Weave's ipset naming: `weave-` + SHA-1 of a key, written in an 85-symbol alphabet.

Facts from docs/weave-facts.md#ipset-names (npc/shortname.go at v2.8.1): the digest is read as a big-endian
integer and written least-significant digit first, so names stay within ipset's 31-character limit.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

SET_PREFIX = "weave-"
SYMBOLS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789(){}[]+=_$%^!*|/?.;:@#~"


def short_name(key: str) -> str:
    """The hash part of a set name for `key` (without the `weave-` prefix)."""
    value = int.from_bytes(hashlib.sha1(key.encode()).digest(), "big")
    digits: list[str] = []
    while value > 0:
        value, remainder = divmod(value, len(SYMBOLS))
        digits.append(SYMBOLS[remainder])
    return "".join(digits)


@lru_cache(maxsize=65536)
def set_name(key: str) -> str:
    """The full ipset name Weave gives the set keyed by `key`."""
    return SET_PREFIX + short_name(key)
