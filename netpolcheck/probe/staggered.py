"""Staggered probing: a new attempt toward every target each `interval`, every attempt judged on its own.

This is how convergence is timed to about one interval (10 ms by default): a process already running
in the source pod (the resident agent) starts a fresh flow toward each target every interval, so the
first attempt that shows the wanted verdict says when the dataplane changed, within one interval.

An attempt shows `allowed`, `refused` or `rejected` when its own answer arrives (matched exactly as in a
one-shot run: its own source port and token), and `dropped` when `timeout` seconds pass without one. A
target is *settled* once its attempts end in a run of wanted verdicts: the first attempt of that run is
`settled_at` (its send time, Unix seconds of this pod's clock), the attempt before it, which still
showed something else, is `previous_at` (None when the very first attempt already showed it). A run of
silence must be CONFIRM_SILENCE attempts and `silence` seconds long before it counts (one lost packet
or one slow answer is not a drop), and its time is still its first attempt's; an
answer is evidence on its own, and an answer arriving after its attempt was judged `dropped` (up to
LATE_WINDOW seconds) replaces that judgement. Silence after a rejection is no drop (the node
rate-limits its ICMP errors: `rejected_since_open`). Once settled, a target's settlement is frozen and no more
attempts go to it. The watch stops at `limit` seconds whatever happens.

A target may have an interval of its own (`intervals`): its k-th attempt goes out at k times its
interval after the start, so one watch can follow the cells a step should change every 10 ms and the
others ten times less often (one request, one exec, instead of a watch per cadence).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netpolcheck.probe import packets
from netpolcheck.probe.engine import Attempt, Prober, ProbeState, StopSignals
from netpolcheck.probe.targets import Target

DEFAULT_INTERVAL = 0.01
CONFIRM_SILENCE = 3
DEFAULT_SILENCE = 0.3  # seconds a run of silence must last before it counts as `dropped`
LATE_WINDOW = 2.0  # seconds an answer after its attempt's window still counts (see `answer`)
MAX_ATTEMPTS = 200_000  # per watch (~20 MB of bookkeeping): the pod's memory limit is 128 MiB
OPEN = frozenset({"allowed", "refused"})  # the dataplane let the attempt through


def rejected_since_open(attempts: Sequence[Attempt]) -> tuple[Attempt, int] | None:
    """The latest `rejected` attempt after the last one the dataplane let through, and how many
    attempts came after it; None when there is none.

    Linux rate-limits the ICMP errors a REJECT rule makes the node send to one source (a burst of 6,
    then about one a second: net.ipv4.icmp_ratelimit), and every denied cell of a source shares that
    budget. Probed every 10 ms, a rejecting dataplane answers a few attempts and leaves the rest
    silent, so silence after a rejection is no evidence of a drop: such a run never settles as
    `dropped`, and the cell is reported `rejected`."""
    for position in range(len(attempts) - 1, -1, -1):
        verdict = attempts[position].verdict
        if verdict in OPEN:
            return None
        if verdict == "rejected":
            return attempts[position], len(attempts) - 1 - position
    return None


@dataclass(frozen=True)
class Settlement:
    """Where a target's attempts ended in a run of wanted verdicts (indexes into its attempts)."""

    first: int  # the first attempt of the final wanted run
    length: int  # how many judged attempts that run has


class Watch(Prober):
    """One staggered watch over `targets`, run by `run()` (in a thread of its own in the agent)."""

    def __init__(
        self,
        targets: list[Target],
        timeout: float,
        interval: float = DEFAULT_INTERVAL,
        limit: float = 60.0,
        silence: float = DEFAULT_SILENCE,
        intervals: Sequence[float | None] | None = None,
    ) -> None:
        super().__init__(targets, timeout, 0, StopSignals())
        self.interval = interval
        given = list(intervals) if intervals is not None else [None] * len(targets)
        if len(given) != len(targets):
            raise ValueError(f"{len(given)} intervals for {len(targets)} targets")
        # per target: seconds between two of its attempts (None: the watch's `interval`)
        self.intervals = [interval if i is None else i for i in given]
        self.limit = limit
        self.silence = max(silence, timeout)
        self.protocols = [packets.PROTOCOL_NUMBERS[s.target.protocol] for s in self.states]
        self.judged = [0] * len(self.states)
        self.forgotten = [0] * len(self.states)  # per target: attempts whose flows were dropped
        self.late_window = max(
            LATE_WINDOW, 10 * timeout
        )  # per target: attempts judged so far (all before are)
        self.wants: dict[int, frozenset[str]] = {}  # target index -> the verdicts it waits for
        self.done: set[int] = set()  # targets settled (no more attempts) or unsupported
        self.settled: dict[int, Settlement] = {}  # target index -> where it settled, frozen
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.stopping = False
        self.failure: str | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.sent = 0
        self.begun = threading.Event()  # set once the first attempts are out (or the watch ended)

    # ----- the loop (watch thread) ---------------------------------------------------------------

    def run_watch(self) -> None:
        """Send, listen and judge until stopped, settled, or `limit` seconds have passed. Target i's
        k-th attempt is due `k * intervals[i]` after the start; a late loop sends what is due at once."""
        try:
            self.prepare()
            start = time.monotonic()
            self.started_at = time.time()
            sent_to = [0] * len(self.states)  # per target: attempts sent so far
            rounds = 0
            while not self.stopping and time.monotonic() - start < self.limit:
                with self.lock:
                    active = [
                        i for i, s in enumerate(self.states) if i not in self.done and s.verdict is None
                    ]
                if not active and rounds:
                    break
                now = time.monotonic()
                due = [i for i in active if start + sent_to[i] * self.intervals[i] <= now]
                if self.sent + len(due) > MAX_ATTEMPTS:
                    raise RuntimeError(
                        f"stopped after {self.sent} attempts (at most {MAX_ATTEMPTS} per watch)"
                    )
                for index in due:
                    self.send_attempt(self.states[index], sent_to[index])
                    sent_to[index] += 1
                self.sent += len(due)
                self.begun.set()
                rounds += 1
                next_round = min(
                    (start + sent_to[i] * self.intervals[i] for i in active),
                    default=start + rounds * self.interval,
                )
                while (remaining := next_round - time.monotonic()) > 0:
                    self.poll(remaining)
                self.poll(0.0)
                self.judge(time.time())
        except Exception as exc:  # reported to whoever settles; the agent keeps serving
            self.failure = f"the watch failed: {type(exc).__name__}: {exc}"
        finally:
            self.begun.set()
            self.ended_at = time.time()
            self.close()
            with self.changed:
                self.stopping = True
                self.changed.notify_all()

    def answer(self, state: ProbeState, verdict: str, evidence: str, attempt: Attempt, now: float) -> None:
        """Every attempt keeps its own first answer. An answer that comes after its window (judged
        `dropped` already) still replaces the silence: the path was open, only slow (a loaded node)."""
        if attempt.verdict is None or (attempt.verdict == "dropped" and attempt.answered_at is None):
            attempt.verdict, attempt.evidence, attempt.answered_at = verdict, evidence, now

    def judge(self, now: float) -> None:
        """Attempts whose window has passed without an answer are `dropped`; attempts with an answer are
        judged in send order (so `judged[i]` is always a prefix); then settle what can be settled."""
        with self.changed:
            for index, state in enumerate(self.states):
                attempts = state.attempts
                position = self.judged[index]
                while position < len(attempts):
                    attempt = attempts[position]
                    if attempt.verdict is None:
                        if attempt.sent_at + self.timeout > now:
                            break
                        attempt.verdict = "dropped"
                        attempt.evidence = f"no answer to this attempt in {self.timeout:g} s"
                    position += 1
                self.judged[index] = position
                self.forget(index, now)
                if index in self.wants and index not in self.settled:
                    found = self.settlement(index, now)
                    if found is not None:  # frozen: attempts judged later do not move it
                        self.settled[index] = found
                        self.done.add(index)
            self.changed.notify_all()

    def forget(self, index: int, now: float) -> None:
        """Stop matching answers to judged attempts older than LATE_WINDOW (bounded memory; their source
        ports may serve again)."""
        attempts, state = self.states[index].attempts, self.states[index]
        position = self.forgotten[index]
        while position < self.judged[index] and attempts[position].sent_at + self.late_window < now:
            key = (self.protocols[index], state.target.ip, state.target.port, attempts[position].sport)
            self.flows.pop(key, None)
            position += 1
        self.forgotten[index] = position

    def settlement(self, index: int, now: float) -> Settlement | None:
        """The final run of wanted verdicts of target `index`, if it is long enough to count."""
        want = self.wants[index]
        attempts = self.states[index].attempts[: self.judged[index]]
        first = len(attempts)
        while first > 0 and attempts[first - 1].verdict in want:
            first -= 1
        length = len(attempts) - first
        if not length:
            return None
        if attempts[first].verdict != "dropped":
            return Settlement(first, length)
        if "rejected" not in want and rejected_since_open(attempts) is not None:
            return None  # silence after a rate-limited rejection (see rejected_since_open)
        # silence counts once it is CONFIRM_SILENCE attempts long and has lasted `silence` seconds with
        # no late answer breaking it (a loaded node can answer after an attempt's own window)
        lasted = now - attempts[first].sent_at >= self.silence
        return Settlement(first, length) if length >= CONFIRM_SILENCE and lasted else None

    # ----- asking for a settlement (request threads) ---------------------------------------------

    def indexes(self) -> dict[tuple[str, int, str], int]:
        """(ip, port, protocol) -> target index, to match a settle request's targets to this watch."""
        return {(s.target.ip, s.target.port, s.target.protocol): i for i, s in enumerate(self.states)}

    def settle(self, wants: Mapping[int, Collection[str]], deadline: float) -> None:
        """Wait (at most until the monotonic `deadline`) until every target in `wants` is settled."""
        with self.changed:
            for index, want in wants.items():
                self.wants[index] = frozenset(want)
                if self.states[index].verdict is not None:  # unsupported: nothing was sent
                    self.done.add(index)
            while not self.stopping and not all(i in self.done for i in wants):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.changed.wait(min(remaining, 0.5))

    def stop(self) -> None:
        with self.changed:
            self.stopping = True

    def wait_ended(self, seconds: float) -> bool:
        """Wait at most `seconds` until the watch loop has ended (its sockets closed); whether it has."""
        with self.changed:
            return self.changed.wait_for(lambda: self.ended_at is not None, seconds)

    def timeline(self, index: int) -> dict[str, object]:
        """Every judged attempt toward target `index`, in send order, as runs of one verdict: `[verdict,
        first attempt's send time, last attempt's send time, attempts, the first attempt's evidence]`
        (times: Unix seconds of this pod's clock). Attempts still within their window when the watch
        ended have no verdict and are left out."""
        with self.lock:
            state = self.states[index]
            result: dict[str, object] = {
                "id": state.target.id,
                "ip": state.target.ip,
                "port": state.target.port,
                "protocol": state.target.protocol,
            }
            if state.verdict is not None:  # unsupported: never sent
                return {**result, "verdict": state.verdict, "evidence": state.evidence, "runs": []}
            runs: list[list[Any]] = []
            for attempt in state.attempts[: self.judged[index]]:
                sent = round(attempt.sent_at, 6)
                if runs and runs[-1][0] == attempt.verdict:
                    runs[-1][2] = sent
                    runs[-1][3] += 1
                else:
                    runs.append([attempt.verdict, sent, sent, 1, attempt.evidence])
            return {**result, "runs": runs}

    def report(self, index: int, target_id: str) -> dict[str, object]:
        """What target `index` showed: the settled attempt (or the last judged one) and its timeline."""
        with self.lock:
            state = self.states[index]
            attempts = state.attempts[: self.judged[index]]
            found = self.settled.get(index)
            result: dict[str, object] = {
                "id": target_id,
                "ip": state.target.ip,
                "port": state.target.port,
                "protocol": state.target.protocol,
                "attempts": len(state.attempts),
                "settled": found is not None,
                "settled_at": None,
                "previous_at": None,
                "first_at": attempts[0].sent_at if attempts else None,
                "rtt_ms": None,
            }
            if state.verdict is not None:  # unsupported: never sent
                result.update(verdict=state.verdict, evidence=state.evidence, attempts=0, settled=True)
                return result
            shown = attempts[found.first] if found is not None else (attempts[-1] if attempts else None)
            if shown is None:
                result.update(verdict="error", evidence=self.failure or "no attempt was judged")
                return result
            result.update(verdict=shown.verdict, evidence=shown.evidence)
            rejected = rejected_since_open(attempts) if found is None else None
            if rejected is not None and shown.verdict == "dropped" and index in self.wants:
                first_rejected, after = rejected
                shown = first_rejected
                result.update(
                    verdict="rejected",
                    evidence=f"{first_rejected.evidence}; the {after} attempt(s) after it went unanswered, "
                    "which after a rejection is the node's ICMP rate limit (about one error a second to "
                    "one source), not a drop",
                )
            if shown.answered_at is not None:
                result["rtt_ms"] = round(max(0.0, shown.answered_at - shown.sent_at) * 1000.0, 3)
            if found is not None:
                result["settled_at"] = round(shown.sent_at, 6)
                if found.first > 0:
                    result["previous_at"] = round(attempts[found.first - 1].sent_at, 6)
            return result
