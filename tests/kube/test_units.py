"""Pure parts of netpolcheck.kube: versions, manifests, rollout status, YAML, owners, STATE entries."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from netpolcheck.errors import UsageError
from netpolcheck.kube import namespaces, objects, probepods, snapshot, weave
from netpolcheck.kube.execing import split_ref
from netpolcheck.kube.provisioners import ClusterOptions
from netpolcheck.kube.rollout import daemonset_status


def test_versions_compare_as_versions() -> None:
    assert weave.parse_version("2.10") > weave.parse_version("2.9.0") > weave.parse_version("v2.8.1")
    assert weave.available_versions() == ["2.0.5", "2.1.3", "2.8.1", "2.9.0"]
    with pytest.raises(ValueError, match="not a Weave version"):
        weave.parse_version("latest")


def test_image_tag() -> None:
    assert weave.image_tag("weaveworks/weave-npc:2.8.1") == "2.8.1"
    assert weave.image_tag("reg:5000/rajchaudhuri/weave-kube:2.9.0@sha256:ab") == "2.9.0"
    assert weave.image_tag("weaveworks/weave-npc") == "latest"


def test_weave_objects_pin_pull_policy_and_ipalloc_range() -> None:
    objs = weave.weave_objects("2.8.1", ipalloc_range="100.96.0.0/11")
    (ds,) = [o for o in objs if o["kind"] == "DaemonSet"]
    pod = ds["spec"]["template"]["spec"]
    containers = pod["initContainers"] + pod["containers"]
    assert {c["imagePullPolicy"] for c in containers} == {"IfNotPresent"}
    router = next(c for c in containers if c["name"] == "weave")
    assert [e["value"] for e in router["env"] if e["name"] == "IPALLOC_RANGE"] == ["100.96.0.0/11"]
    assert weave.images("2.9.0") == ["rajchaudhuri/weave-kube:2.9.0", "rajchaudhuri/weave-npc:2.9.0"]


def test_unknown_version_names_the_manifests() -> None:
    with pytest.raises(
        UsageError, match=r"no Weave manifest for version '2.7.0'; manifests/weave/ has 2.0.5, "
    ):
        weave.weave_objects("2.7.0")


def _ds(generation: int, observed: int, desired: int, updated: int, available: int) -> dict[str, object]:
    return {
        "metadata": {"name": "weave-net", "generation": generation},
        "spec": {"updateStrategy": {"type": "RollingUpdate"}},
        "status": {
            "observedGeneration": observed,
            "desiredNumberScheduled": desired,
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
        },
    }


@pytest.mark.parametrize(
    ("ds", "done", "message"),
    [
        (
            _ds(2, 1, 3, 3, 3),
            False,
            "Waiting for daemon set spec update to be observed (daemon set weave-net)",
        ),
        (_ds(2, 2, 3, 1, 3), False, "rollout to finish: 1 out of 3 new pods updated"),
        (_ds(2, 2, 3, 3, 2), False, "rollout to finish: 2 of 3 updated pods available"),
        (_ds(2, 2, 3, 3, 3), True, 'daemon set "weave-net" successfully rolled out'),
    ],
)
def test_rollout_status_reads_like_kubectl(ds: dict[str, object], done: bool, message: str) -> None:
    status = daemonset_status(ds)
    assert status.done is done and message in status.message


def test_yaml_lists_are_flattened_and_placeholders_required() -> None:
    text = "kind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n---\n"
    assert [o["metadata"]["name"] for o in objects.load_yaml(text)] == ["a"]
    with pytest.raises(UsageError, match="placeholder without a value"):
        objects.load_yaml("name: ${POD_NAME}", {})
    ref = objects.ObjectRef.of(
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "w"}}, "ks"
    )
    assert str(ref) == "DaemonSet ks/w"


def test_probe_pod_manifest_fills_the_template() -> None:
    pod = probepods.probe_pod_manifest(probepods.PodSpec("x-1", "a", "node2", {"pod": "a"}), "img:1")
    assert pod["metadata"] == {
        "name": "a",
        "namespace": "x-1",
        "labels": {"netpolcheck.io/probe": "true", "pod": "a"},
    }
    assert pod["spec"]["nodeName"] == "node2" and pod["spec"]["containers"][0]["image"] == "img:1"
    assert pod["spec"]["hostNetwork"] is False
    host = probepods.probe_pod_manifest(probepods.PodSpec("x-1", "h", "node2", host_network=True), "img:1")
    assert host["spec"]["hostNetwork"] is True and host["spec"]["nodeName"] == "node2"


def test_namespace_manifest_carries_run_owner_and_pod_security() -> None:
    run = namespaces.Run()
    ns = namespaces.namespace_manifest(run, run.namespace_name("x"), {"ns": "x"})
    assert ns["metadata"]["name"] == f"x-{run.id}"
    assert ns["metadata"]["labels"] == {
        "ns": "x",
        "pod-security.kubernetes.io/enforce": "privileged",
        "netpolcheck.io/run": run.id,
    }
    owner = namespaces.Owner.from_json(ns["metadata"]["annotations"][namespaces.OWNER_ANNOTATION])
    assert owner == run.owner and owner is not None and owner.alive() is True
    assert namespaces.Owner(owner.host, owner.pid, "1").alive() is False  # same PID, another start time
    assert namespaces.Owner("elsewhere", os.getpid(), owner.start).alive() is None


def test_snapshot_entries() -> None:
    pod: dict[str, Any] = {
        "metadata": {"namespace": "x", "name": "a", "labels": {"pod": "a"}},
        "spec": {
            "nodeName": "n1",
            "containers": [
                {"ports": [{"containerPort": 80}, {"name": "u", "containerPort": 81, "protocol": "UDP"}]}
            ],
        },
        "status": {"podIP": "10.32.0.4"},
    }
    assert snapshot.pod_entry(pod) == {
        "namespace": "x",
        "name": "a",
        "labels": {"pod": "a"},
        "ip": "10.32.0.4",
        "node": "n1",
        "hostNetwork": False,
        "ports": [
            {"containerPort": 80, "protocol": "TCP"},
            {"name": "u", "containerPort": 81, "protocol": "UDP"},
        ],
    }
    assert snapshot.pod_entry({**pod, "status": {}}) is None
    assert snapshot.pod_entry({**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "t"}}) is None
    for phase in ("Succeeded", "Failed"):  # finished: the address may already be another pod's
        assert snapshot.pod_entry({**pod, "status": {"podIP": "10.32.0.4", "phase": phase}}) is None
    assert snapshot.pod_entry({**pod, "status": {"podIP": "10.32.0.4", "phase": "Running"}}) is not None


def test_split_ref() -> None:
    assert split_ref("x/a") == ("x", "a") and split_ref(("y", "b")) == ("y", "b")
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        split_ref("a")


def test_hollow_maps_a_weave_npc_tag_to_a_program(monkeypatch: pytest.MonkeyPatch) -> None:
    from netpolcheck.hollow import images

    monkeypatch.setattr(images, "NPC_BINARIES", {"2.8.1": "/opt/weave-npc"})
    npc = {"name": "weave-npc", "image": "weaveworks/weave-npc:2.8.1", "args": ["--log-level=debug"]}
    assert images.resolve(npc, "reference").argv == ["/opt/weave-npc", "--log-level=debug"]
    other = {**npc, "image": "weaveworks/weave-npc:2.1.3"}
    assert images.resolve(other, "reference").argv[1:3] == ["-m", "netpolcheck.npc"]
    assert images.parse_npc_binary("v2.8.1=/x") == ("2.8.1", "/x")
    with pytest.raises(ValueError, match="is not VERSION=PATH"):
        images.parse_npc_binary("2.8.1")


def test_hollow_runs_the_reference_controller_with_faults_through_a_private_launcher(tmp_path: Path) -> None:
    from netpolcheck.kube.provisioners import hollow

    plain = ClusterOptions()
    assert hollow.npc_program(plain, tmp_path) == "reference" and not list(tmp_path.iterdir())
    faulty = ClusterOptions(npc_faults=("ports-ignored", "stale-pod-ip"))
    launcher = Path(hollow.npc_program(faulty, tmp_path))
    assert launcher.parent == tmp_path and (launcher.stat().st_mode & 0o777) == 0o700
    command = hollow.up_command(faulty, tmp_path / "hollow")
    assert command[command.index("--npc") + 1] == str(launcher)
    # the launcher passes the container's args on after the faults: ask the controller for its help
    proc = subprocess.run([str(launcher), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--fault" in proc.stdout
    assert (
        launcher.read_text()
        .splitlines()[1]
        .endswith('-m netpolcheck.npc --fault ports-ignored --fault stale-pod-ip "$@"')
    )


def _policy(namespace: str, name: str, created: str, version: str, uid: str = "") -> dict[str, Any]:
    meta = {"namespace": namespace, "name": name, "creationTimestamp": created, "resourceVersion": version}
    return {"metadata": {**meta, "uid": uid}, "spec": {"podSelector": {}}}


def test_snapshot_keeps_policies_in_creation_order() -> None:
    """The cross-policy ipset clash depends on the order the controller saw the policies: the STATE
    keeps creation order (timestamp, then resourceVersion as a number, then uid), not name order."""
    policies = [
        _policy("a", "first-by-name", "2026-12-01T01:00:02Z", "7"),
        _policy("z", "oldest", "2026-12-01T01:00:01Z", "900"),
        _policy("b", "same-second-later", "2026-12-01T01:00:02Z", "10"),  # 10 > 7 as numbers, not text
        _policy("b", "same-version-uid-b", "2026-12-01T01:00:03Z", "11", uid="b"),
        _policy("a", "same-version-uid-a", "2026-12-01T01:00:03Z", "11", uid="a"),
    ]
    state = snapshot.state_of([], [], policies)
    assert [p["metadata"]["name"] for p in state["policies"]] == [
        "oldest",
        "first-by-name",
        "same-second-later",
        "same-version-uid-a",
        "same-version-uid-b",
    ]
    assert state["policies"][0] == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "oldest", "namespace": "z"},
        "spec": {"podSelector": {}},
    }


def test_snapshot_keeps_the_given_order_of_policies_without_metadata() -> None:
    written = [{"metadata": {"namespace": ns, "name": n}, "spec": {}} for ns, n in (("y", "b"), ("x", "a"))]
    assert [p["metadata"]["name"] for p in snapshot.state_of([], [], written)["policies"]] == ["b", "a"]


def test_the_cross_policy_ipset_clash_follows_the_snapshots_creation_order() -> None:
    """Weave's cross-policy ipset clash depends on which policy weave-npc saw first: created in the
    other order than their names sort, the snapshot's STATE predicts what a controller running all
    along does (the namespace-only peer seen second is not enforced), not what name order would."""
    from netpolcheck.model import expected_results, parse_state
    from netpolcheck.model.profiles import weave_profile

    def ns(name: str, team: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, "team": team}}}

    def pod(namespace: str, name: str, ip: str) -> dict[str, Any]:
        meta = {"namespace": namespace, "name": name, "labels": {"pod": name}}
        return {"metadata": meta, "spec": {"nodeName": "n1"}, "status": {"podIP": ip, "phase": "Running"}}

    blue, pod_a = {"matchLabels": {"team": "blue"}}, {"matchLabels": {"pod": "a"}}
    ns_only = _policy("x", "nsonly", "2026-12-01T01:00:02Z", "20")  # created second, sorts first by name
    ns_only["spec"] = {"podSelector": pod_a, "ingress": [{"from": [{"namespaceSelector": blue}]}]}
    pod_and_ns = _policy("y", "podns", "2026-12-01T01:00:01Z", "10")
    peer = {"namespaceSelector": blue, "podSelector": {}}
    pod_and_ns["spec"] = {"podSelector": pod_a, "ingress": [{"from": [peer]}]}
    namespaces_ = [ns("x", "red"), ns("y", "blue")]
    pods = [pod("x", "a", "10.32.1.20"), pod("x", "b", "10.32.1.21"), pod("y", "a", "10.32.1.22")]
    pods.append(pod("y", "b", "10.32.1.23"))
    probes = [{"port": 80, "protocol": "TCP"}]

    def allowed(state: dict[str, Any]) -> dict[tuple[str, str], bool]:
        rows = expected_results(parse_state(state), weave_profile("2.8.1"))["results"]
        return {(r["from"], r["to"]): bool(r["allowed"]) for r in rows}

    created = snapshot.state_of(namespaces_, pods, [ns_only, pod_and_ns], probes)
    assert [p["metadata"]["name"] for p in created["policies"]] == ["podns", "nsonly"]
    by_name = {**created, "policies": list(reversed(created["policies"]))}
    assert allowed(created) != allowed(by_name)  # the order decides: the snapshot must keep the right one
    assert allowed(created)[("x/b", "x/a")] is True  # x/nsonly, seen second, is not enforced: fail open


@pytest.mark.parametrize(
    ("current", "to", "refused"),
    [
        ("2.8.1", "2.0.5", True),
        ("2.9.0", "2.1.3", True),
        ("2.4.0", "2.3.0", True),
        ("2.9.0", "2.8.1", False),  # the same hook layout
        ("2.1.3", "2.0.5", False),
        ("2.0.5", "2.9.0", False),  # upgrades are never refused
    ],
)
def test_a_downgrade_across_the_egress_hooks_is_refused(current: str, to: str, refused: bool) -> None:
    problem = weave.downgrade_problem(current, to)
    assert (problem is not None) == refused
    if problem is not None:
        assert f"Weave {current} cannot be moved down to {to} in place" in problem
        assert "WEAVE-NPC-EGRESS" in problem
