"""Pure parts of the hollow cluster: addressing, image table, router hook lists, orphan name patterns."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

from netpolcheck.hollow import daemon, images, orphans
from netpolcheck.hollow.cli import process_name
from netpolcheck.hollow.ipam import AddressError, PodAddresses, parse_pod_cidr
from netpolcheck.hollow.kubelet import ContainerRun, readiness
from netpolcheck.hollow.waits import wait_until
from netpolcheck.hollow.weave_router import forward_rules, input_rules, parse_version


def test_nodes_get_weave_bridge_addresses_and_their_own_blocks() -> None:
    addrs = PodAddresses(parse_pod_cidr("10.32.0.0/12"), 3)
    assert [str(addrs.bridge_ip(k)) for k in (1, 2, 3)] == ["10.32.0.1", "10.32.0.2", "10.32.0.3"]
    first = addrs.allocate(2)
    assert first in ipaddress.ip_network("10.32.2.0/24")
    assert addrs.allocate(2) != first


def test_requested_ip_is_honoured_once_and_checked() -> None:
    addrs = PodAddresses(parse_pod_cidr("10.32.0.0/12"), 2)
    assert str(addrs.allocate(1, "10.32.1.20")) == "10.32.1.20"
    with pytest.raises(AddressError, match="already in use"):
        addrs.allocate(2, "10.32.1.20")
    with pytest.raises(AddressError, match="not a usable address"):
        addrs.allocate(1, "192.168.1.1")
    with pytest.raises(AddressError, match="already in use"):
        addrs.allocate(1, "10.32.0.2")  # node2's bridge
    addrs.release(ipaddress.IPv4Address("10.32.1.20"))
    assert str(addrs.allocate(2, "10.32.1.20")) == "10.32.1.20"


@pytest.mark.parametrize("bad", ["10.32.0.0/24", "10.32.0.1/12", "fd00::/64", "nonsense"])
def test_bad_pod_ranges_are_refused(bad: str) -> None:
    with pytest.raises(AddressError):
        parse_pod_cidr(bad)


def test_node_count_is_bounded() -> None:
    with pytest.raises(AddressError):
        PodAddresses(parse_pod_cidr("10.32.0.0/12"), 17)


def test_image_table() -> None:
    npc = {"name": "weave-npc", "image": "weaveworks/weave-npc:2.8.1", "args": ["--log-level=info"]}
    assert images.resolve(npc, "none").argv == images.IDLE_ARGV
    assert images.resolve(npc, "reference").argv == [
        sys.executable,
        "-m",
        "netpolcheck.npc",
        "--log-level=info",
    ]
    assert images.resolve(npc, "/opt/weave-npc").argv == ["/opt/weave-npc", "--log-level=info"]
    kube = {"name": "weave", "image": "rajchaudhuri/weave-kube:2.9.0", "command": ["/home/weave/launch.sh"]}
    assert images.resolve(kube, "none").argv[-2:] == ["--version", "2.9.0"]
    assert images.resolve(kube, "none", init=True).role == "weave-init"
    probe = {"name": "p", "image": "ghcr.io/x/netpolcheck-probe:1", "args": ["serve", "--tcp", "80"]}
    assert images.resolve(probe, "none").argv == [
        sys.executable,
        "-m",
        "netpolcheck.probe",
        "serve",
        "--tcp",
        "80",
    ]
    # an image it has no stand-in for, with a command the machine lacks or none: ErrImagePull
    for nginx in (
        {"name": "c", "image": "nginx", "command": ["no-such-cmd-x"]},
        {"name": "c", "image": "nginx"},
    ):
        unavailable = images.resolve(nginx, "none")
        assert (unavailable.role, unavailable.argv) == ("unavailable", [])
        assert 'cannot run image "nginx"' in unavailable.error
    assert images.resolve(
        {"name": "c", "image": "python:3.11", "command": ["sh", "-c", "true"]}, "none"
    ).argv == [
        "sh",
        "-c",
        "true",
    ]
    # busybox runs its command (default `sh`) on the machine's tools, its own wget/nc first on PATH
    busy = images.resolve({"name": "c", "image": "busybox:1.36", "command": ["wget", "-qO-", "x"]}, "none")
    assert (busy.role, busy.argv) == ("busybox", ["wget", "-qO-", "x"])
    assert images.resolve({"name": "c", "image": "busybox"}, "none").argv == ["sh"]
    echo = {"name": "e", "image": "hashicorp/http-echo:1.0", "args": ["-text=hi", "-listen=:5678"]}
    assert images.resolve(echo, "none").argv[-3:] == [
        "netpolcheck.hollow.images.http_echo",
        "-text=hi",
        "-listen=:5678",
    ]


def test_router_hooks_follow_the_version() -> None:
    assert parse_version("v2.8.1") == (2, 8, 1)
    with pytest.raises(ValueError):
        parse_version("latest")
    old = forward_rules(parse_version("2.1.3"))
    new = forward_rules(parse_version("2.8.1"))
    assert len(old) == 5 and old[0] == ["-o", "weave", "-j", "WEAVE-NPC"]
    assert new[0] == ["-i", "weave", "-j", "WEAVE-NPC-EGRESS"] and new[1:] == old
    assert input_rules(parse_version("2.3.0")) == []
    assert input_rules(parse_version("2.4.0")) == [["-i", "weave", "-j", "WEAVE-NPC-EGRESS"]]


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("hw0a1b2c-fab", "hw0a1b2c"),
        ("hw0a1b2c-node12", "hw0a1b2c"),
        ("hw0a1b2c-pod7", "hw0a1b2c"),
        ("hw0rphan-node1", None),  # not hex
        ("hw12345-pod1", None),  # 5 digits
        ("hwabc1234-node1", None),  # 7 digits
        ("xhwabc123-fab", None),
        ("hw0a1b2c-other", None),
        ("hw0a1b2c-node", None),
    ],
)
def test_orphan_netns_names_match_only_the_cluster_pattern(name: str, prefix: str | None) -> None:
    match = orphans.NETNS_NAME.fullmatch(name)
    assert (match.group(1) if match else None) == prefix


@pytest.mark.parametrize(
    ("name", "prefix"),
    [("hw0a1b2cf1", "hw0a1b2c"), ("hw0a1b2cv30", "hw0a1b2c"), ("hw0a1b2cx1", None), ("eth0", None)],
)
def test_orphan_link_names_match_only_the_fabric_veth_pattern(name: str, prefix: str | None) -> None:
    match = orphans.LINK_NAME.fullmatch(name)
    assert (match.group(1) if match else None) == prefix


def zombie_state(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def has_cmdline(pid: int) -> bool:
    return Path(f"/proc/{pid}/cmdline").read_bytes() != b""


def test_a_container_counts_as_set_up_only_with_its_own_program_in_cmdline(tmp_path: Path) -> None:
    """/proc/PID/cmdline is empty while an exec is loading (and for a zombie): not set up yet."""
    started: list[subprocess.Popen[bytes]] = []

    def container(argv: list[str]) -> tuple[ContainerRun, int]:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        started.append(proc)
        cr = ContainerRun({"name": "c"}, images.Program(argv, "command"), {}, tmp_path, proc=proc)
        return cr, proc.pid

    try:
        in_setup, in_setup_pid = container(
            [sys.executable, "-c", "import time; time.sleep(30)", "netpolcheck.hollow.container_init"]
        )
        running, running_pid = container(["sleep", "30"])
        exited, exited_pid = container(["true"])
        wait_until(lambda: zombie_state(exited_pid), 5, "`true` to exit (left unreaped)")
        wait_until(lambda: has_cmdline(running_pid), 5, "sleep to finish its exec")
        wait_until(lambda: has_cmdline(in_setup_pid), 5, "python to finish its exec")
        assert not readiness.set_up(exited)
        assert readiness.set_up(running)
        assert not readiness.set_up(in_setup)
    finally:
        for proc in started:
            proc.kill()
            proc.wait(timeout=5)


def test_weave_image_owner_compares_versions_as_versions() -> None:
    assert daemon.weave_images("2.8.1")[0] == "weaveworks/weave-kube:2.8.1"
    assert daemon.weave_images("2.9.0")[1] == "rajchaudhuri/weave-npc:2.9.0"
    assert daemon.weave_images("v2.10.1")[0] == "rajchaudhuri/weave-kube:v2.10.1"  # 2.10 > 2.9
    assert daemon.weave_images("2.10")[0].startswith("rajchaudhuri/")


def test_status_names_a_process_by_its_program_not_its_long_path(tmp_path: Path) -> None:
    deep = tmp_path / ("a-long-checkout-path-" * 4) / ".tox" / "netns" / "bin"
    deep.mkdir(parents=True)
    (deep / "sleep").symlink_to(Path("/bin/sleep").resolve())
    proc = subprocess.Popen([str(deep / "sleep"), "30"])
    try:
        # /proc/PID/cmdline reads empty for a moment while the child execs
        wait_until(lambda: Path(f"/proc/{proc.pid}/cmdline").read_bytes() != b"", 5, "sleep's command line")
        assert process_name(proc.pid) == "sleep 30"
        assert process_name(proc.pid, width=7) == "slee..."
    finally:
        proc.kill()
        proc.wait()
    assert process_name(proc.pid) == "gone"
