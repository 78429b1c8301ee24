"""Fixtures for the hollow cluster tests (helpers in clusterkit.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hollow.clusterkit import SHARED_CIDR, Cluster, start_cluster, stop_cluster


@pytest.fixture(scope="session")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One 3-node cluster (`--npc none`: no weave-net DaemonSet) for tests that only add pods and objects."""
    cluster = start_cluster(
        tmp_path_factory.mktemp("hollow-shared"), "--nodes", "3", "--npc", "none", cidr=SHARED_CIDR
    )
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
