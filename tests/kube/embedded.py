"""One embedded (hollow) cluster for a test module: provisioned, a client to it, both removed at the end
(the cluster after a failure too, also when no client could be made)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.provisioners import Cluster, ClusterOptions, provision


@contextlib.contextmanager
def embedded_cluster(
    work_dir: Path,
    pod_cidr: str,
    nodes: int,
    *,
    weave_version: str | None = None,
    weave_npc_binaries: Mapping[str, str] | None = None,
    npc_faults: tuple[str, ...] = (),
    timeout: float = 180.0,
) -> Iterator[tuple[Cluster, KubeApi]]:
    """The hollow provisioner's cluster of `nodes` nodes in `pod_cidr` (its own range, so modules and
    other runs do not collide), its state under `work_dir`, and a client to it."""
    options = ClusterOptions(
        kind="hollow",
        nodes=nodes,
        weave_version=weave_version,
        weave_npc_binaries=dict(weave_npc_binaries or {}),
        work_dir=work_dir,
        pod_cidr=pod_cidr,
        npc_faults=npc_faults,
        timeout=timeout,
    )
    cluster = provision(options)
    try:
        api = cluster.api()
        try:
            yield cluster, api
        finally:
            api.close()
    finally:
        cluster.cleanup()
