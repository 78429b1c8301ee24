"""kops on AWS, opt-in only (`--cluster kops`: it costs money). Deleted at the end unless --keep-cluster.

The networking follows the installed kops (docs/kube.md): kops before 1.23 still ships Weave
(`--networking weave`, kops installs it); later kops refuse or removed it, so the cluster is created
with `--networking cni` and our manifest is installed with IPALLOC_RANGE = kops's pod range
100.96.0.0/11. Nodes stay NotReady until a CNI runs, so the API is awaited first, Weave installed,
then `kops validate cluster --wait`.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from netpolcheck.errors import UsageError
from netpolcheck.kube import weave
from netpolcheck.kube.provisioners.base import (
    Cluster,
    ClusterOptions,
    created_cluster,
    finishing,
    install_weave,
    require_binary,
    run,
    work_kubeconfig,
)
from netpolcheck.kube.waiting import wait_for

POD_RANGE = "100.96.0.0/11"  # kops's default clusterCIDR
DEFAULT_ZONES = "us-east-1a"
DEFAULT_NODES = 2
LAST_WITH_WEAVE = (1, 22)  # kops 1.23..1.27 refuse Weave for Kubernetes >= 1.23; 1.28 removed it
AWS_CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)

NO_KOPS = "kops: no `kops` binary on PATH; install kops (https://kops.sigs.k8s.io/getting_started/install/)"
NO_STATE = "kops: KOPS_STATE_STORE is not set (e.g. s3://my-kops-state); kops keeps the cluster's state there"
NO_CREDENTIALS = (
    "kops: no AWS credentials (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or provide "
    "~/.aws/credentials)"
)


def has_aws_credentials() -> bool:
    if any(os.environ.get(name) for name in AWS_CREDENTIAL_ENV):
        return True
    shared = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or str(Path.home() / ".aws" / "credentials")
    return Path(shared).is_file()


def preflight() -> str:
    kops = require_binary("kops", NO_KOPS)
    if not os.environ.get("KOPS_STATE_STORE"):
        raise UsageError(NO_STATE)
    if not has_aws_credentials():
        raise UsageError(NO_CREDENTIALS)
    return kops


def kops_version(kops: str) -> tuple[int, int]:
    out = run([kops, "version"], "kops version", timeout=60)
    match = re.search(r"(\d+)\.(\d+)", out)
    if not match:
        raise UsageError(f"kops version: cannot read a version in {out.strip()[:80]!r}")
    return int(match.group(1)), int(match.group(2))


def networking(version: tuple[int, int]) -> str:
    return "weave" if version <= LAST_WITH_WEAVE else "cni"


def create_command(kops: str, name: str, nodes: int, net: str, version: tuple[int, int]) -> list[str]:
    zones = os.environ.get("KOPS_ZONES", DEFAULT_ZONES)
    dns = ["--dns", "none"] if version >= (1, 28) else []  # gossip (.k8s.local) was removed in kops 1.37
    return [
        kops,
        "create",
        "cluster",
        "--name",
        name,
        "--zones",
        zones,
        "--node-count",
        str(nodes),
        "--networking",
        net,
        *dns,
        "--yes",
    ]


def provision(options: ClusterOptions) -> Cluster:
    kops = preflight()
    version = kops_version(kops)
    net = networking(version)
    name = os.environ.get("KOPS_CLUSTER_NAME") or f"netpolcheck-{secrets.token_hex(3)}.k8s.local"
    kubeconfig = work_kubeconfig(options, "kops")
    run(create_command(kops, name, options.nodes or DEFAULT_NODES, net, version), "kops create cluster")

    def delete() -> None:
        run([kops, "delete", "cluster", "--name", name, "--yes"], "kops delete cluster")

    cluster = created_cluster(options, name, "kops", kubeconfig, POD_RANGE, delete)
    export = [kops, "export", "kubeconfig", name, "--admin", "--kubeconfig", str(kubeconfig)]
    with finishing(cluster, lambda: run(export, "kops export")) as api:
        wait_for(
            lambda: api.request("GET", "/version", timeout=10),
            "the kops cluster's API to answer",
            timeout=options.timeout,
            interval=5.0,
        )
        if net == "cni" or options.weave_version is not None:
            install_weave(api, options, POD_RANGE)
        run([kops, "validate", "cluster", "--name", name, "--wait", "15m", "--count", "3"], "kops validate")
        cluster.weave_version = weave.installed_version(api)
    return cluster
