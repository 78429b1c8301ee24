"""Kubernetes YAML as input: the pure conversion (netpolcheck/model/manifests.py) and `expect` /
`upgrade-impact` reading files, a directory and stdin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from netpolcheck.model.manifests import PLACEHOLDER_RANGE, manifests_to_state
from netpolcheck.model.state import parse_state
from tests.commands.runcli import WORKSHOP, legacy_upgrade_impact, netpolcheck

WORKLOADS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: http-echo}
spec:
  replicas: 3
  selector: {matchLabels: {app: http-echo}}
  template:
    metadata: {labels: {app: http-echo, run: http-echo}}
    spec:
      containers:
      - name: echo
        image: hashicorp/http-echo
        ports: [{name: http, containerPort: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: busybox}
spec:
  selector: {matchLabels: {run: busybox}}
  template:
    metadata: {labels: {run: busybox}}
    spec: {containers: [{name: sh, image: busybox}]}
---
apiVersion: v1
kind: Service
metadata: {name: http-echo}
spec: {selector: {app: http-echo}, ports: [{port: 80}]}
"""


def _workshop_dir(tmp_path: Path) -> Path:
    """The workshop's deny-all policy (verbatim) beside two Deployments, as a user's directory."""
    root = tmp_path / "manifests"
    root.mkdir()
    (root / "workloads.yaml").write_text(WORKLOADS)
    shutil.copy(WORKSHOP / "deny-all-by-default-network-policy.yaml", root / "policy.yml")
    (root / "notes.txt").write_text("not a manifest: ignored by suffix")
    return root


def test_conversion_of_workloads_pods_namespaces_and_lists() -> None:
    documents = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "a"}}},
        {
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "db"}},
                    "spec": {
                        "nodeName": "node1",
                        "containers": [
                            {"ports": [{"containerPort": 5432}, {"containerPort": 53, "protocol": "UDP"}]}
                        ],
                    },
                    "status": {"podIP": "10.32.0.7"},
                },
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "metadata": {"name": "agent", "namespace": "ops"},
                    "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"hostNetwork": True}}},
                },
            ],
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
    ]
    conversion = manifests_to_state(documents)
    doc = conversion.document
    assert doc["namespaces"] == [
        {"name": "shop", "labels": {"team": "a", "kubernetes.io/metadata.name": "shop"}, "annotations": {}},
        {"name": "ops", "labels": {"kubernetes.io/metadata.name": "ops"}, "annotations": {}},
    ]
    db, agent = doc["pods"]
    assert (db["ip"], db.get("node"), db["labels"]) == ("10.32.0.7", "node1", {"app": "db"})
    assert (agent["name"], agent["namespace"], agent["hostNetwork"]) == ("agent-0", "ops", True)
    assert conversion.placeholders == {"ops/agent-0": str(PLACEHOLDER_RANGE[1])}
    assert doc["probes"] == [{"port": 5432, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]
    assert any("ignored 1 ConfigMap" in n for n in conversion.notes)
    state = parse_state(doc)  # the conversion is a valid STATE
    assert [p.key for p in state.pods] == ["shop/db", "ops/agent-0"]


def test_ipblock_cells_on_placeholder_addresses_are_named() -> None:
    documents = [
        {"kind": "Pod", "metadata": {"name": "a"}, "spec": {}},
        {"kind": "Pod", "metadata": {"name": "b", "labels": {"app": "b"}}, "spec": {}},
        {"kind": "Pod", "metadata": {"name": "c"}, "spec": {}, "status": {"podIP": "10.32.0.9"}},
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "cidr"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "b"}},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
            },
        },
    ]
    conversion = manifests_to_state(documents)
    [caution] = conversion.address_cautions(parse_state(conversion.document))
    assert caution.startswith(
        "policy default/cidr has an ipBlock peer: 1 cell(s) depend on real pod addresses"
    )
    assert caution.endswith(": default/a -> default/b")  # c has its real address; b is the target


def test_expect_reads_a_directory_and_agrees_with_the_seed(tmp_path: Path) -> None:
    proc = netpolcheck("expect", str(_workshop_dir(tmp_path)), "--profile", "weave-2.1.3")
    assert proc.returncode == 0, proc.stderr
    cells = {(r["from"], r["to"], r["port"]): r["allowed"] for r in json.loads(proc.stdout)["results"]}
    assert cells == {
        ("default/http-echo-0", "default/busybox-0", 80): False,
        ("default/busybox-0", "default/http-echo-0", 80): False,
    }
    assert "note: 2 pod(s) without an address got placeholders" in proc.stderr
    assert "note: ignored 1 Service object(s)" in proc.stderr


def test_expect_reads_stdin() -> None:
    text = WORKLOADS + "---\n" + (WORKSHOP / "allow-network-policy.yaml").read_text()
    proc = netpolcheck("expect", "-", "--profile", "spec", stdin=text)
    assert proc.returncode == 0, proc.stderr
    cells = {(r["from"], r["to"]): r["allowed"] for r in json.loads(proc.stdout)["results"]}
    # `allow` admits app=busybox into http-echo; the busybox pods are labelled run=busybox only
    assert cells == {
        ("default/http-echo-0", "default/busybox-0"): True,
        ("default/busybox-0", "default/http-echo-0"): False,
    }


def test_upgrade_impact_on_manifests_names_the_deny_all_cells(tmp_path: Path) -> None:
    [group] = legacy_upgrade_impact(_workshop_dir(tmp_path))["groups"]
    assert group["policies"] == ["default/deny-all-by-default"]
    assert {(c["from"], c["to"]) for c in group["cells"]} == {
        ("default/http-echo-0", "default/busybox-0"),
        ("default/busybox-0", "default/http-echo-0"),
    }


def test_bad_manifests_exit_2_in_one_line(tmp_path: Path) -> None:
    unnamed = tmp_path / "unnamed.yaml"
    unnamed.write_text("kind: Pod\nmetadata: {}\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Pod\nmetadata: {name: [\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, message in (
        (unnamed, "metadata.name: missing"),
        (broken, "malformed YAML at line"),
        (empty, "no *.yaml, *.yml or *.json files"),
    ):
        proc = netpolcheck("expect", str(path))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
        assert proc.stdout == ""


def test_a_cluster_dump_uses_the_real_pods_not_the_templates() -> None:
    """`kubectl get deploy,pods -o yaml` lists a Deployment and its pods: the pods stand for it."""
    template = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"ports": [{"containerPort": 80}]}]},
    }
    dump = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"template": template},
            },
            {
                "kind": "Deployment",
                "metadata": {"name": "idle", "namespace": "shop"},
                "spec": {"template": {}},
            },
            {
                "kind": "Pod",
                "metadata": {
                    "name": "web-7d9f-abcde",
                    "namespace": "shop",
                    "labels": {"app": "web", "pod-template-hash": "7d9f"},
                },
                "spec": template["spec"],
                "status": {"podIP": "10.32.0.5", "phase": "Running"},
            },
            {
                "kind": "Pod",
                "metadata": {"name": "batch-1", "namespace": "shop"},
                "spec": {},
                "status": {"podIP": "10.32.0.6", "phase": "Succeeded"},
            },
        ],
    }
    conversion = manifests_to_state([dump])
    assert [(p["name"], p["ip"]) for p in conversion.document["pods"]] == [
        ("web-7d9f-abcde", "10.32.0.5"),
        ("idle-0", str(PLACEHOLDER_RANGE[1])),  # no pod of it was given, and no labels to find one by
    ]
    assert "left out pod batch-1: deleted or finished" in conversion.notes


BOMB = """\
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def test_hostile_manifests_are_one_line_each(tmp_path: Path) -> None:
    cases = {
        "kind.yaml": ("kind: [Pod]\nmetadata: {name: a}\n", "kind: missing or not a string"),
        "ports.yaml": (
            "kind: Pod\nmetadata: {name: a}\nspec: {containers: [{ports: [7]}]}\n",
            "spec.containers[0].ports[0]: must be a mapping",
        ),
        "port-list.yaml": (
            "kind: Pod\nmetadata: {name: a}\nspec: {containers: [{ports: [{containerPort: [80]}]}]}\n",
            "pod default/a",
        ),
        "items.yaml": ("kind: List\nitems: {a: 1}\n", "items: must be a list"),
        "namespace.yaml": (
            "kind: Pod\nmetadata: {name: a, namespace: [x]}\n",
            "metadata.namespace: must be a string",
        ),
        # a billion-laughs label value: refused by its type, never expanded into a string
        "bomb.yaml": (BOMB + "kind: Pod\nmetadata: {name: a, labels: {app: *h}}\n", "labels"),
        "escape.yaml": ('kind: Pod\nmetadata: {name: "a\\e[31m", labels: {app: 1}}\n', "name: Invalid value"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        proc = netpolcheck("expect", str(path))
        assert proc.returncode == 2, (name, proc.stderr)
        assert proc.stderr.count("\n") == 1 and message in proc.stderr, (name, proc.stderr)
        assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr, (name, proc.stderr)
