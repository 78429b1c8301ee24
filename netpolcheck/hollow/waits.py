"""Bounded polling that says what it waited for."""

from __future__ import annotations

import time
from collections.abc import Callable


class WaitTimeout(TimeoutError):
    """A bounded wait ran out; the message names what was awaited and for how long."""


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
    delay = interval
    while True:
        if predicate():
            return time.monotonic() - start
        elapsed = time.monotonic() - start
        if elapsed >= timeout:
            if raise_on_timeout:
                raise WaitTimeout(f"gave up after {elapsed:.1f} s waiting for {what}")
            return elapsed
        time.sleep(min(delay, max(0.0, timeout - elapsed)))
        delay = min(delay * 1.5, 0.2)
