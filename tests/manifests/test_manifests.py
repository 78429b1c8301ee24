"""The shipped manifests parse, pin their images and keep the facts the suites rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
WEAVE_VERSIONS = ("2.0.5", "2.1.3", "2.8.1", "2.9.0")


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def weave_daemonset(version: str) -> dict[str, Any]:
    docs = load(MANIFESTS / "weave" / f"weave-{version}.yaml")
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    return ds


def containers_by_name(ds: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in ds["spec"]["template"]["spec"]["containers"]}


@pytest.mark.parametrize("version", WEAVE_VERSIONS)
def test_weave_images_are_pinned_to_their_version(version: str) -> None:
    ds = weave_daemonset(version)
    spec = ds["spec"]["template"]["spec"]
    images = [c["image"] for c in spec["containers"] + spec.get("initContainers", [])]
    assert images, "no containers"
    for image in images:
        assert image.endswith(f":{version}"), image
        assert "latest" not in image


@pytest.mark.parametrize("version", WEAVE_VERSIONS)
def test_weave_daemonset_shape(version: str) -> None:
    ds = weave_daemonset(version)
    assert ds["metadata"] == {**ds["metadata"], "name": "weave-net", "namespace": "kube-system"}
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert spec["serviceAccountName"] == "weave-net"
    assert ds["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    assert set(containers_by_name(ds)) == {"weave", "weave-npc"}
    for container in containers_by_name(ds).values():
        env = {e["name"]: e for e in container["env"]}
        assert env["HOSTNAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_weave_2_1_3_is_the_workshop_upgrade() -> None:
    """Same API groups and settings as the workshop's tests/data/seed-workshop/weavenet-update.yaml."""
    docs = load(MANIFESTS / "weave" / "weave-2.1.3.yaml")
    kinds = sorted((d["apiVersion"], d["kind"]) for d in docs)
    assert kinds == sorted(
        [
            ("v1", "ServiceAccount"),
            ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
            ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"),
            ("rbac.authorization.k8s.io/v1beta1", "Role"),
            ("rbac.authorization.k8s.io/v1beta1", "RoleBinding"),
            ("extensions/v1beta1", "DaemonSet"),
        ]
    )
    weave = containers_by_name(weave_daemonset("2.1.3"))["weave"]
    env = {e["name"]: e.get("value") for e in weave["env"]}
    assert env["IPALLOC_RANGE"] == "100.96.0.0/11"
    assert env["WEAVE_MTU"] == "8912"
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    groups = {g for rule in role["rules"] for g in rule["apiGroups"]}
    assert "networking.k8s.io" in groups


def test_weave_2_0_5_reads_policies_from_the_old_group() -> None:
    docs = load(MANIFESTS / "weave" / "weave-2.0.5.yaml")
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    np_rules = [r for r in role["rules"] if "networkpolicies" in r["resources"]]
    assert [r["apiGroups"] for r in np_rules] == [["extensions"]]


def test_workshop_policies() -> None:
    deny = load(MANIFESTS / "policies" / "deny-all-by-default.yaml")[0]
    assert deny["spec"] == {"podSelector": {}}
    assert "namespace" not in deny["metadata"]
    allow = load(MANIFESTS / "policies" / "allow-busybox-to-http-echo.yaml")[0]
    assert allow["metadata"]["name"] == "allow"
    assert allow["spec"]["podSelector"] == {"matchLabels": {"app": "http-echo"}}
    assert allow["spec"]["ingress"] == [{"from": [{"podSelector": {"matchLabels": {"app": "busybox"}}}]}]


def test_kind_config_disables_the_default_cni() -> None:
    (config,) = load(MANIFESTS / "kind" / "cluster-no-cni.yaml")
    assert config["networking"]["disableDefaultCNI"] is True
    assert config["networking"]["podSubnet"] == "10.32.0.0/12"
