"""netpolcheck.kube on the embedded cluster: Weave from its manifests, a rollout node by node, probe pods,
exec, snapshot -> model, cleanup and a killed run's leftovers.

The cluster comes from the hollow provisioner (the suite's default): `hollow up --weave-version none`,
then Weave 2.0.5 from manifests/weave/ through the API. weave-npc 2.1.3 runs a stand-in program (the
reference controller behind a line saying which program it is), so the upgrade shows, node by node,
which program each node runs.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from netpolcheck.kube import (
    creating,
    deleting,
    execing,
    fetching,
    namespaces,
    patching,
    probepods,
    snapshot,
    watching,
    weave,
)
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import ObjectRef
from netpolcheck.kube.probepods import PodSpec
from netpolcheck.kube.provisioners import Cluster
from netpolcheck.kube.rollout import NodePod, RolloutStatus
from netpolcheck.kube.waiting import WaitTimeout, wait_for
from netpolcheck.model import SPEC, expected_results, get_profile, parse_state
from tests.kube.embedded import embedded_cluster

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

KUBE_CIDR = "10.176.0.0/12"  # this module's own pod range (Weave's /12 shape, away from its default)
STANDIN = """#!/bin/sh
echo "stand-in weave-npc 2.1.3 on $HOSTNAME"
exec {python} -m netpolcheck.npc "$@"
"""
PROBES: list[dict[str, Any]] = [{"port": 80, "protocol": "TCP"}, {"port": "serve-81-tcp", "protocol": "TCP"}]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, KubeApi]]:
    work = tmp_path_factory.mktemp("kube-embedded")
    standin = work / "weave-npc-2.1.3"
    standin.write_text(STANDIN.format(python=sys.executable))
    standin.chmod(0o700)
    binaries = {"2.1.3": str(standin)}
    with embedded_cluster(
        work, KUBE_CIDR, nodes=2, weave_version="2.0.5", weave_npc_binaries=binaries
    ) as made:
        yield made


@pytest.fixture
def run(embedded: tuple[Cluster, KubeApi]) -> Iterator[namespaces.Run]:
    current = namespaces.Run()
    try:
        yield current
    finally:
        namespaces.cleanup(embedded[1], current)


def test_weave_205_is_installed_from_its_manifest(embedded: tuple[Cluster, KubeApi]) -> None:
    cluster, api = embedded
    assert cluster.weave_version == weave.installed_version(api) == "2.0.5"
    assert cluster.nodes == ["node1", "node2"]
    assert weave.health(api, "2.0.5") == []
    ds = weave.daemonset(api)
    assert ds is not None and ds["metadata"]["labels"]["role.kubernetes.io/networking"] == "1"
    logs = weave.npc_logs(api)
    for node in cluster.nodes:

        def started(node: str = node) -> bool:
            return "Starting Weaveworks NPC 2.0.5 (netpolcheck reference)" in weave.npc_logs(api)[node]

        wait_for(
            started,
            f"the reference controller's start line on {node}",
            timeout=60,
            describe_last=lambda: repr(logs),
        )


def test_upgrade_to_213_rolls_node_by_node_and_changes_the_program(embedded: tuple[Cluster, KubeApi]) -> None:
    cluster, api = embedded
    moments: list[dict[str, str | None]] = []
    before = weave.running(api)

    def progress(status: RolloutStatus, nodes: dict[str, NodePod]) -> None:
        moments.append({n: weave.image_tag(p.image("weave-npc") or "") for n, p in nodes.items()})

    change = weave.upgrade(api, "2.1.3", timeout=180, on_progress=progress)
    assert (change.from_version, change.to_version, change.recreated) == ("2.0.5", "2.1.3", False)
    assert weave.installed_version(api) == "2.1.3" and weave.health(api, "2.1.3") == []
    # node by node: the rollout went through "1 out of 2 new pods updated" (kubectl's words), i.e. one
    # node ran the new pod while the other still had the old one (polls may or may not catch both live)
    partial = 'Waiting for daemon set "weave-net" rollout to finish: 1 out of 2 new pods updated'
    assert partial in change.rollout.messages, (change.rollout.messages, moments)
    assert change.rollout.messages[-1] == 'daemon set "weave-net" successfully rolled out'
    after = weave.running(api)
    for node in cluster.nodes:
        assert weave.image_tag(before[node].image("weave-npc") or "") == "2.0.5"
        assert (
            after[node].pod != before[node].pod
            and after[node].image("weave-npc") == "weaveworks/weave-npc:2.1.3"
        )
        assert change.rollout.per_node()[node][-1] == after[node]

        def runs_213(node: str = node) -> bool:
            return f"stand-in weave-npc 2.1.3 on {node}" in weave.npc_logs(api)[node]

        def log_tail(node: str = node) -> str:
            return weave.npc_logs(api)[node][-300:]

        wait_for(runs_213, f"{node}'s weave-npc to be the 2.1.3 program", timeout=60, describe_last=log_tail)


def test_probe_pods_on_each_node_and_exec(embedded: tuple[Cluster, KubeApi], run: namespaces.Run) -> None:
    cluster, api = embedded
    ns = namespaces.create_namespace(api, run, "exec")
    specs = [PodSpec(ns, f"p-{node}", node, {"pod": node}) for node in cluster.nodes]
    pods = probepods.create_probe_pods(api, specs, "netpolcheck/netpolcheck-probe:dev")
    assert [(p.name, p.node) for p in pods] == [(f"p-{n}", n) for n in cluster.nodes]
    assert all(p.ip.startswith("10.17") for p in pods)
    assert "READY" in probepods.agent_log(api, ns, pods[0].name)

    result = execing.exec_in(api, pods[0].ref, ["sh", "-c", "echo to-out; echo to-err >&2; exit 3"])
    assert result == execing.ExecResult("to-out\n", "to-err\n", 3)
    echoed = execing.exec_in(api, pods[1].ref, ["cat"], stdin="through stdin")
    assert (echoed.stdout, echoed.exit_code) == ("through stdin", 0)

    verdicts = execing.probe(
        api,
        pods[0].ref,
        [
            {"id": "open", "ip": pods[1].ip, "port": 80, "protocol": "TCP"},
            {"id": "closed", "ip": pods[1].ip, "port": 82, "protocol": "TCP"},
        ],
        timeout=1.0,
        retries=2,
    )
    assert [(v["id"], v["verdict"]) for v in verdicts] == [("open", "allowed"), ("closed", "refused")]


def built_state(ns: dict[str, str], pods: list[probepods.ProbePod], policy: dict[str, Any]) -> dict[str, Any]:
    """The STATE of what the test created, from its own specs (labels it asked for, IPs it was given)."""
    return {
        "namespaces": [{"name": name, "labels": {"ns": base}} for base, name in ns.items()],
        "pods": [
            {
                "namespace": p.namespace,
                "name": p.name,
                "labels": {"pod": p.name},
                "ip": p.ip,
                "node": p.node,
                "ports": [
                    {"name": f"serve-{port}-{proto.lower()}", "containerPort": port, "protocol": proto}
                    for proto in ("TCP", "UDP")
                    for port in (80, 81)
                ],
            }
            for p in pods
        ],
        "policies": [policy],
        "probes": PROBES,
    }


def test_snapshot_gives_the_model_the_matrix_of_the_state_built(
    embedded: tuple[Cluster, KubeApi], run: namespaces.Run
) -> None:
    _, api = embedded
    ns = {base: namespaces.create_namespace(api, run, base, {"ns": base}) for base in ("x", "y")}
    specs = [
        PodSpec(ns["x"], "a", "node1", {"pod": "a"}),
        PodSpec(ns["x"], "b", "node2", {"pod": "b"}),
        PodSpec(ns["y"], "c", "node1", {"pod": "c"}),
    ]
    pods = probepods.create_probe_pods(api, specs, "netpolcheck/netpolcheck-probe:dev")
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "b-from-y", "namespace": ns["x"]},
        "spec": {
            "podSelector": {"matchLabels": {"pod": "b"}},
            "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}], "ports": [{"port": 80}]}
            ],
        },
    }
    creating.apply_objects(api, [policy])
    snap = snapshot.snapshot(api, ns.values(), probes=PROBES)
    assert [p["name"] for p in snap["pods"]] == ["a", "b", "c"]
    # as stored: the API server defaults protocol and policyTypes, as a real one does
    assert [(p["metadata"], p["spec"]["policyTypes"]) for p in snap["policies"]] == [
        (policy["metadata"], ["Ingress"])
    ]
    built = built_state(ns, pods, policy)
    for profile in (SPEC, get_profile("weave-2.1.3")):
        assert expected_results(parse_state(snap), profile) == expected_results(parse_state(built), profile)

    # and the dataplane (weave-npc 2.1.3 on both nodes) converges to what the model says
    expected = expected_results(parse_state(snap), get_profile("weave-2.1.3"))["results"]
    port80 = [r for r in expected if r["port"] == 80]
    by_ip = {p.ref: p.ip for p in pods}
    observed: dict[tuple[str, str], str] = {}

    def matches() -> bool:
        for src in by_ip:
            cells = [r for r in port80 if r["from"] == src]
            targets = [{"id": r["to"], "ip": by_ip[r["to"]], "port": 80, "protocol": "TCP"} for r in cells]
            for v in execing.probe(api, src, targets, timeout=0.5, retries=1):
                observed[(src, v["id"])] = v["verdict"]
        return all(
            observed[(r["from"], r["to"])] == ("allowed" if r["allowed"] else "dropped") for r in port80
        )

    wait_for(matches, "probe verdicts to match the model", timeout=60, describe_last=lambda: repr(observed))
    assert sum(not r["allowed"] for r in port80) == 1  # only x/a -> x/b is denied


def test_cleanup_leaves_nothing_of_the_run(embedded: tuple[Cluster, KubeApi]) -> None:
    _, api = embedded
    run = namespaces.Run()
    name = namespaces.create_namespace(api, run, "gone")
    probepods.create_probe_pods(api, [PodSpec(name, "a", "node1")], "netpolcheck/netpolcheck-probe:dev")
    assert namespaces.cleanup(api, run) == [name]
    assert namespaces.run_namespaces(api, run.id) == []
    assert [p for p in fetching.list_objects(api, "v1", "Pod") if p["metadata"]["namespace"] == name] == []


def test_a_killed_runs_leftovers_are_removed_by_the_next_and_nothing_else(
    embedded: tuple[Cluster, KubeApi], run: namespaces.Run
) -> None:
    cluster, api = embedded
    code = (
        "import os, signal\n"
        "from netpolcheck.kube import namespaces\n"
        "from netpolcheck.kube.connection import KubeApi\n"
        f"api = KubeApi.from_kubeconfig({str(cluster.kubeconfig)!r})\n"
        "print(namespaces.create_namespace(api, namespaces.Run(), 'killed'), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    killed_ns = killed.stdout.strip()
    live_ns = namespaces.create_namespace(api, run, "live")
    elsewhere = namespaces.Run(owner=namespaces.Owner("another-host", 1, "1"))
    elsewhere_ns = namespaces.create_namespace(api, elsewhere, "elsewhere")
    plain = creating.create(
        api, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"plain-{run.id}"}}
    )
    try:
        assert namespaces.leftovers(api) == [killed_ns]
        assert namespaces.remove_leftovers(api) == [killed_ns]
        remaining = {n["metadata"]["name"] for n in fetching.list_objects(api, "v1", "Namespace")}
        assert killed_ns not in remaining
        assert {live_ns, elsewhere_ns, plain["metadata"]["name"]} <= remaining
    finally:
        namespaces.cleanup(api, elsewhere)
        deleting.delete_and_wait(api, [namespaces.ref(plain["metadata"]["name"])])


def test_follow_sees_every_write_after_since_even_short_lived_ones(embedded: tuple[Cluster, KubeApi]) -> None:
    """Three writes in a row, then a watch from before them: each state is seen, in order (a poll would
    see only the last); from the present version nothing is waited for; a deletion is seen as None."""
    _, api = embedded
    ref = ObjectRef("v1", "ConfigMap", "netpolcheck-follow-test", "default")
    created = creating.create(
        api,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": ref.name, "namespace": ref.namespace},
            "data": {"step": "0"},
        },
    )
    try:
        since = created["metadata"]["resourceVersion"]
        for step in (1, 2, 3):
            patching.merge_patch(api, ref, {"data": {"step": str(step)}})
        seen: list[str] = []

        def reached_three(obj: dict[str, Any] | None) -> bool:
            seen.append((obj or {}).get("data", {}).get("step", "gone"))
            return seen[-1] == "3"

        last = watching.follow(api, ref, reached_three, "step 3", timeout=60, since=since)
        assert seen == ["1", "2", "3"] and last is not None
        now = last["metadata"]["resourceVersion"]
        assert (
            watching.follow(api, ref, lambda o: o is not None, "it exists", timeout=60, since=now) is not None
        )
        with pytest.raises(WaitTimeout, match="step 4"):
            watching.follow(
                api, ref, lambda o: (o or {}).get("data", {}).get("step") == "4", "step 4", timeout=2
            )
    finally:
        deleting.delete_and_wait(api, [ref], timeout=60)
    assert watching.follow(api, ref, lambda o: o is None, "it to be gone", timeout=60) is None
