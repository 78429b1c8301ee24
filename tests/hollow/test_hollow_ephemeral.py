"""Ephemeral containers on the hollow cluster: `kubectl debug` and the Kubernetes client add them through
`pods/ephemeralcontainers`, the API validates them as kube-apiserver does, RBAC guards the subresource,
and the kubelet runs them in the pod's own network namespace with `status.ephemeralContainerStatuses`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from netpolcheck.hollow.waits import wait_until
from tests.hollow.clusterkit import Cluster, start_cluster, stop_cluster
from tests.hollow.podtools import CONNECT, create_namespace, echo_pod, pod_exec, wait_running

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

CIDR = "10.64.0.0/12"
NS = "debugged"
PROBE_IMAGE = "netpolcheck-probe:0.1.0"
SA_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("hollow-ephemeral"), "--nodes", "2", "--npc", "none", cidr=CIDR)
    try:
        create_namespace(c.core, NS)
        c.kube.request("POST", f"/api/v1/namespaces/{NS}/pods", echo_pod("web", "node2"))
        wait_running(c.core, NS, "web")
        yield c
    finally:
        stop_cluster(c)


def pod_doc(c: Cluster, name: str = "web") -> dict[str, Any]:
    """The pod as the API serves it (camelCase dicts)."""
    document: dict[str, Any] = c.kube.request("GET", f"/api/v1/namespaces/{NS}/pods/{name}")
    return document


def ephemeral_names(c: Cluster) -> list[str]:
    return [e["name"] for e in pod_doc(c)["spec"].get("ephemeralContainers") or []]


def api_message(error: ApiException) -> str:
    return str(json.loads(error.body or "{}").get("message"))


def ephemeral_state(c: Cluster, pod: str, name: str) -> dict[str, Any]:
    """The state of ephemeral container `name` once it has one other than waiting."""
    box: list[dict[str, Any]] = []

    def started() -> bool:
        status = pod_doc(c, pod)["status"]
        found = [s for s in status.get("ephemeralContainerStatuses") or [] if s["name"] == name]
        box[:] = found
        return bool(found) and "waiting" not in found[0]["state"]

    wait_until(started, 30, f"ephemeral container {name} of {NS}/{pod} to leave waiting (last: {box})")
    state: dict[str, Any] = box[0]["state"]
    return state


def probe_container(name: str, seconds: int = 300) -> dict[str, Any]:
    return {
        "name": name,
        "image": PROBE_IMAGE,
        "command": ["sleep", str(seconds)],
        "securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}},
    }


def test_kubectl_debug_adds_a_container_that_runs_in_the_pods_network_namespace(cluster: Cluster) -> None:
    result = cluster.kubectl(
        "debug", "-n", NS, "web", f"--image={PROBE_IMAGE}", "--container=dbg", "--", "sleep", "300"
    )
    assert result.returncode == 0, result.stderr
    assert "running" in ephemeral_state(cluster, "web", "dbg")
    # the echo server listens on the pod's own loopback: only a container in its netns reaches it there
    code, out, err = pod_exec(cluster.core, NS, "web", ["python3", "-c", CONNECT, "127.0.0.1"], "dbg")
    web = pod_doc(cluster)
    assert code == 0 and out.strip() == f"{web['status']['podIP']} saw 127.0.0.1", out + err
    # the pod itself is unchanged: still Running with its one app container
    assert web["status"]["phase"] == "Running"
    assert [c["name"] for c in web["spec"]["containers"]] == ["echo"]


def test_the_client_adds_them_by_strategic_merge_json_merge_and_json_patch(cluster: Cluster) -> None:
    core, path = cluster.core, f"/api/v1/namespaces/{NS}/pods/web/ephemeralcontainers"
    core.patch_namespaced_pod_ephemeralcontainers(
        "web", NS, {"spec": {"ephemeralContainers": [probe_container("smp")]}}
    )
    ops = [{"op": "add", "path": "/spec/ephemeralContainers/-", "value": probe_container("jsonpatch")}]
    cluster.kube.request("PATCH", path, ops, content_type="application/json-patch+json")
    current = cluster.kube.request("GET", path)["spec"]["ephemeralContainers"]
    cluster.kube.request(
        "PATCH",
        path,
        {"spec": {"ephemeralContainers": [*current, probe_container("merge")]}},
        content_type="application/merge-patch+json",
    )
    names = [c["name"] for c in cluster.kube.request("GET", path)["spec"]["ephemeralContainers"]]
    assert names[-3:] == ["smp", "jsonpatch", "merge"]
    for name in ("smp", "jsonpatch", "merge"):
        assert "running" in ephemeral_state(cluster, "web", name)
    # defaults as the real server fills them
    added = {c["name"]: c for c in pod_doc(cluster)["spec"]["ephemeralContainers"]}
    assert added["smp"]["terminationMessagePolicy"] == "File"
    assert added["smp"]["imagePullPolicy"] == "IfNotPresent"


def _refused(call: Any) -> ApiException:
    with pytest.raises(ApiException) as info:
        call()
    return info.value


def test_the_api_validates_them_like_kube_apiserver(cluster: Cluster) -> None:
    core = cluster.core
    core.patch_namespaced_pod_ephemeralcontainers(
        "web", NS, {"spec": {"ephemeralContainers": [probe_container("fixed")]}}
    )
    assert "running" in ephemeral_state(cluster, "web", "fixed")
    before = pod_doc(cluster)["spec"]  # (the kubelet may still write status: the spec is what counts)
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([probe_container("echo")], 'Duplicate value: "echo"'),
        ([{**probe_container("ported"), "ports": [{"containerPort": 80}]}], "ports: Forbidden"),
        ([{**probe_container("probed"), "readinessProbe": {"exec": {"command": ["true"]}}}], "Forbidden"),
        ([{**probe_container("sized"), "resources": {"limits": {"cpu": "1"}}}], "resources: Forbidden"),
        ([{"name": "noimage"}], "image: Required value"),
        ([{**probe_container("aimed"), "targetContainerName": "nope"}], "targetContainerName"),
    ]
    for containers, message in cases:
        error = _refused(
            lambda c=containers: core.patch_namespaced_pod_ephemeralcontainers(
                "web", NS, {"spec": {"ephemeralContainers": c}}
            )
        )
        assert error.status == 422 and message in api_message(error), error.body
    # existing ones can be neither removed nor changed
    index = ephemeral_names(cluster).index("fixed")
    for ops, message in (
        ([{"op": "remove", "path": f"/spec/ephemeralContainers/{index}"}], "may not be removed"),
        (
            [{"op": "replace", "path": f"/spec/ephemeralContainers/{index}/image", "value": "busybox"}],
            "may not be changed",
        ),
    ):
        error = _refused(
            lambda o=ops: cluster.kube.request(
                "PATCH",
                f"/api/v1/namespaces/{NS}/pods/web/ephemeralcontainers",
                o,
                content_type="application/json-patch+json",
            )
        )
        assert error.status == 422 and message in api_message(error), error.body
    # and not through the pod itself
    error = _refused(
        lambda: core.patch_namespaced_pod(
            "web", NS, {"spec": {"ephemeralContainers": [probe_container("sneaky")]}}
        )
    )
    assert error.status == 422 and "pods/ephemeralcontainers" in api_message(error), error.body
    assert pod_doc(cluster)["spec"] == before  # nothing half-applied


def _debugger_role(verbs: list[str]) -> list[dict[str, Any]]:
    """A Role that lets the namespace's default account read pods and do `verbs` on their ephemeral
    containers, and its binding."""
    rules: list[dict[str, Any]] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    if verbs:
        rules.append({"apiGroups": [""], "resources": ["pods/ephemeralcontainers"], "verbs": verbs})
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "debugger", "namespace": NS},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "debugger", "namespace": NS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "debugger"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NS}],
        },
    ]


def test_rbac_guards_the_subresource(cluster: Cluster, tmp_path: Path) -> None:
    code, token, err = pod_exec(cluster.core, NS, "web", ["cat", SA_TOKEN])
    assert code == 0, err
    args = ("debug", "-n", NS, "web", f"--image={PROBE_IMAGE}", "--token", token.strip())
    manifest = tmp_path / "grant.yaml"
    try:
        manifest.write_text(yaml.safe_dump_all(_debugger_role([])))
        assert cluster.kubectl("apply", "-f", str(manifest)).returncode == 0
        refused = cluster.kubectl(*args, "--container=nope", "--", "sleep", "30")
        assert refused.returncode != 0, refused.stdout
        assert 'cannot patch resource "pods/ephemeralcontainers"' in refused.stderr, refused.stderr
        manifest.write_text(yaml.safe_dump_all(_debugger_role(["patch"])))
        applied = cluster.kubectl("apply", "-f", str(manifest))
        assert applied.returncode == 0, applied.stderr
        allowed = cluster.kubectl(*args, "--container=granted", "--", "sleep", "30")
        assert allowed.returncode == 0, allowed.stderr
        assert "running" in ephemeral_state(cluster, "web", "granted")
        assert "nope" not in ephemeral_names(cluster)
    finally:
        cluster.kubectl("delete", "-f", str(manifest), "--ignore-not-found")


def test_a_finished_ephemeral_container_is_terminated_and_stays_listed(cluster: Cluster) -> None:
    cluster.core.patch_namespaced_pod_ephemeralcontainers(
        "web", NS, {"spec": {"ephemeralContainers": [probe_container("brief", seconds=1)]}}
    )

    def finished() -> bool:
        pod = pod_doc(cluster)
        found = [s for s in pod["status"].get("ephemeralContainerStatuses") or [] if s["name"] == "brief"]
        return bool(found) and "terminated" in found[0]["state"]

    wait_until(finished, 30, "ephemeral container brief to end")
    pod = pod_doc(cluster)
    assert "brief" in ephemeral_names(cluster)
    brief = next(s for s in pod["status"]["ephemeralContainerStatuses"] if s["name"] == "brief")
    assert brief["state"]["terminated"]["exitCode"] == 0 and brief["restartCount"] == 0
    assert pod["status"]["phase"] == "Running"  # an ended ephemeral container does not end the pod
