"""A test that needs the cluster; run explicitly by test_preflight.py (the name is not collected)."""

from __future__ import annotations

from netpolcheck.kube.provisioners import Cluster


def test_needs_the_cluster(cluster: Cluster) -> None:
    assert cluster.nodes
