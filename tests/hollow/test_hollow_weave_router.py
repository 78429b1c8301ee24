"""The weave-kube stand-in installs Weave's router hooks, per version, in a real network namespace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from netpolcheck.hollow.waits import wait_until

pytestmark = pytest.mark.netns

# FORWARD and INPUT hooks of node1 in tests/data/observed-2.8.1/m-endport/iptables-save.node1.txt
OBSERVED_281 = [
    "-A INPUT -i weave -j WEAVE-NPC-EGRESS",
    "-A FORWARD -i weave -j WEAVE-NPC-EGRESS",
    "-A FORWARD -o weave -j WEAVE-NPC",
    "-A FORWARD -o weave -m state --state NEW -j NFLOG --nflog-group 86",
    "-A FORWARD -o weave -j DROP",
    "-A FORWARD -i weave ! -o weave -j ACCEPT",
    "-A FORWARD -o weave -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
]
KUBE_FORWARD = "-A FORWARD -m comment --comment kube-forward -j ACCEPT"


@pytest.fixture
def node_ns() -> Iterator[str]:
    name = f"hwtest{os.getpid() % 100000}-router"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def hooks(ns: str) -> list[str]:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "iptables-save", "-t", "filter"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.startswith(("-A FORWARD", "-A INPUT"))]


def run_router(ns: str, version: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            ns,
            sys.executable,
            "-m",
            "netpolcheck.hollow.weave_router",
            "--version",
            version,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded by the router itself: it prints READY or exits
    assert line.startswith("READY"), line
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0


def test_281_hooks_match_the_observed_weave_and_go_before_existing_rules(node_ns: str) -> None:
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            node_ns,
            "iptables",
            "-A",
            "FORWARD",
            "-m",
            "comment",
            "--comment",
            "kube-forward",
            "-j",
            "ACCEPT",
        ],
        check=True,
    )
    proc = run_router(node_ns, "2.8.1")
    try:
        assert hooks(node_ns) == [*OBSERVED_281, KUBE_FORWARD]
    finally:
        stop(proc)
    # a second router (an upgrade) finds them in place and adds nothing
    stop(run_router(node_ns, "2.8.1"))
    assert hooks(node_ns) == [*OBSERVED_281, KUBE_FORWARD]


def test_213_hooks_are_appended_after_existing_rules_without_egress(node_ns: str) -> None:
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            node_ns,
            "iptables",
            "-A",
            "FORWARD",
            "-m",
            "comment",
            "--comment",
            "kube-forward",
            "-j",
            "ACCEPT",
        ],
        check=True,
    )
    stop(run_router(node_ns, "2.1.3"))
    forward_281 = [r for r in OBSERVED_281 if r.startswith("-A FORWARD") and "EGRESS" not in r]
    assert hooks(node_ns) == [KUBE_FORWARD, *forward_281]


def test_27_and_later_recreate_flushed_hooks(node_ns: str) -> None:
    proc = run_router(node_ns, "2.8.1")
    try:
        subprocess.run(["ip", "netns", "exec", node_ns, "iptables", "-F", "FORWARD"], check=True)
        wait_until(lambda: hooks(node_ns) == OBSERVED_281, 10, "the router to re-create its FORWARD hooks")
    finally:
        stop(proc)


def in_ns(ns: str, *argv: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True
    ).stdout


def counted_hooks(ns: str) -> dict[str, str]:
    """FORWARD rule -> its packet/byte counters, as `iptables-save -c` prints them."""
    rules = {}
    for line in in_ns(ns, "iptables-save", "-c", "-t", "filter").splitlines():
        if line.startswith("[") and " -A FORWARD " in line:
            counters, rule = line.split(" ", 1)
            rules[rule] = counters
    return rules


def test_a_missing_rule_is_inserted_alone_and_the_others_stay_untouched(node_ns: str) -> None:
    proc = run_router(node_ns, "2.8.1")
    try:
        forward = [r for r in OBSERVED_281 if r.startswith("-A FORWARD")]
        # mark every rule with counters: a rule deleted and re-inserted would come back with 0 0
        for position, rule in enumerate(forward, start=1):
            in_ns(node_ns, "iptables", "-R", "FORWARD", str(position), "-c", "7", "700", *rule.split()[2:])
        drop = forward.index("-A FORWARD -o weave -j DROP")
        nflog = forward[drop - 1]
        in_ns(node_ns, "iptables", "-D", "FORWARD", *nflog.split()[2:])
        wait_until(lambda: hooks(node_ns) == OBSERVED_281, 15, "the router to re-insert the NFLOG rule")
        counters = counted_hooks(node_ns)
        assert counters.pop(nflog) == "[0:0]"  # the one re-inserted
        assert counters == {rule: "[7:700]" for rule in forward if rule != nflog}
    finally:
        stop(proc)


def test_a_misplaced_block_is_moved_to_the_top_without_a_gap(node_ns: str) -> None:
    proc = run_router(node_ns, "2.8.1")
    try:
        in_ns(
            node_ns,
            "iptables",
            "-I",
            "FORWARD",
            "1",
            "-m",
            "comment",
            "--comment",
            "kube-forward",
            "-j",
            "ACCEPT",
        )
        wait_until(
            lambda: hooks(node_ns) == [*OBSERVED_281, KUBE_FORWARD],
            15,
            "the router to put its block back above the rule inserted before it",
        )
    finally:
        stop(proc)


def test_the_router_starts_when_its_chains_exist_and_when_they_appear_during_its_start(node_ns: str) -> None:
    for chain in ("WEAVE-NPC", "WEAVE-NPC-EGRESS"):
        in_ns(node_ns, "iptables", "-N", chain)
    stop(run_router(node_ns, "2.8.1"))
    assert hooks(node_ns) == OBSERVED_281
    # the race: the chain is created by someone else after the router looked for it (its -N then fails)
    race = (
        "from netpolcheck.hollow import weave_router as w\n"
        "real = w.iptables\n"
        "w.iptables = lambda *a, check=True: False if a[:2] == ('-n', '-L') and not hasattr(w, 'seen') "
        "and not setattr(w, 'seen', 1) else real(*a, check=check)\n"
        "w.ensure_chains(['WEAVE-NPC'])\n"
        "print('ok')\n"
    )
    assert in_ns(node_ns, sys.executable, "-c", race).strip() == "ok"
