"""Containers as a Kubernetes runtime makes them: own hostname, own PID namespace, only PID 1 signalled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netpolcheck.hollow import containers
from netpolcheck.hollow.waits import wait_until

pytestmark = pytest.mark.netns

# Starts a child, prints what it sees, and on SIGTERM reports whether its child was still alive.
MAIN = """
import json, os, signal, socket, subprocess, sys, time
child = subprocess.Popen(['sleep', '60'])
print('hostname', socket.gethostname(), flush=True)
print('pid', os.getpid(), flush=True)
print('pids', json.dumps(sorted(int(p) for p in os.listdir('/proc') if p.isdigit())), flush=True)
def term(*_):
    time.sleep(0.5)  # a SIGTERM sent to the whole group would have ended the child by now
    print('child alive at SIGTERM', child.poll() is None, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print('READY', flush=True)
while True:
    time.sleep(1)
"""


@pytest.fixture
def pod_ns() -> Iterator[str]:
    name = f"hwtest{os.getpid() % 100000}-ctr"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def start(ns: str, tmp_path: Path, own_pids: bool) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "c.log"
    proc = containers.launch(
        containers.LaunchSpec(
            netns=ns,
            argv=[sys.executable, "-c", MAIN],
            env={"PATH": containers.CONTAINER_PATH},
            service_account={},
            log_path=log,
            spec_path=tmp_path / "spec.json",
            hostname="web-7",
            own_pids=own_pids,
        )
    )
    wait_until(lambda: b"READY" in log.read_bytes(), 20, f"READY in {log}")
    return proc, log


def lines(log: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in log.read_text().splitlines() if " " in line)


def test_a_container_has_its_own_hostname_and_sees_only_its_own_processes(
    pod_ns: str, tmp_path: Path
) -> None:
    proc, log = start(pod_ns, tmp_path, own_pids=True)
    try:
        seen = lines(log)
        assert seen["hostname"] == "web-7"
        assert seen["pid"] == "1"
        pids = json.loads(seen["pids"])
        assert 1 in pids and len(pids) <= 3, pids  # itself, its child (and `ls` is not a process)
        assert os.uname().nodename != "web-7"  # the machine's hostname is untouched
    finally:
        containers.stop(proc, grace=5)
    assert "child alive at SIGTERM True" in log.read_text()
    assert proc.returncode == 0


def test_only_the_main_process_gets_sigterm_and_its_children_go_with_it(pod_ns: str, tmp_path: Path) -> None:
    proc, log = start(pod_ns, tmp_path, own_pids=False)  # hostPID: no PID namespace to end them
    try:
        listed = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        child_pids = [int(p) for p in listed.split()]
        assert child_pids, "the container's child"
    finally:
        containers.stop(proc, grace=5)
    assert "child alive at SIGTERM True" in log.read_text()
    wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in child_pids), 5, "the child to be killed")
