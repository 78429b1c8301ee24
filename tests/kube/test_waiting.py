"""wait_for: returns the check's value, and a timeout says what it waited for and what it saw last."""

from __future__ import annotations

import itertools

import pytest

from netpolcheck.kube.waiting import WaitTimeout, wait_for


def test_returns_the_first_value_that_is_not_none_or_false() -> None:
    values = iter([None, False, None, {"ready": 3}])
    assert wait_for(lambda: next(values), "a value", timeout=10, interval=0.01) == {"ready": 3}


def test_a_predicate_returns_true() -> None:
    counter = itertools.count()
    assert wait_for(lambda: next(counter) >= 2, "the third call", timeout=10, interval=0.01) is True


def test_timeout_names_what_how_long_and_the_last_value() -> None:
    with pytest.raises(WaitTimeout) as info:
        wait_for(lambda: None, "the pods to be ready", timeout=0.3, interval=0.05)
    message = str(info.value)
    assert message.startswith("gave up after 0.3 s waiting for the pods to be ready; last seen: None")
    assert (info.value.what, info.value.timeout) == ("the pods to be ready", pytest.approx(0.3, abs=0.5))
    assert isinstance(info.value, TimeoutError)


def test_describe_last_replaces_the_raw_value() -> None:
    with pytest.raises(WaitTimeout, match=r"waiting for rollout; last seen: 1 of 3 updated$"):
        wait_for(lambda: False, "rollout", timeout=0.2, interval=0.05, describe_last=lambda: "1 of 3 updated")


def test_an_exception_is_not_yet_and_is_reported_if_it_persists() -> None:
    calls = itertools.count()

    def flaky() -> str:
        if next(calls) < 2:
            raise ConnectionError("API not up")
        return "up"

    assert wait_for(flaky, "the API", timeout=10, interval=0.01) == "up"

    def broken() -> None:
        raise ConnectionError("refused")

    with pytest.raises(WaitTimeout, match=r"last seen: ConnectionError: refused"):
        wait_for(broken, "the API", timeout=0.2, interval=0.05)


def test_retry_errors_false_lets_the_error_through() -> None:
    def broken() -> None:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError, match="refused"):
        wait_for(broken, "the API", timeout=5, retry_errors=False)


def test_growing_pause_still_bounded() -> None:
    calls = itertools.count()
    with pytest.raises(WaitTimeout):
        wait_for(lambda: next(calls) < 0, "never", timeout=0.5, interval=0.01, max_interval=0.2)
    assert 4 <= next(calls) < 50  # fast at first, then at most every 0.2 s
