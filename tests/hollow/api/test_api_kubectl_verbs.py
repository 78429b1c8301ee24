"""The real kubectl (1.37) against the real server: the verbs a user runs on namespaces, pods,
NetworkPolicies and DaemonSets. `kubectl create namespace|configmap|secret|serviceaccount` send
protobuf (Content-Type application/vnd.kubernetes.protobuf, no JSON retry), the rest JSON.
exec, logs and rollout status are in test_api_exec_logs.py and test_api_daemonset.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import NotFound
from netpolcheck.hollow.api.version import KUBERNETES_VERSION
from tests.hollow.api.apikit import Cluster, raw

POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-in, namespace: team-a}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: 80, protocol: TCP}]}]
"""

DAEMONSET = """apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: team-a}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: probe:1}]}
"""


def ok(cluster: Cluster, *args: str) -> str:
    result = cluster.kubectl(*args)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result.stdout


def test_kubectl_create_generators_send_protobuf_and_succeed(cluster: Cluster) -> None:
    assert ok(cluster, "create", "namespace", "team-a").strip() == "namespace/team-a created"
    ns = cluster.store.get(r.NAMESPACES, None, "team-a")
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert ok(cluster, "create", "configmap", "cm", "-n", "team-a", "--from-literal=a=b").strip() == (
        "configmap/cm created"
    )
    assert cluster.store.get(r.CONFIGMAPS, "team-a", "cm")["data"] == {"a": "b"}
    ok(cluster, "create", "secret", "generic", "s", "-n", "team-a", "--from-literal=k=v")
    secret = cluster.store.get(r.SECRETS, "team-a", "s")
    assert (secret["data"], secret["type"]) == ({"k": "dg=="}, "Opaque")
    ok(cluster, "create", "serviceaccount", "robot", "-n", "team-a")
    assert cluster.store.get(r.SERVICEACCOUNTS, "team-a", "robot")["metadata"]["namespace"] == "team-a"

    again = cluster.kubectl("create", "namespace", "team-a")
    assert again.returncode == 1 and 'namespaces "team-a" already exists' in again.stderr
    bad = cluster.kubectl("create", "namespace", "Team_A")
    assert bad.returncode == 1 and "is invalid" in bad.stderr and "metadata.name" in bad.stderr


def test_kubectl_verbs_on_namespaces_pods_policies_and_daemonsets(cluster: Cluster, tmp_path: Path) -> None:
    ok(cluster, "create", "namespace", "team-a")
    ok(cluster, "label", "namespace", "team-a", "env=test")
    assert ok(cluster, "get", "ns", "-l", "env=test", "-o", "name").split() == ["namespace/team-a"]

    ok(cluster, "run", "web", "--image=probe:1", "-n", "team-a", "--labels=app=web")
    ok(cluster, "label", "pod", "web", "-n", "team-a", "tier=front")
    ok(cluster, "annotate", "pod", "web", "-n", "team-a", "note=hi")
    ok(cluster, "patch", "pod", "web", "-n", "team-a", "-p", '{"metadata":{"labels":{"x":"y"}}}')
    ok(cluster, "patch", "pod", "web", "-n", "team-a", "--type=json", "-p",
       '[{"op":"remove","path":"/metadata/labels/x"}]')  # fmt: skip
    pod = json.loads(ok(cluster, "get", "pod", "web", "-n", "team-a", "-o", "json"))
    assert pod["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert pod["metadata"]["annotations"] == {"note": "hi"}

    manifest = tmp_path / "policy.yaml"
    manifest.write_text(POLICY)
    assert "created" in ok(cluster, "apply", "-f", str(manifest))
    ok(cluster, "label", "netpol", "web-in", "-n", "team-a", "owner=me")
    table = ok(cluster, "get", "netpol", "-A")
    assert table.split("\n")[1].split()[:3] == ["team-a", "web-in", "app=web"]

    manifest.write_text(DAEMONSET)
    ok(cluster, "create", "-f", str(manifest))
    ok(cluster, "patch", "ds", "agent", "-n", "team-a", "-p",
       '{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"probe:2"}]}}}}')  # fmt: skip
    image = ok(
        cluster,
        "get",
        "ds",
        "agent",
        "-n",
        "team-a",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image == "probe:2"

    assert ok(cluster, "delete", "netpol", "web-in", "-n", "team-a").strip() == (
        'networkpolicy.networking.k8s.io "web-in" deleted from team-a namespace'
    )
    ok(cluster, "delete", "namespace", "team-a")
    gone = cluster.kubectl("get", "namespace", "team-a")
    assert gone.returncode == 1 and 'namespaces "team-a" not found' in gone.stderr
    for res, name in ((r.PODS, "web"), (r.DAEMONSETS, "agent")):
        with pytest.raises(NotFound):
            cluster.store.get(res, "team-a", name)


def test_kubectl_version_reports_the_one_cluster_version(cluster: Cluster) -> None:
    versions = json.loads(ok(cluster, "version", "-o", "json"))
    assert versions["serverVersion"]["gitVersion"] == KUBERNETES_VERSION
    assert (versions["serverVersion"]["major"], versions["serverVersion"]["minor"]) == ("1", "37")
    client_minor = versions["clientVersion"]["minor"]
    assert abs(int(client_minor) - 37) <= 1  # within kubectl's supported skew: no warning


def _varint(value: int) -> bytes:
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _envelope(kind: str, raw_object: bytes, api_version: str = "v1") -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw_object)


def _post_protobuf(cluster: Cluster, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    return raw(cluster, "POST", path, body, content_type="application/vnd.kubernetes.protobuf")


def test_protobuf_bodies_maps_bytes_and_refusals(cluster: Cluster) -> None:
    labels = _field(11, _field(1, b"app") + _field(2, b"db"))
    meta = _field(1, b"cfg") + labels
    binary = _field(3, _field(1, b"blob") + _field(2, b"\x00\xff"))
    immutable_false = _varint(4 << 3 | 0) + b"\x00"  # a pointer field: false is kept
    body = _envelope("ConfigMap", _field(1, meta) + _field(2, _field(1, b"k") + _field(2, b"v")) + binary
                     + immutable_false)  # fmt: skip
    status, answer = _post_protobuf(cluster, "/api/v1/namespaces/default/configmaps", body)
    assert status == 201, answer
    stored = cluster.store.get(r.CONFIGMAPS, "default", "cfg")
    assert stored["metadata"]["labels"] == {"app": "db"}
    assert (stored["data"], stored["binaryData"], stored["immutable"]) == (
        {"k": "v"},
        {"blob": "AP8="},
        False,
    )

    truncated = body[:-3]
    status, answer = _post_protobuf(cluster, "/api/v1/namespaces/default/configmaps", truncated)
    assert (status, answer["reason"]) == (400, "BadRequest")
    status, answer = _post_protobuf(cluster, "/api/v1/namespaces/default/configmaps", b'{"kind":"x"}')
    assert (status, answer["reason"]) == (400, "BadRequest")
    # kinds this server does not read as protobuf: 415, naming the media types it takes
    pod = _envelope("Pod", _field(1, _field(1, b"p")))
    status, answer = _post_protobuf(cluster, "/api/v1/namespaces/default/pods", pod)
    assert (status, answer["reason"]) == (415, "UnsupportedMediaType")
    assert answer["message"].endswith("application/json, application/yaml")


def test_protobuf_delete_options_preconditions_are_honoured(cluster: Cluster) -> None:
    """A typed client's DELETE carries DeleteOptions as protobuf; a stale uid precondition is 409."""
    ok(cluster, "create", "namespace", "team-b")
    uid = cluster.store.get(r.NAMESPACES, None, "team-b")["metadata"]["uid"]
    stale = _envelope("DeleteOptions", _field(2, _field(1, b"not-the-uid")))
    status, answer = raw(cluster, "DELETE", "/api/v1/namespaces/team-b", stale,
                         content_type="application/vnd.kubernetes.protobuf")  # fmt: skip
    assert (status, answer["reason"]) == (409, "Conflict"), answer
    matching = _envelope("DeleteOptions", _field(2, _field(1, uid.encode())))
    status, answer = raw(cluster, "DELETE", "/api/v1/namespaces/team-b", matching,
                         content_type="application/vnd.kubernetes.protobuf")  # fmt: skip
    assert status == 200, answer
    with pytest.raises(NotFound):
        cluster.store.get(r.NAMESPACES, None, "team-b")
