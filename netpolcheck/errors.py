"""Errors shared by every layer."""

from __future__ import annotations


class UsageError(Exception):
    """A mistake the user can fix (bad input, bad option, missing privilege).

    The command line prints it as one line and exits 2; it never shows a traceback.
    """
