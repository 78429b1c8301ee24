"""A rejecting dataplane under the kernel's ICMP rate limit: a few attempts answered `rejected`, the
rest silent. That silence must not settle as `dropped` (netpolcheck/probe/staggered.py,
`rejected_since_open`); no packets: attempts are written as the watch would have judged them."""

from __future__ import annotations

from netpolcheck.probe.engine import Attempt
from netpolcheck.probe.staggered import CONFIRM_SILENCE, Watch, rejected_since_open
from netpolcheck.probe.targets import Target

ICMP = "ICMP type 3 code 3 from 10.32.0.2 (port unreachable)"


def watch_with(verdicts: list[str], want: set[str]) -> Watch:
    watch = Watch([Target("0", "10.32.0.2", 80, "TCP")], timeout=0.05, silence=0.0)
    attempts = watch.states[0].attempts
    for number, verdict in enumerate(verdicts):
        evidence = ICMP if verdict == "rejected" else f"{verdict} evidence"
        attempts.append(Attempt(number, 40000 + number, 0, 1000.0 + number * 0.01, verdict, evidence))
    watch.judged[0] = len(attempts)
    watch.wants[0] = frozenset(want)
    return watch


def test_silence_after_a_rejection_does_not_settle_as_dropped_and_reads_rejected() -> None:
    watch = watch_with(["allowed", "allowed", "rejected", *["dropped"] * 20], {"dropped"})
    assert watch.settlement(0, now=2000.0) is None
    result = watch.report(0, "0")
    assert result["verdict"] == "rejected" and result["settled"] is False
    assert str(result["evidence"]).startswith(ICMP) and "20 attempt(s) after it" in str(result["evidence"])


def test_a_drop_after_the_path_opened_again_settles() -> None:
    """A rejection before the last open answer says nothing about the silence after it."""
    watch = watch_with(["rejected", "allowed", *["dropped"] * (CONFIRM_SILENCE + 2)], {"dropped"})
    found = watch.settlement(0, now=2000.0)
    assert found is not None and watch.states[0].attempts[found.first].verdict == "dropped"
    assert watch.report(0, "0")["verdict"] == "dropped"


def test_where_a_rejection_is_wanted_silence_after_one_still_counts() -> None:
    """Under a profile that allows either denial (spec), a drop run may settle after a rejection."""
    watch = watch_with(["allowed", "rejected", *["dropped"] * 10], {"dropped", "rejected"})
    assert watch.settlement(0, now=2000.0) is not None


def test_rejected_since_open_finds_the_latest_rejection_and_counts_what_followed() -> None:
    attempts = [
        Attempt(i, i, 0, float(i), v)
        for i, v in enumerate(["allowed", "rejected", "dropped", "rejected", "dropped"])
    ]
    found = rejected_since_open(attempts)
    assert found is not None and found[0].number == 3 and found[1] == 1
    assert rejected_since_open(attempts[:1]) is None
    assert rejected_since_open([Attempt(0, 0, 0, 0.0, "dropped")]) is None
