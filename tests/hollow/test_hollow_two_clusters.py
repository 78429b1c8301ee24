"""Two clusters on one machine: racing `hollow up` on one pod range, stale records, `status` after kill -9.

The loser of a race must print the one-line overlap error (naming the winner and a free range) and
exit 2, and nothing it does may remove the winner's `unreachable` route: without it the pod range
would be routed off the machine.
"""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from netpolcheck.hollow.cleanup import alive
from netpolcheck.hollow.fabric import release_pod_range
from netpolcheck.hollow.waits import wait_until
from tests.hollow.clusterkit import hollow, leftovers, start_cluster, stop_cluster

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

RACE_CIDR = "10.208.0.0/16"  # this module's own ranges (docs/hollow.md lists the test ranges)
STATUS_CIDR = "10.211.0.0/16"
PAIRS = 10


def unreachable_routes() -> list[str]:
    out = subprocess.run(["ip", "-4", "route", "show", "type", "unreachable"], capture_output=True, text=True)
    return [line.split()[1] for line in out.stdout.splitlines()]


def up_process(state_dir: Path) -> subprocess.CompletedProcess[str]:
    args = ["--nodes", "1", "--npc", "none", "--state-dir", str(state_dir), "--pod-cidr", RACE_CIDR]
    return hollow("up", *args)


def test_racing_ups_on_one_range_one_wins_the_other_gets_one_line(tmp_path: Path) -> None:
    assert RACE_CIDR not in unreachable_routes()
    for round_ in range(PAIRS):
        dirs = [tmp_path / f"r{round_}-a", tmp_path / f"r{round_}-b"]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(up_process, dirs))
        winners = [i for i, r in enumerate(results) if r.returncode == 0]
        assert len(winners) == 1, [(r.returncode, r.stderr) for r in results]
        winner_dir, loser = dirs[winners[0]], results[1 - winners[0]]
        prefix = json.loads((winner_dir / "cluster.json").read_text())["prefix"]
        try:
            assert loser.returncode == 2
            assert loser.stdout == "" and loser.stderr.count("\n") == 1, loser.stderr
            assert "Traceback" not in loser.stderr and "RTNETLINK" not in loser.stderr
            assert f"--pod-cidr {RACE_CIDR} overlaps existing route(s)" in loser.stderr
            assert f"hollow cluster {prefix}, state dir {winner_dir}" in loser.stderr
            free = loser.stderr.split("a free range: --pod-cidr ")[1].split()[0]
            net = ipaddress.ip_network(free)
            assert not any(net.overlaps(ipaddress.ip_network(r)) for r in unreachable_routes())
            # the loser left nothing; the winner's route is in place after the loser has finished
            assert not (dirs[1 - winners[0]] / "cluster.json").exists()
            assert RACE_CIDR in unreachable_routes(), f"round {round_}: the winner's route is gone"
            status = hollow("status", "--state-dir", str(winner_dir))
            assert status.returncode == 0, status.stdout + status.stderr
        finally:
            down = hollow("down", "--state-dir", str(winner_dir))
            assert down.returncode == 0, down.stderr
        assert RACE_CIDR not in unreachable_routes() and leftovers(prefix, RACE_CIDR) == []


def test_a_stale_record_naming_the_range_never_removes_the_holders_route(tmp_path: Path) -> None:
    """What a race loser's cluster.json says (route recorded before it lost), replayed by `down`."""
    cluster = start_cluster(tmp_path / "winner", "--nodes", "1", "--npc", "none", cidr=RACE_CIDR)
    try:
        stale = tmp_path / "stale"
        stale.mkdir(mode=0o700)
        record = json.loads((cluster.state_dir / "cluster.json").read_text())
        record.update(prefix="hw0dead0", daemon_pid=None, status="starting", route=RACE_CIDR)
        (stale / "cluster.json").write_text(json.dumps(record))
        down = hollow("down", "--state-dir", str(stale))
        assert down.returncode == 0, down.stderr
        assert RACE_CIDR in unreachable_routes()
        up_again = hollow("up", "--state-dir", str(stale), "--pod-cidr", RACE_CIDR)  # cleans leftovers first
        assert up_again.returncode == 2 and f"hollow cluster {cluster.prefix}" in up_again.stderr
        assert RACE_CIDR in unreachable_routes()
    finally:
        stop_cluster(cluster)
    assert RACE_CIDR not in unreachable_routes()


def test_status_after_kill_9_of_the_daemon_lists_what_still_runs(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "state", "--nodes", "2", cidr=STATUS_CIDR)
    try:
        wait_until(
            lambda: len(cluster.core.list_namespaced_pod("kube-system").items) == 2,
            30,
            "the weave-net pods to exist",
        )
        daemon = int(cluster.record()["daemon_pid"])  # type: ignore[call-overload]
        os.kill(daemon, signal.SIGKILL)
        wait_until(lambda: not alive(daemon), 10, f"daemon pid {daemon} to die")
        status = hollow("status", "--state-dir", str(cluster.state_dir))
        assert status.returncode == 1
        lines = status.stdout.splitlines()
        assert "NOT running" in lines[0]
        left = next(line for line in lines if line.startswith("left"))
        count = int(left.split()[1])
        assert count >= 4, status.stdout  # 2 pods x 2 containers, at least
        assert "still running" in left and "netpolcheck" in left
        assert f"{cluster.prefix}-node1" in status.stdout  # its namespaces are listed
    finally:
        stop_cluster(cluster)


def _claim(barrier: Any, results: Any, prefix: str, state_dir: str) -> None:
    from netpolcheck.hollow.fabric import RouteConflict, claim_pod_range

    barrier.wait(timeout=30)  # every claimant calls claim_pod_range at the same moment
    try:
        claim_pod_range(ipaddress.IPv4Network(RACE_CIDR), prefix, Path(state_dir))
        results.put((prefix, "won"))
    except RouteConflict as exc:
        results.put((prefix, str(exc)))
    except Exception as exc:  # e.g. `RTNETLINK answers: File exists`: the race the lock prevents
        results.put((prefix, f"crashed: {exc}"))


def test_simultaneous_claims_exactly_one_wins_and_only_it_releases(tmp_path: Path) -> None:
    """The claim itself, raced by 8 processes released by one barrier (no CLI start-up to spread them)."""
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(8), ctx.Queue()
    prefixes = [f"hw00000{i}" for i in range(8)]
    procs = [ctx.Process(target=_claim, args=(barrier, results, p, str(tmp_path / p))) for p in prefixes]
    for proc in procs:
        proc.start()
    try:
        outcome = dict(results.get(timeout=60) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=30)
    winners = [p for p, r in outcome.items() if r == "won"]
    try:
        assert len(winners) == 1, outcome
        for prefix, message in outcome.items():
            if prefix != winners[0]:
                assert f"(hollow cluster {winners[0]}, state dir {tmp_path / winners[0]})" in message
        for prefix in prefixes:  # every loser's release is refused; the route stays
            if prefix != winners[0]:
                assert not release_pod_range(RACE_CIDR, prefix)
        assert RACE_CIDR in unreachable_routes()
    finally:
        if winners:
            assert release_pod_range(RACE_CIDR, winners[0])
    assert RACE_CIDR not in unreachable_routes()
