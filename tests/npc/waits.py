"""Bounded polls for the tests: each says what it waited for and fails with that after the timeout."""

from __future__ import annotations

from collections.abc import Callable

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed


def wait_until(
    predicate: Callable[[], bool], what: str, timeout: float = 10.0, interval: float = 0.02
) -> None:
    retrying = Retrying(
        stop=stop_after_delay(timeout), wait=wait_fixed(interval), retry=retry_if_result(lambda ok: not ok)
    )
    try:
        retrying(predicate)
    except RetryError:
        raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}") from None
