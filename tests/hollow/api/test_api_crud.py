"""CRUD through the kubernetes client against the real server: typed, dynamic, raw HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from tests.hollow.api.apikit import Cluster, pod_body, raw
from tests.hollow.kubetyped import as_body, meta_of, name_of, present, spec_of, status_of


def test_anonymous_and_wrong_token_get_401_status(cluster: Cluster) -> None:
    for token in (None, "wrong"):
        code, body = raw(cluster, "GET", "/api/v1/pods", token=token)
        assert code == 401 and body["kind"] == "Status" and body["reason"] == "Unauthorized"
    assert raw(cluster, "GET", "/healthz", token=None) == (200, "ok")
    assert raw(cluster, "GET", "/healthz", token="wrong")[0] == 401
    assert raw(cluster, "GET", "/version")[1]["major"] == "1"


def test_unknown_resource_and_group_are_404_status(cluster: Cluster) -> None:
    for path in ("/api/v1/widgets", "/apis/example.com/v1/things", "/apis/apps/v1/namespaces/default/nope"):
        code, body = raw(cluster, "GET", path)
        assert code == 404 and body["reason"] == "NotFound", path
    assert raw(cluster, "GET", "/api/v1/pods?limit=many")[0] == 400
    code, body = raw(cluster, "GET", "/api/v1/namespaces/default/pods/ghost")
    assert code == 404 and body["details"] == {"name": "ghost", "group": "", "kind": "pods"}


def test_core_crud_labels_and_field_selectors(cluster: Cluster, core: client.CoreV1Api) -> None:
    core.create_namespace(as_body(client.V1Namespace, {"metadata": {"name": "x", "labels": {"team": "a"}}}))
    ns = core.read_namespace("x")
    assert meta_of(ns).labels == {"team": "a", "kubernetes.io/metadata.name": "x"}
    assert status_of(ns).phase == "Active"
    core.create_namespaced_pod(
        "x", as_body(client.V1Pod, pod_body("a", {"app": "web", "tier": "1"}, node="n1"))
    )
    core.create_namespaced_pod("x", as_body(client.V1Pod, pod_body("b", {"app": "db"}, node="n2")))
    core.create_namespaced_pod("x", as_body(client.V1Pod, pod_body("c", {}, node="n1")))

    def names(**kw: Any) -> list[str]:
        return sorted(name_of(p) for p in core.list_namespaced_pod("x", **kw).items)

    assert names() == ["a", "b", "c"]
    assert names(label_selector="app=web") == ["a"]
    assert names(label_selector="app==web") == ["a"]
    assert names(label_selector="app!=web") == ["b", "c"]
    assert names(label_selector="app in (web,db)") == ["a", "b"]
    assert names(label_selector="app notin (web)") == ["b", "c"]
    assert names(label_selector="app") == ["a", "b"]
    assert names(label_selector="!app") == ["c"]
    assert names(label_selector="app,tier=1") == ["a"]
    assert names(field_selector="spec.nodeName=n1") == ["a", "c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="status.phase=Pending,spec.nodeName!=n1") == ["b"]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("x", field_selector="spec.bogus=1")
    assert err.value.status == 400

    current = core.read_namespaced_pod("a", "x")
    present(meta_of(current).labels, "labels")["app"] = "web2"
    replaced = core.replace_namespaced_pod("a", "x", current)
    versions = [present(meta_of(pod).resource_version, "resourceVersion") for pod in (current, replaced)]
    assert int(versions[1]) > int(versions[0])
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_pod("a", "x", current)  # stale resourceVersion
    assert err.value.status == 409 and json.loads(present(err.value.body, "body"))["reason"] == "Conflict"

    patched = core.patch_namespaced_pod(
        "a",
        "x",
        {"metadata": {"labels": {"tier": None, "new": "1"}}},
        _content_type="application/merge-patch+json",
    )
    assert meta_of(patched).labels == {"app": "web2", "new": "1"}
    patched = core.patch_namespaced_pod(
        "a",
        "x",
        [{"op": "add", "path": "/metadata/labels/jp", "value": "yes"}],
        _content_type="application/json-patch+json",
    )
    assert present(meta_of(patched).labels, "labels")["jp"] == "yes"
    patched = core.patch_namespaced_pod("a", "x", {"metadata": {"labels": {"z": "1"}}})  # strategic merge
    assert meta_of(patched).labels == {"app": "web2", "new": "1", "jp": "yes", "z": "1"}
    code, status = raw(
        cluster,
        "PATCH",
        "/api/v1/namespaces/x/pods/a",
        {"metadata": {}},
        content_type="application/json-patch+json",
    )
    assert code == 400 and status["reason"] == "BadRequest"  # a JSON patch must be a list of operations

    deleted = core.delete_namespaced_pod("b", "x")
    assert name_of(deleted) == "b"
    core.delete_namespace("x")
    assert core.list_namespaced_pod("x").items == []


def test_pagination_with_limit_and_continue(cluster: Cluster, core: client.CoreV1Api) -> None:
    for i in range(7):
        core.create_namespaced_config_map(
            "default", as_body(client.V1ConfigMap, {"metadata": {"name": f"cm-{i}"}})
        )
    seen, token, pages = [], None, 0
    while True:
        page = core.list_namespaced_config_map("default", limit=3, _continue=token)
        pages += 1
        seen += [name_of(c) for c in page.items]
        token = present(page.metadata, "metadata").var_continue
        if not token:
            break
    assert pages == 3 and seen == [f"cm-{i}" for i in range(7)]
    first = core.list_namespaced_config_map("default", limit=3)
    core.create_namespaced_config_map("default", as_body(client.V1ConfigMap, {"metadata": {"name": "later"}}))
    cluster.store.compact()  # the first page's version is now older than the kept history
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map(
            "default", limit=3, _continue=present(first.metadata, "metadata").var_continue
        )
    assert err.value.status == 410


def test_networkpolicy_defaults_and_shared_storage_with_extensions(cluster: Cluster) -> None:
    net = client.NetworkingV1Api(cluster.api_client)
    created = net.create_namespaced_network_policy(
        "default",
        as_body(
            client.V1NetworkPolicy,
            {
                "metadata": {"name": "allow"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "a"}},
                    "ingress": [{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}],
                },
            },
        ),
    )
    assert spec_of(created).policy_types == ["Ingress", "Egress"]
    assert [p.protocol for p in present(present(spec_of(created).ingress, "ingress")[0].ports, "ports")] == [
        "TCP",
        "UDP",
    ]
    code, body = raw(cluster, "GET", "/apis/extensions/v1beta1/namespaces/default/networkpolicies/allow")
    assert code == 200 and body["apiVersion"] == "extensions/v1beta1"
    assert body["metadata"]["uid"] == meta_of(created).uid
    code, body = raw(cluster, "GET", "/apis/extensions/v1beta1/networkpolicies")
    assert [i["metadata"]["name"] for i in body["items"]] == ["allow"]
    net.create_namespaced_network_policy(
        "default",
        as_body(
            client.V1NetworkPolicy,
            {"metadata": {"name": "deny", "labels": {"k": "v"}}, "spec": {"podSelector": {}}},
        ),
    )
    assert spec_of(net.read_namespaced_network_policy("deny", "default")).policy_types == ["Ingress"]
    net.delete_collection_namespaced_network_policy("default", label_selector="k=v")
    assert [name_of(p) for p in net.list_namespaced_network_policy("default").items] == ["allow"]


BAD_POLICIES = [
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]}, "spec.ingress[0].from[0].ipBlock.cidr"),
    (
        {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}]},
        "spec.ingress[0].from[0].ipBlock.except[0]",
    ),
    ({"egress": [{"to": [{"ipBlock": {"cidr": "nonsense"}}]}]}, "spec.egress[0].to[0].ipBlock.cidr"),
    ({"ingress": [{"ports": [{"port": 70000}]}]}, "spec.ingress[0].ports[0].port"),
    ({"ingress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]}, "spec.ingress[0].ports[0].protocol"),
    ({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}, "spec.ingress[0].ports[0].endPort"),
    ({"egress": [{"ports": [{"port": "http", "endPort": 90}]}]}, "spec.egress[0].ports[0].endPort"),
    (
        {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Near", "values": ["b"]}]}},
        "spec.podSelector.matchExpressions[0].operator",
    ),
    (
        {"ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}]}]},
        "spec.ingress[0].from[0].podSelector.matchExpressions[0].values",
    ),
    ({"podSelector": {"matchLabels": {"a": "bad value!"}}}, "spec.podSelector.matchLabels"),
    (
        {"ingress": [{"from": [{"podSelector": {}, "ipBlock": {"cidr": "10.0.0.0/8"}}]}]},
        "spec.ingress[0].from[0]",
    ),
    ({"policyTypes": ["Sideways"]}, "spec.policyTypes[0]"),
]


@pytest.mark.parametrize(("spec", "field"), BAD_POLICIES, ids=[f for _, f in BAD_POLICIES])
def test_invalid_networkpolicy_is_422_with_the_field_path(
    cluster: Cluster, spec: dict[str, Any], field: str
) -> None:
    body = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "bad"},
        "spec": {"podSelector": {}, **spec},
    }
    code, status = raw(cluster, "POST", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies", body)
    assert code == 422 and status["reason"] == "Invalid"
    assert [c["field"] for c in status["details"]["causes"]] == [field]
    assert status["details"]["kind"] == "NetworkPolicy" and field in status["message"]
    assert raw(cluster, "GET", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/bad")[0] == 404


def test_invalid_names_and_pods(cluster: Cluster) -> None:
    code, status = raw(cluster, "POST", "/api/v1/namespaces", {"metadata": {"name": "Under_Score"}})
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.name"
    code, status = raw(
        cluster,
        "POST",
        "/api/v1/namespaces/default/pods",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}},
    )
    assert code == 422 and [c["field"] for c in status["details"]["causes"]] == ["spec.containers[0].image"]
    code, status = raw(cluster, "POST", "/api/v1/namespaces/other/pods", pod_body("p"))
    assert code == 404 and status["message"] == 'namespaces "other" not found'
    code, status = raw(
        cluster,
        "POST",
        "/api/v1/namespaces/default/pods",
        {"metadata": {"name": "p", "namespace": "kube-system"}, "spec": {}},
    )
    assert code == 400 and "does not match the namespace" in status["message"]


def test_dynamic_client_and_appsv1(cluster: Cluster) -> None:
    dyn = DynamicClient(cluster.api_client)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cms.create(
        body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}},
        namespace="default",
    )
    got = cms.get(name="cfg", namespace="default")
    assert got.data.a == "1"
    roles = dyn.resources.get(api_version="rbac.authorization.k8s.io/v1beta1", kind="ClusterRole")
    roles.create(
        body={
            "apiVersion": "rbac.authorization.k8s.io/v1beta1",
            "kind": "ClusterRole",
            "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        }
    )
    v1_roles = dyn.resources.get(api_version="rbac.authorization.k8s.io/v1", kind="ClusterRole")
    assert v1_roles.get(name="r").rules[0].verbs == ["list"]
    apps = client.AppsV1Api(cluster.api_client)
    ds = apps.create_namespaced_daemon_set(
        "default",
        as_body(
            client.V1DaemonSet,
            {
                "metadata": {"name": "ds"},
                "spec": {
                    "selector": {"matchLabels": {"app": "d"}},
                    "template": {
                        "metadata": {"labels": {"app": "d"}},
                        "spec": {"containers": [{"name": "c", "image": "img:1"}]},
                    },
                },
            },
        ),
    )
    strategy = present(spec_of(ds).update_strategy, "updateStrategy")
    assert strategy.type == "RollingUpdate"
    assert present(strategy.rolling_update, "rollingUpdate").max_unavailable == 1
    patched = apps.patch_namespaced_daemon_set(
        "ds",
        "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "img:2"}]}}}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert meta_of(patched).generation == 2
    assert spec_of(patched.spec.template).containers[0].image == "img:2"
    assert spec_of(patched.spec.template).containers[0].image_pull_policy == "IfNotPresent"
    with pytest.raises(ApiException) as err:  # apps/v1 selectors are immutable
        apps.patch_namespaced_daemon_set(
            "ds",
            "default",
            {
                "spec": {
                    "selector": {"matchLabels": {"app": "d", "x": "y"}},
                    "template": {"metadata": {"labels": {"app": "d", "x": "y"}}},
                }
            },
        )
    assert err.value.status == 422
    assert [c["field"] for c in json.loads(present(err.value.body, "body"))["details"]["causes"]] == [
        "spec.selector"
    ]
