"""`hollow down --orphans`: clusters whose state dir is lost are found by their prefix and removed.

Decoy namespaces whose names do not match the prefix pattern, and a live cluster, must survive.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from netpolcheck.hollow import fabric
from netpolcheck.hollow.waits import wait_until
from tests.hollow.clusterkit import REPO, WITHOUT_PRIVILEGE, Cluster, hollow, leftovers, start_cluster
from tests.hollow.kubetyped import as_body
from tests.hollow.podtools import echo_pod, wait_running

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

ORPHAN_CIDR = "10.246.0.0/16"
WARNED_CIDR = "10.247.0.0/16"
# near misses of `hw` + 6 hex digits: the sweep must leave them alone
DECOYS = ["hw0rphan-node1", "hw12345-pod1", "xhwabc123-fab", "hwabc1234-node1"]


@pytest.fixture
def decoys() -> Iterator[list[str]]:
    made = []
    try:
        for name in DECOYS:
            subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
            made.append(name)
        yield made
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def tagged_pids(prefix: str) -> list[int]:
    marker = f"HOLLOW_CLUSTER={prefix}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def kill_9(prefix: str) -> None:
    """SIGKILL every process of cluster `prefix` (daemon, kubelet children, containers) and wait."""
    killed = tagged_pids(prefix)
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue  # a short-lived child exited by itself
    wait_until(lambda: all(gone(p) for p in killed), 5, "the killed cluster processes to go")


def test_kill_9_and_lost_state_dir_then_up_warns_and_down_orphans_cleans(
    tmp_path: Path, decoys: list[str], shared_cluster: Cluster
) -> None:
    cluster = start_cluster(tmp_path / "lost", "--nodes", "2", cidr=ORPHAN_CIDR)
    prefix = cluster.prefix
    warned: str | None = None  # prefix of the cluster `up` starts while the orphan is there
    try:
        cluster.core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("victim", node="node2")))
        wait_running(cluster.core, "default", "victim")
        cluster.api.close()
        kill_9(prefix)
        shutil.rmtree(tmp_path / "lost")
        left = leftovers(prefix, ORPHAN_CIDR)
        assert any(x.startswith("netns") for x in left) and any(x.startswith("route") for x in left), left
        assert "nothing to do" in hollow("down", "--state-dir", str(tmp_path / "lost")).stdout
        # bad input stays one line with an orphan on the machine (the warning comes after every check)
        bad = hollow("up", "--state-dir", str(tmp_path / "bad"), "--pod-cidr", "192.0.0.0/19")
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        assert "overlaps existing route" in bad.stderr and not (tmp_path / "bad").exists()

        # `up` elsewhere warns about the orphan and still starts
        up = hollow("up", "--state-dir", str(tmp_path / "other"), "--nodes", "1", "--pod-cidr", WARNED_CIDR)
        assert up.returncode == 0, up.stderr
        warned = json.loads((tmp_path / "other" / "cluster.json").read_text())["prefix"]
        assert "orphaned hollow cluster" in up.stderr and prefix in up.stderr, up.stderr
        assert "hollow down --orphans" in up.stderr

        down = hollow("down", "--orphans")
        assert down.returncode == 0, down.stderr
        assert f"removed orphaned hollow cluster {prefix}" in down.stdout, down.stdout
        assert leftovers(prefix, ORPHAN_CIDR) == []
        assert not Path(f"/run/netpolcheck-hollow/{prefix}.json").exists()
        # nothing else was touched: decoys, the live clusters and their routes
        assert set(decoys) <= netns_names()
        assert warned not in down.stdout and shared_cluster.prefix not in down.stdout
        assert f"{warned}-node1" in netns_names()
        assert shared_cluster.core.list_node().items
        assert leftovers(warned, WARNED_CIDR) != []  # still running
        assert hollow("status", "--state-dir", str(tmp_path / "other")).returncode == 0
        again = hollow("down", "--orphans")
        assert again.returncode == 0 and prefix not in again.stdout
    finally:
        if warned is not None:
            hollow("down", "--state-dir", str(tmp_path / "other"))
            assert leftovers(warned, WARNED_CIDR) == []
        if leftovers(prefix, ORPHAN_CIDR):
            hollow("down", "--orphans")


def test_up_on_the_range_of_a_killed_cluster_removes_it_and_starts(tmp_path: Path) -> None:
    """The second run after a `kill -9` of the first (daemon and all) gets the same range back."""
    first = start_cluster(tmp_path / "first", "--nodes", "1", "--npc", "none", cidr=ORPHAN_CIDR)
    second: str | None = None
    try:
        first.core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("p")))
        wait_running(first.core, "default", "p")
        first.api.close()
        kill_9(first.prefix)
        assert any(x.startswith("netns") for x in leftovers(first.prefix, ORPHAN_CIDR))

        up = hollow("up", "--state-dir", str(tmp_path / "second"), "--nodes", "1", "--pod-cidr", ORPHAN_CIDR)
        assert up.returncode == 0, up.stderr
        second = json.loads((tmp_path / "second" / "cluster.json").read_text())["prefix"]
        assert f"removed dead hollow cluster {first.prefix}, which held {ORPHAN_CIDR}" in up.stderr, up.stderr
        assert "orphaned hollow cluster" not in up.stderr, up.stderr  # it was removed, not warned about
        assert not [x for x in leftovers(first.prefix, ORPHAN_CIDR) if not x.startswith("route")]
        assert not tagged_pids(first.prefix)
        assert (
            f"unreachable {ORPHAN_CIDR}"
            in subprocess.run(
                ["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True, check=True
            ).stdout
        )  # now the second cluster's
        assert hollow("status", "--state-dir", str(tmp_path / "second")).returncode == 0
        # the first run's own state dir is still there: `down` on it finds nothing left to do
        assert hollow("down", "--state-dir", str(tmp_path / "first")).returncode == 0
        assert hollow("status", "--state-dir", str(tmp_path / "second")).returncode == 0
    finally:
        if second is not None:
            hollow("down", "--state-dir", str(tmp_path / "second"))
            assert leftovers(second, ORPHAN_CIDR) == []
        if leftovers(first.prefix, ORPHAN_CIDR):
            hollow("down", "--state-dir", str(tmp_path / "first"))


def test_a_running_cluster_whose_state_dir_was_removed_is_an_orphan(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "state", "--nodes", "1", "--npc", "none", cidr=ORPHAN_CIDR)
    try:
        cluster.core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("p")))
        wait_running(cluster.core, "default", "p")
        cluster.api.close()
        daemon_pid = cluster.record()["daemon_pid"]
        assert isinstance(daemon_pid, int)
        shutil.rmtree(tmp_path / "state")
        down = hollow("down", "--orphans")
        assert down.returncode == 0, down.stderr
        assert f"{cluster.prefix} (state dir lost" in down.stdout, down.stdout
        assert gone(daemon_pid)
        assert leftovers(cluster.prefix, ORPHAN_CIDR) == []
        assert not (tmp_path / "state").exists()  # the daemon's teardown did not make it again
    finally:
        if leftovers(cluster.prefix, ORPHAN_CIDR):
            hollow("down", "--orphans")


def test_down_orphans_needs_root() -> None:
    result = subprocess.run(
        [*WITHOUT_PRIVILEGE, sys.executable, "-m", "netpolcheck.cli", "hollow", "down", "--orphans"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "needs root" in result.stderr


CLAIMED_CIDR = "10.200.0.0/16"


def test_a_claimed_range_nothing_else_remembers_is_an_orphan(tmp_path: Path) -> None:
    """A range claim (and its route) whose cluster left no mirror, daemon or `up` behind: `down --orphans`
    removes both, instead of leaving a route that makes every later `up` on the range fail."""
    prefix = "hw" + secrets.token_hex(3)
    fabric.claim_pod_range(ipaddress.IPv4Network(CLAIMED_CIDR), prefix, tmp_path / "gone")
    try:
        assert leftovers(prefix, CLAIMED_CIDR) == [f"route unreachable {CLAIMED_CIDR} "]
        down = hollow("down", "--orphans")
        assert down.returncode == 0, down.stderr
        assert prefix in down.stdout + down.stderr and f"route unreachable {CLAIMED_CIDR}" in down.stdout
        assert leftovers(prefix, CLAIMED_CIDR) == []
        assert fabric.read_claim(ipaddress.IPv4Network(CLAIMED_CIDR)) is None
    finally:
        fabric.release_pod_range(CLAIMED_CIDR, prefix)
