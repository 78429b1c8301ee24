"""Errors of the probe agent (it cannot import netpolcheck.errors: it runs alone in the probe image)."""

from __future__ import annotations

SHOWN_LIMIT = 60


class BadInput(Exception):
    """A mistake the caller can fix (bad target list, bad option, missing privilege): one line, exit 2."""


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """`value` as it may appear in a one-line message: repr (so control characters and newlines are
    escaped), cut to `limit` characters. Integers too long to print in full are described, not converted
    (int -> str is refused past 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def shown_path(path: str) -> str:
    """A file name as it may appear in a one-line message (escaped, long enough to recognise)."""
    return shown(path, 240)
