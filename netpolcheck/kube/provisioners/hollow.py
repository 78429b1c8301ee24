"""The embedded cluster: `netpolcheck hollow up --weave-version none`, then Weave from manifests/weave/.

The cluster starts with no weave-net DaemonSet; Weave is installed through the API from the same
manifests as on kind or kops. weave-npc containers run the reference controller, or the program given
per image tag with `--weave-npc-binary VER=PATH`, so rolling the DaemonSet from one tag to another
changes the program node by node. With `npc_faults` (the suite's `--npc-fault`), every weave-npc
container runs the reference controller with those fault switches (netpolcheck/npc/faults.py), through
a launcher written beside the state dir: every version, across upgrades.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from netpolcheck.errors import UsageError
from netpolcheck.kube import probepods
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.provisioners.base import Cluster, ClusterOptions, install_weave, private_dir
from netpolcheck.kube.waiting import WaitTimeout, wait_for

DEFAULT_NODES = 3
DEFAULT_POD_CIDR = "10.32.0.0/12"  # Weave's IPALLOC_RANGE default
RANGE_BUSY = "overlaps existing route"
RANGE_WAIT = 180.0  # seconds to wait for the pod range when another embedded cluster holds it


def hollow_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "netpolcheck", "hollow", *args]


def npc_program(options: ClusterOptions, directory: Path) -> str:
    """`reference`, or a launcher (0700, written at creation) of the reference controller with faults."""
    if not options.npc_faults:
        return "reference"
    path = directory / "weave-npc-with-faults"
    faults = " ".join(f"--fault {shlex.quote(name)}" for name in options.npc_faults)
    text = f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m netpolcheck.npc {faults} "$@"\n'
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o700)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return str(path)


def up_command(options: ClusterOptions, state_dir: Path) -> list[str]:
    binaries = [f"--weave-npc-binary={tag}={path}" for tag, path in options.weave_npc_binaries.items()]
    return hollow_command(
        "up",
        "--nodes",
        str(options.nodes or DEFAULT_NODES),
        "--state-dir",
        str(state_dir),
        "--npc",
        npc_program(options, state_dir.parent),
        "--weave-version",
        "none",
        "--pod-cidr",
        options.pod_cidr or DEFAULT_POD_CIDR,
        *binaries,
    )


def start(options: ClusterOptions, state_dir: Path) -> None:
    """`hollow up`, waiting (bounded) while another embedded cluster holds the pod range."""
    last: list[str] = [""]

    def up() -> bool:
        proc = subprocess.run(up_command(options, state_dir), capture_output=True, text=True, timeout=300)
        if proc.returncode == 0:
            return True
        last[0] = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        if RANGE_BUSY in proc.stderr:
            return False
        raise UsageError(f"hollow: {last[0].removeprefix('netpolcheck: error: ')}")

    try:
        wait_for(
            up,
            f"the embedded cluster's pod range {options.pod_cidr or DEFAULT_POD_CIDR} to be free",
            timeout=RANGE_WAIT,
            interval=2.0,
            describe_last=lambda: last[0].removeprefix("netpolcheck: error: "),
        )
    except WaitTimeout as exc:
        raise UsageError(f"hollow: {exc}") from None


def stop(state_dir: Path) -> None:
    subprocess.run(hollow_command("down", "--state-dir", str(state_dir)), capture_output=True, timeout=300)


def provision(options: ClusterOptions) -> Cluster:
    state_dir = private_dir(Path(options.work_dir)) / "hollow"
    kubeconfig = state_dir / "kubeconfig"
    cluster = Cluster(
        name=f"hollow:{state_dir}",
        kind="hollow",
        kubeconfig=kubeconfig,
        context=None,
        nodes=[],
        weave_version=None,
        pod_cidr=options.pod_cidr or DEFAULT_POD_CIDR,
        _cleanup=None if options.keep_cluster else lambda: stop(state_dir),
    )
    try:
        # inside the try: an interrupt (Ctrl-C; SIGTERM or SIGHUP in the suite) kills a
        # `hollow up` that may already have started the detached daemon; `down` removes it
        start(options, state_dir)
        api = KubeApi.from_kubeconfig(kubeconfig)
        try:
            cluster.nodes = probepods.schedulable_nodes(api)
            cluster.weave_version = install_weave(api, options, cluster.pod_cidr)
        finally:
            api.close()
    except BaseException:
        stop(state_dir)  # nothing half-made is left behind, --keep-cluster or not
        raise
    return cluster
