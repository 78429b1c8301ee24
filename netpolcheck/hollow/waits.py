"""The embedded cluster's waits, on the project's one bounded wait (netpolcheck.kube.waiting).

Kept for its callers' signature: timeout before `what`, the seconds waited returned, an optional
no-raise mode for teardown loops; errors raised by the predicate propagate.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from netpolcheck.kube.waiting import WaitTimeout, wait_for

__all__ = ["WaitTimeout", "wait_until"]


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    interval: float = 0.02,
    raise_on_timeout: bool = True,
) -> float:
    """Poll `predicate` until true or `timeout` seconds pass; returns the seconds waited.

    The interval grows from `interval` to at most 0.2 s so short waits stay fast and long ones cheap.
    """
    start = time.monotonic()
    try:
        wait_for(predicate, what, timeout=timeout, interval=interval, max_interval=0.2, retry_errors=False)
    except WaitTimeout:
        if raise_on_timeout:
            raise
    return time.monotonic() - start
