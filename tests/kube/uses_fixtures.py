"""Tests over the fixtures, run by test_fixtures.py in its own pytest (the name is not collected)."""

from __future__ import annotations

import os
from pathlib import Path

from fixtures.policies import Apply
from fixtures.topology import NamespaceFactory, ProbePodFactory
from fixtures.weave import WeaveControl
from netpolcheck.kube import execing
from netpolcheck.kube.probepods import PodSpec
from netpolcheck.kube.provisioners import Cluster

DENY_ALL = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""


def test_topology_and_policies(
    cluster: Cluster,
    weave: WeaveControl,
    namespaces: NamespaceFactory,
    probe_pods: ProbePodFactory,
    apply: Apply,
) -> None:
    assert weave.version() == cluster.weave_version and weave.health() == []
    ns = namespaces("x", {"ns": "x"})
    a, b = probe_pods([PodSpec(ns, "a", cluster.nodes[0]), PodSpec(ns, "b", cluster.nodes[-1])])
    (stored,) = apply(DENY_ALL, namespace=ns)
    assert stored["metadata"]["namespace"] == ns
    target = [{"id": "b", "ip": b.ip, "port": 80, "protocol": "TCP"}]
    verdicts = execing.probe(weave.api, a.ref, target, timeout=0.5, retries=1)
    assert verdicts[0]["verdict"] in ("allowed", "dropped")  # the controller may still be programming
    Path(os.environ["USES_FIXTURES_OUT"]).write_text(ns)


def test_upgrade_to_the_option(weave: WeaveControl) -> None:
    change = weave.upgrade()
    assert change.to_version == weave.upgrade_target == weave.version()
