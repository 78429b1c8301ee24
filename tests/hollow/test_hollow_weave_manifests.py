"""The project's Weave manifests run on the hollow cluster: install 2.1.3, upgrade to 2.8.1 node by node."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.hollow.clusterkit import REPO, Cluster, start_cluster, stop_cluster
from tests.hollow.kubetyped import present, spec_of

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

MANIFESTS = REPO / "manifests" / "weave"
WEAVE_CIDR = "10.243.0.0/16"


@pytest.fixture(scope="module")
def weave_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # --npc none: `up` makes no weave-net DaemonSet of its own; the test creates the manifests' one
    state_dir = tmp_path_factory.mktemp("hollow-weave") / "state"
    cluster = start_cluster(state_dir, "--nodes", "2", "--npc", "none", cidr=WEAVE_CIDR)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def forward_rules(cluster: Cluster, node: str) -> list[str]:
    out = subprocess.run(
        ["ip", "netns", "exec", f"{cluster.prefix}-{node}", "iptables", "-S", "FORWARD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if line.startswith("-A ")]


def apply(cluster: Cluster, verb: str, manifest: Path) -> None:
    result = cluster.kubectl(verb, "--validate=false", "-f", str(manifest))
    assert result.returncode == 0, result.stderr


def keeping_selector(cluster: Cluster, manifest: Path, tmp_path: Path) -> Path:
    """`manifest` with the weave-net DaemonSet's selector (and template labels) of the running one.

    A DaemonSet's selector is immutable, and 2.1.3's (defaulted from its template labels, which carry
    role.kubernetes.io/networking) differs from 2.8.1's, so a real API server rejects a plain replace
    as well; an in-place upgrade keeps the old selector, as here."""
    weave_net = cluster.apps.read_namespaced_daemon_set("weave-net", "kube-system")
    stored = present(spec_of(weave_net).selector.match_labels, "spec.selector.matchLabels")
    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    for doc in docs:
        if doc.get("kind") == "DaemonSet":
            doc["spec"]["selector"] = {"matchLabels": dict(stored)}
            doc["spec"]["template"]["metadata"].setdefault("labels", {}).update(stored)
    out = tmp_path / manifest.name
    out.write_text(yaml.safe_dump_all(docs))
    return out


def test_seed_upgrade_213_to_281_changes_the_router_hooks_on_every_node(
    weave_cluster: Cluster, tmp_path: Path
) -> None:
    apply(weave_cluster, "create", MANIFESTS / "weave-2.1.3.yaml")
    status = weave_cluster.kubectl(
        "rollout", "status", "-n", "kube-system", "ds/weave-net", "--timeout=60s", timeout=90
    )
    assert status.returncode == 0, status.stdout + status.stderr
    for node in ("node1", "node2"):
        rules = forward_rules(weave_cluster, node)
        assert rules[0] == "-A FORWARD -o weave -j WEAVE-NPC" and not any("EGRESS" in r for r in rules), rules
    apply(weave_cluster, "replace", keeping_selector(weave_cluster, MANIFESTS / "weave-2.8.1.yaml", tmp_path))
    status = weave_cluster.kubectl(
        "rollout", "status", "-n", "kube-system", "ds/weave-net", "--timeout=60s", timeout=90
    )
    assert status.returncode == 0 and "successfully rolled out" in status.stdout, (
        status.stdout + status.stderr
    )
    for node in ("node1", "node2"):
        rules = forward_rules(weave_cluster, node)
        # 2.8.1 re-inserts the whole block at the top, egress hook first; nothing of 2.1.3's copy is left
        assert rules == [
            "-A FORWARD -i weave -j WEAVE-NPC-EGRESS",
            "-A FORWARD -o weave -j WEAVE-NPC",
            "-A FORWARD -o weave -m state --state NEW -j NFLOG --nflog-group 86",
            "-A FORWARD -o weave -j DROP",
            "-A FORWARD -i weave ! -o weave -j ACCEPT",
            "-A FORWARD -o weave -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ]
    pods = weave_cluster.core.list_namespaced_pod("kube-system", label_selector="name=weave-net").items
    assert sorted(str(c.image) for p in pods for c in spec_of(p).containers) == [
        "weaveworks/weave-kube:2.8.1",
        "weaveworks/weave-kube:2.8.1",
        "weaveworks/weave-npc:2.8.1",
        "weaveworks/weave-npc:2.8.1",
    ]
