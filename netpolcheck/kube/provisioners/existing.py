"""An existing cluster: the kubeconfig and context as given; Weave installed or moved only when asked."""

from __future__ import annotations

import os
from pathlib import Path

from netpolcheck.errors import UsageError
from netpolcheck.kube import probepods, weave
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.provisioners.base import Cluster, ClusterOptions, install_weave


def default_kubeconfig() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    return Path(env.split(os.pathsep)[0]) if env else Path.home() / ".kube" / "config"


def provision(options: ClusterOptions) -> Cluster:
    kubeconfig = Path(options.kubeconfig or default_kubeconfig())
    api = KubeApi.from_kubeconfig(kubeconfig, options.context)
    try:
        try:
            api.request("GET", "/version", timeout=15)
        except Exception as exc:
            raise UsageError(f"existing: the cluster of {kubeconfig} does not answer: {exc}") from None
        if options.weave_version is not None:  # asked for: install or move to that version
            version: str | None = install_weave(api, options, None)
        else:
            version = weave.installed_version(api)
        nodes = probepods.schedulable_nodes(api)
    finally:
        api.close()
    return Cluster(
        name=f"existing:{kubeconfig}{f'#{options.context}' if options.context else ''}",
        kind="existing",
        kubeconfig=kubeconfig,
        context=options.context,
        nodes=nodes,
        weave_version=version,
    )
