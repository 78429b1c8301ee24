"""`hollow up/down/status` as a user runs them: bad input, busy state dir, crash recovery, no leftovers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from netpolcheck.hollow import cleanup
from netpolcheck.hollow.waits import wait_until
from tests.dispositions import reset_to_defaults
from tests.hollow.clusterkit import WITHOUT_PRIVILEGE, Cluster, hollow, leftovers, start_cluster, stop_cluster
from tests.hollow.kubetyped import as_body
from tests.hollow.podtools import echo_pod, wait_running

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

CRASH_CIDR = "10.240.0.0/16"
STOP_CIDR = "10.249.0.0/16"  # the terminated `up`


def daemons_for(state_dir: Path) -> list[int]:
    """PIDs of hollow daemons started for `state_dir` (other engineers may run their own clusters)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if b"netpolcheck.hollow.daemon" in argv and str(state_dir).encode() in argv:
            pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "0"], "--nodes 0 is not in 1..16"),
        (["--nodes", "17"], "--nodes 17 is not in 1..16"),
        (["--pod-cidr", "192.0.0.0/19"], "overlaps existing route"),  # the machine's 192.0.2.0/24
        (["--pod-cidr", "10.1.0.0/24"], "too small"),
        (["--npc", "/no/such/weave-npc"], "neither none, reference nor an executable"),
        (["--weave-version", "latest"], "not a Weave version"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_created(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = hollow("up", "--state-dir", str(tmp_path / "state"), *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    # no prefix was ever made (it is recorded in the state dir first) and no daemon started
    assert not (tmp_path / "state").exists()
    assert daemons_for(tmp_path / "state") == []


def test_not_root_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *WITHOUT_PRIVILEGE,
            sys.executable,
            "-m",
            "netpolcheck.cli",
            "hollow",
            "up",
            "--state-dir",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2 and "needs root" in result.stderr, result.stderr
    assert not (tmp_path / "s").exists()


def test_missing_ipset_is_refused(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ip", "iptables", "nsenter"):
        (bin_dir / tool).symlink_to(
            subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        )
    env = dict(os.environ, PATH=str(bin_dir))
    result = subprocess.run(
        [sys.executable, "-m", "netpolcheck.cli", "hollow", "up", "--state-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2 and "`ipset`" in result.stderr, result.stderr


def test_busy_state_dir_is_refused_and_status_reports(shared_cluster: Cluster) -> None:
    result = hollow("up", "--state-dir", str(shared_cluster.state_dir), "--pod-cidr", "10.241.0.0/16")
    assert result.returncode == 2 and "is busy" in result.stderr, result.stderr
    status = hollow("status", "--state-dir", str(shared_cluster.state_dir))
    assert status.returncode == 0 and "(running)" in status.stdout and "answers" in status.stdout


def kill_everything(prefix: str) -> list[int]:
    """kill -9 every process of the cluster (daemon, containers), by PID, as a crash would."""
    marker = f"HOLLOW_CLUSTER={prefix}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    for pid in pids:
        # short-lived children (e.g. the policy controller's iptables calls) may have exited meanwhile
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def crash(cluster: Cluster) -> None:
    cluster.core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("victim", node="node2")))
    wait_running(cluster.core, "default", "victim")
    daemon_pid = json.loads((cluster.state_dir / "cluster.json").read_text())["daemon_pid"]
    killed = kill_everything(cluster.prefix)
    assert daemon_pid in killed and len(killed) >= 2
    wait_until(
        lambda: (
            not any(
                Path(f"/proc/{p}/status").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text()
                for p in killed
            )
        ),
        5,
        "killed processes to go",
    )
    left = leftovers(cluster.prefix, CRASH_CIDR)
    assert any(x.startswith("netns") for x in left) and any(x.startswith("route") for x in left), left


def test_down_after_kill_9_leaves_nothing(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "state", "--nodes", "3", cidr=CRASH_CIDR)
    try:
        crash(cluster)
    finally:
        result = hollow("down", "--state-dir", str(cluster.state_dir))
    assert result.returncode == 0, result.stderr
    assert leftovers(cluster.prefix, CRASH_CIDR) == []
    again = hollow("down", "--state-dir", str(cluster.state_dir))
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_up_after_kill_9_cleans_the_leftovers_first(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "state", "--nodes", "2", cidr=CRASH_CIDR)
    try:
        crash(cluster)
        second = start_cluster(tmp_path / "state", "--nodes", "2", cidr=CRASH_CIDR)
    except BaseException:
        hollow("down", "--state-dir", str(cluster.state_dir))
        raise
    try:
        # the old cluster's netns and processes are gone; the route now belongs to the new cluster
        assert [x for x in leftovers(cluster.prefix, CRASH_CIDR) if not x.startswith("route")] == []
        routes = subprocess.run(
            ["ip", "-4", "route", "show", "type", "unreachable"], capture_output=True, text=True, check=True
        ).stdout
        assert routes.count(CRASH_CIDR) == 1
        assert second.prefix != cluster.prefix
        assert len(second.core.list_node().items) == 2
    finally:
        stop_cluster(second)


def test_sigterm_to_the_daemon_tears_everything_down(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "state", "--nodes", "1", cidr=CRASH_CIDR)
    try:
        cluster.core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("p")))
        wait_running(cluster.core, "default", "p")
        os.kill(json.loads((cluster.state_dir / "cluster.json").read_text())["daemon_pid"], signal.SIGTERM)
        wait_until(lambda: leftovers(cluster.prefix, CRASH_CIDR) == [], 20, "the daemon's own teardown")
    finally:
        hollow("down", "--state-dir", str(cluster.state_dir))
    assert leftovers(cluster.prefix, CRASH_CIDR) == []


# Put on the daemon's PYTHONPATH by the test below: a daemon (the only process `up` starts with the
# cluster's variable set) marks that it started, then waits for the end of the test instead of building.
# `up` then waits for the cluster for certain when the test stops it; without this hold, a busy machine
# sometimes let the daemon finish before the test's signal, and `up` rightly exited 0.
HOLD_DAEMON = f"""
import os, time
if os.environ.get("{cleanup.CLUSTER_ENV}") and os.environ.get("HOLD_DAEMON_MARK"):
    open(os.environ["HOLD_DAEMON_MARK"], "w").close()
    time.sleep(300)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminated_up_removes_the_half_made_cluster(tmp_path: Path, signum: signal.Signals) -> None:
    """`up` starts a detached daemon: killed by SIGTERM or SIGHUP while it waits, `up` itself removes it
    (the daemon, the range's claim and route, the record)."""
    state, hold = tmp_path / "state", tmp_path / "hold"
    hold.mkdir()
    (hold / "sitecustomize.py").write_text(HOLD_DAEMON)
    mark = tmp_path / "daemon-started"
    path = os.pathsep.join(p for p in (str(hold), os.environ.get("PYTHONPATH", "")) if p)
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netpolcheck",
            "hollow",
            "up",
            "--state-dir",
            str(state),
            "--pod-cidr",
            STOP_CIDR,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=path, HOLD_DAEMON_MARK=str(mark)),
        preexec_fn=reset_to_defaults,  # under nohup, `up` would rightly keep ignoring SIGHUP
    )
    prefix = ""
    try:
        wait_until(lambda: mark.exists() or up.poll() is not None, 60, "up to start its daemon")
        assert up.poll() is None, up.communicate()
        prefix = json.loads((state / "cluster.json").read_text())["prefix"]
        daemons = daemons_for(state)
        assert len(daemons) == 1 and leftovers(prefix, STOP_CIDR) != [], "nothing half-made to remove"
        up.send_signal(signum)
        _, stderr = up.communicate(timeout=120)
        assert up.returncode == 1, stderr
        assert f"stopped by {signum.name}; cleaned up" in stderr, stderr
        assert leftovers(prefix, STOP_CIDR) == []
        assert daemons_for(state) == []
        assert not (state / "cluster.json").exists()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for pid in daemons_for(state):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if prefix and leftovers(prefix, STOP_CIDR):
            hollow("down", "--state-dir", str(state))
