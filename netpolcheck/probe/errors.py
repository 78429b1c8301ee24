"""Errors of the probe agent (it cannot import netpolcheck.errors: it runs alone in the probe image)."""

from __future__ import annotations


class BadInput(Exception):
    """A mistake the caller can fix (bad target list, bad option, missing privilege): one line, exit 2."""
