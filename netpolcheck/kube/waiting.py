"""The one bounded wait: poll a check until it gives a value, or fail saying what was seen last.

Every wait in kube, the fixtures and the tests goes through `wait_for`, so a timeout always reads
"gave up after 30.0 s waiting for <what>; last seen: <what the check saw>".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_exponential, wait_fixed

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A bounded wait ran out. `what`, `timeout` and `last_seen` are kept for callers and reports."""

    def __init__(self, what: str, timeout: float, last_seen: str) -> None:
        self.what, self.timeout, self.last_seen = what, timeout, last_seen
        super().__init__(f"gave up after {timeout:.1f} s waiting for {what}; last seen: {last_seen}")


def _unready(value: object) -> bool:
    return value is None or value is False


def wait_for(
    check: Callable[[], T | bool | None],
    what: str,
    *,
    timeout: float,
    interval: float = 0.2,
    describe_last: Callable[[], str] | None = None,
    max_interval: float | None = None,
    retry_errors: bool = True,
) -> T:
    """Call `check` every `interval` seconds until it returns something other than None or False.

    Returns that value (True for a plain predicate). After `timeout` seconds raises `WaitTimeout`
    naming `what` and the last thing seen: `describe_last()` if given, else the check's last result
    or the exception it raised (an exception counts as "not yet", so a transient API error does not
    end the wait early; `retry_errors=False` lets it propagate instead). With `max_interval` the
    pause grows from `interval` by half each time up to it (short waits stay fast, long ones cheap)."""
    last: list[str] = ["nothing (no attempt finished)"]

    def attempt() -> Any:
        try:
            value = check()
        except Exception as exc:  # polled again; reported as last seen if it never clears
            if not retry_errors:
                raise
            last[0] = f"{type(exc).__name__}: {exc}"
            return None
        last[0] = repr(value)
        return value

    pause = (
        wait_fixed(interval)
        if max_interval is None
        else wait_exponential(multiplier=interval, exp_base=1.5, min=interval, max=max_interval)
    )
    retrying = Retrying(stop=stop_after_delay(timeout), wait=pause, retry=retry_if_result(_unready))
    started = time.monotonic()
    try:
        result: T = retrying(attempt)
    except RetryError:
        seen = describe_last() if describe_last is not None else last[0]
        raise WaitTimeout(what, max(timeout, time.monotonic() - started), seen) from None
    return result
