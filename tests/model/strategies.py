"""Hypothesis strategies for small random STATE documents (a few namespaces, pods and policies)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

KEYS = ("app", "tier")
VALUES = ("a", "b")
LEGACY_DENY = {"net.beta.kubernetes.io/network-policy": '{"ingress": {"isolation": "DefaultDeny"}}'}
labels = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2)


@st.composite
def selectors(draw: st.DrawFn) -> dict[str, Any]:
    sel: dict[str, Any] = {}
    if draw(st.booleans()):
        sel["matchLabels"] = draw(labels)
    if draw(st.booleans()):
        op = draw(st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist")))
        expr: dict[str, Any] = {"key": draw(st.sampled_from(KEYS)), "operator": op}
        if op in ("In", "NotIn"):
            expr["values"] = draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=2, unique=True))
        sel["matchExpressions"] = [expr]
    return sel


@st.composite
def peers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(("pod", "ns", "both", "ip")))
    if kind == "ip":
        block: dict[str, Any] = {"cidr": draw(st.sampled_from(("10.0.0.0/24", "10.0.0.0/28", "0.0.0.0/0")))}
        if draw(st.booleans()):
            block["except"] = [draw(st.sampled_from(("10.0.0.0/30", "10.0.0.4/31")))]
        return {"ipBlock": block}
    peer: dict[str, Any] = {}
    if kind in ("pod", "both"):
        peer["podSelector"] = draw(selectors())
    if kind in ("ns", "both"):
        peer["namespaceSelector"] = draw(selectors())
    return peer


@st.composite
def ports(draw: st.DrawFn) -> dict[str, Any]:
    port: dict[str, Any] = {"protocol": draw(st.sampled_from(("TCP", "UDP")))}
    choice = draw(st.sampled_from(("number", "range", "name", "none")))
    if choice == "number":
        port["port"] = draw(st.sampled_from((80, 81)))
    elif choice == "range":
        port["port"], port["endPort"] = 79, draw(st.sampled_from((80, 81)))
    elif choice == "name":
        port["port"] = "http"
    return port


@st.composite
def rules(draw: st.DrawFn, peer_key: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule[peer_key] = draw(st.lists(peers(), max_size=2))
    if draw(st.booleans()):
        rule["ports"] = draw(st.lists(ports(), max_size=2))
    return rule


@st.composite
def policies(draw: st.DrawFn, namespaces: list[str], name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(selectors())}
    if draw(st.booleans()):
        spec["ingress"] = draw(st.lists(rules("from"), max_size=2))
    if draw(st.booleans()):
        spec["egress"] = draw(st.lists(rules("to"), max_size=2))
    if draw(st.booleans()):
        spec["policyTypes"] = draw(st.sampled_from((["Ingress"], ["Egress"], ["Ingress", "Egress"])))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": draw(st.sampled_from(namespaces))},
        "spec": spec,
    }


@st.composite
def states(draw: st.DrawFn, max_policies: int = 4) -> dict[str, Any]:
    names = ["x", "y", "z"][: draw(st.integers(1, 3))]
    namespaces = [
        {"name": n, "labels": draw(labels), "annotations": LEGACY_DENY if draw(st.booleans()) else {}}
        for n in names
    ]
    count = draw(st.integers(1, 6))
    pods = []
    for i in range(count):
        http = draw(st.sampled_from((80, 81)))
        pods.append(
            {
                "namespace": draw(st.sampled_from(names)),
                "name": f"p{i}",
                "labels": draw(labels),
                "ip": f"10.0.0.{i + 1}",
                "node": draw(st.sampled_from(("n1", "n2"))),
                "hostNetwork": draw(st.booleans()) and i == count - 1,
                "ports": [{"name": "http", "containerPort": http}],
            }
        )
    pols = [draw(policies(names, f"np{i}")) for i in range(draw(st.integers(0, max_policies)))]
    externals = draw(
        st.sampled_from(([], [{"name": "ext", "ip": "10.0.0.200"}], [{"name": "mcast", "ip": "224.0.0.251"}]))
    )
    probes = [{"port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "UDP"}, {"port": "http"}]
    return {
        "namespaces": namespaces,
        "pods": pods,
        "policies": pols,
        "probes": probes,
        "externals": externals,
    }
