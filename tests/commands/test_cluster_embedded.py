"""`expect --kubeconfig` and `upgrade-impact --kubeconfig` on the embedded cluster: namespaces, pods and
policies created with the kubernetes client give, through the real command, exactly the output of the
same commands on the equivalent STATE file (written here from what was created and the addresses the
cluster gave the pods).

The cluster: `hollow up --nodes 2 --weave-version none --pod-cidr 10.160.0.0/12` (no policy enforcement
needed: the commands only read). It is removed at the end, with everything created in it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.fetching import list_objects
from netpolcheck.kube.provisioners import ClusterOptions
from netpolcheck.kube.provisioners.hollow import start, stop
from netpolcheck.kube.waiting import wait_for
from tests.commands.runcli import netpolcheck

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

POD_CIDR = "10.160.0.0/12"  # this module's own pod range, away from other tests' clusters
SUFFIX = uuid.uuid4().hex[:6]
NS_A, NS_B = f"front-{SUFFIX}", f"back-{SUFFIX}"
NAME_LABEL = "kubernetes.io/metadata.name"  # the label every API server puts on a namespace


def ports(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"name": name, "containerPort": number, "protocol": "TCP"} for name, number in pairs]


NAMESPACES = {NS_A: {"tier": "front"}, NS_B: {"tier": "back"}}
PODS: list[dict[str, Any]] = [
    {"namespace": NS_A, "name": "client", "labels": {"app": "client"}, "ports": []},
    {"namespace": NS_A, "name": "web", "labels": {"app": "web"}, "ports": ports(("http", 8080))},
    {
        "namespace": NS_B,
        "name": "api",
        "labels": {"app": "api"},
        "ports": ports(("http", 8080), ("admin", 9090)),
    },
    {"namespace": NS_B, "name": "db", "labels": {"app": "db"}, "ports": ports(("sql", 5432))},
]
POLICIES: list[dict[str, Any]] = [
    {  # 2.0.5 ignores a deny-all in a namespace without legacy isolation; 2.1.3 closes it
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": NS_A},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    },
    {  # a named port and a namespace selected by the label the API server adds
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "api-from-front", "namespace": NS_B},
        "spec": {
            "podSelector": {"matchLabels": {"app": "api"}},
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: NS_A}}}],
                    "ports": [{"port": "http"}],
                }
            ],
        },
    },
]


def pod_manifest(pod: dict[str, Any], node: str) -> dict[str, Any]:
    listen = pod["ports"][0]["containerPort"] if pod["ports"] else 5678
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod["name"], "namespace": pod["namespace"], "labels": pod["labels"]},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "echo",
                    "image": "hashicorp/http-echo:1.0",
                    "args": ["-text=hello", f"-listen=:{listen}"],
                    "ports": pod["ports"],
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The cluster's kubeconfig, and the STATE document equivalent to what was created in it."""
    work = tmp_path_factory.mktemp("cmds-cluster")
    state_dir = work / "hollow"
    start(ClusterOptions(kind="hollow", nodes=2, pod_cidr=POD_CIDR), state_dir)
    try:
        kubeconfig = state_dir / "kubeconfig"
        api = KubeApi.from_kubeconfig(kubeconfig)
        try:
            yield kubeconfig, create_world(api)
        finally:
            api.close()
    finally:
        stop(state_dir)


def create_world(api: KubeApi) -> dict[str, Any]:
    for name, labels in NAMESPACES.items():
        api.core.create_namespace(body={"metadata": {"name": name, "labels": labels}})
    for i, pod in enumerate(PODS):
        api.core.create_namespaced_pod(pod["namespace"], body=pod_manifest(pod, f"node{i % 2 + 1}"))
    for policy in POLICIES:
        api.networking.create_namespaced_network_policy(policy["metadata"]["namespace"], body=policy)
    seen: dict[str, dict[str, Any]] = {}

    def addressed() -> bool:
        for ns in NAMESPACES:
            for obj in list_objects(api, "v1", "Pod", ns):
                seen[f"{ns}/{obj['metadata']['name']}"] = obj
        return len(seen) == len(PODS) and all((p.get("status") or {}).get("podIP") for p in seen.values())

    wait_for(
        addressed,
        "every pod to have an address",
        timeout=120,
        describe_last=lambda: repr({k: (v.get("status") or {}).get("podIP") for k, v in seen.items()}),
    )
    return {
        "namespaces": [
            {"name": name, "labels": {**labels, NAME_LABEL: name}}
            for name, labels in sorted(NAMESPACES.items())
        ],
        "pods": [
            {
                **pod,
                "ip": seen[f"{pod['namespace']}/{pod['name']}"]["status"]["podIP"],
                "node": seen[f"{pod['namespace']}/{pod['name']}"]["spec"]["nodeName"],
            }
            for pod in sorted(PODS, key=lambda p: (p["namespace"], p["name"]))
        ],
        "policies": sorted(POLICIES, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])),
        # the ports the pods declare, by protocol then port (as `--kubeconfig` defaults them)
        "probes": [{"port": port, "protocol": "TCP"} for port in (5432, 8080, 9090)],
    }


def write_state(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(document))
    return str(path)


@pytest.mark.parametrize(
    "options",
    [
        ["--profile", "spec"],
        ["--profile", "weave-2.0.5"],
        ["--profile", "weave-2.8.1", "--format", "table"],
        ["--profile", "weave-2.8.1", "--explain", f"{NS_A}/client", f"{NS_B}/api", "--port", "http"],
    ],
    ids=["spec-json", "2.0.5-json", "2.8.1-table", "2.8.1-explain"],
)
def test_expect_on_the_cluster_is_expect_on_its_state(
    cluster: tuple[Path, dict[str, Any]], tmp_path: Path, options: list[str]
) -> None:
    kubeconfig, document = cluster
    live = netpolcheck(
        "expect", "--kubeconfig", str(kubeconfig), "--namespace", NS_A, "--namespace", NS_B, *options
    )
    assert live.returncode == 0, live.stderr
    from_file = netpolcheck("expect", write_state(tmp_path, document), *options)
    assert from_file.returncode == 0, from_file.stderr
    assert live.stdout == from_file.stdout
    if options[-1] == "spec":  # the matrix says something: the policies were read, not skipped
        results = json.loads(live.stdout)["results"]
        assert len(results) == 4 * 3 * 3
        to_api = {(r["from"], r["port"]): r["allowed"] for r in results if r["to"] == f"{NS_B}/api"}
        assert to_api[(f"{NS_A}/client", 8080)] is True and to_api[(f"{NS_A}/client", 9090)] is False
        assert not any(r["allowed"] for r in results if r["to"] == f"{NS_A}/web")


def test_upgrade_impact_on_the_cluster_names_the_deny_all(
    cluster: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    kubeconfig, document = cluster
    options = ["--from", "weave-2.0.5", "--to", "weave-2.1.3"]
    live = netpolcheck(
        "upgrade-impact", *options, "--kubeconfig", str(kubeconfig), "--namespace", NS_A, "--namespace", NS_B
    )
    from_file = netpolcheck("upgrade-impact", *options, write_state(tmp_path, document))
    assert (live.returncode, from_file.returncode) == (1, 1), live.stderr + from_file.stderr
    assert live.stdout == from_file.stdout
    assert f"policies: {NS_A}/deny-all" in live.stdout


def test_every_namespace_without_namespace_option(cluster: tuple[Path, dict[str, Any]]) -> None:
    kubeconfig, document = cluster
    proc = netpolcheck("expect", "--kubeconfig", str(kubeconfig))
    assert proc.returncode == 0, proc.stderr
    keys = {r["from"] for r in json.loads(proc.stdout)["results"]}
    assert {f"{p['namespace']}/{p['name']}" for p in document["pods"]} <= keys


def test_a_namespace_the_cluster_lacks_is_one_line(cluster: tuple[Path, dict[str, Any]]) -> None:
    kubeconfig, _ = cluster
    proc = netpolcheck(
        "expect", "--kubeconfig", str(kubeconfig), "--namespace", NS_A, "--namespace", "nowhere"
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "netpolcheck: error: --namespace: no such namespace in the cluster at "
        f"{kubeconfig_server(kubeconfig)}: nowhere"
    ]


def kubeconfig_server(kubeconfig: Path) -> str:
    import yaml

    server: str = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    return server
