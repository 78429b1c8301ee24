"""Provisioners: hollow (embedded), kind, kops, existing. Each returns one `Cluster`.

`provision(options)` picks the provisioner named by `options.kind`; every provisioner runs its
preflight before it creates anything, and raises `UsageError` (one line) when it cannot run.
"""

from __future__ import annotations

from netpolcheck.kube.provisioners.base import Cluster, ClusterOptions


def provision(options: ClusterOptions) -> Cluster:
    from netpolcheck.kube.provisioners import existing, hollow, kind, kops

    providers = {"hollow": hollow.provision, "kind": kind.provision, "kops": kops.provision}
    providers["existing"] = existing.provision
    return providers[options.kind](options)


__all__ = ["Cluster", "ClusterOptions", "provision"]
