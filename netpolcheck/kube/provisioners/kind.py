"""kind: pytest-kind-ng's `KindCluster` with manifests/kind/ (no default CNI, pod subnet = Weave's range).

Order: preflight (kind binary, Docker daemon, kernel modules) before anything is created; create the
cluster from the config (no `--wait`: nodes stay NotReady until a CNI runs); export the kubeconfig
(pytest-kind never does, so a kept cluster could not be reused from a fresh checkout); build the probe
image and pull the Weave images of every version the run uses; `kind load` them all; install Weave
with pinned tags and `IfNotPresent`, so the loaded images are the ones that run.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from netpolcheck.errors import UsageError
from netpolcheck.kube import weave
from netpolcheck.kube.paths import KIND_CONFIG, MANIFESTS
from netpolcheck.kube.provisioners.base import (
    Cluster,
    ClusterOptions,
    created_cluster,
    finishing,
    install_weave,
    private_dir,
    require_binary,
    run,
    work_kubeconfig,
)

CLUSTER_NAME = "netpolcheck"
POD_SUBNET = "10.32.0.0/12"  # manifests/kind/cluster-no-cni.yaml's podSubnet = Weave's IPALLOC_RANGE
MODULES = ("br_netfilter", "xt_set")
SYS_MODULE = Path("/sys/module")

NO_KIND = "kind: no `kind` binary on PATH; install kind (https://kind.sigs.k8s.io/docs/user/quick-start/)"
NO_DOCKER = "kind: no `docker` command on PATH; kind runs its nodes as Docker containers"
NO_DAEMON = "kind: no Docker daemon: `docker info` failed ({detail}); start Docker or set DOCKER_HOST"
NO_MODULE = (
    "kind: kernel module {module} is not loaded on this host; kind nodes share the host kernel and "
    "Weave needs it: run `modprobe {module}` as root"
)


def preflight(modules_dir: Path | None = None) -> tuple[str, str]:
    """(kind, docker) paths; UsageError with one message for the first thing missing."""
    modules_dir = modules_dir or SYS_MODULE
    kind = require_binary("kind", NO_KIND)
    docker = require_binary("docker", NO_DOCKER)
    try:
        info = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=60
        )
        detail = (info.stderr.strip().splitlines() or [f"exit {info.returncode}"])[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        info, detail = None, str(exc)
    if info is None or info.returncode != 0:
        raise UsageError(NO_DAEMON.format(detail=detail))
    for module in MODULES:
        if not (modules_dir / module).exists():
            raise UsageError(NO_MODULE.format(module=module))
    return kind, docker


def run_versions(options: ClusterOptions) -> list[str]:
    return list(dict.fromkeys(v for v in (options.install_version(), options.upgrade_to) if v))


class ImageLoader(Protocol):
    """What side_load needs of pytest-kind's KindCluster."""

    def load_docker_image(self, docker_image: str) -> None: ...


def side_load(cluster: ImageLoader, docker: str, probe_image: str, versions: Iterable[str]) -> None:
    """Build the probe image, pull Weave's, and `kind load` each (one image per call)."""
    run(
        [
            docker,
            "build",
            "-f",
            str(MANIFESTS.parent / "images" / "probe" / "Dockerfile"),
            "-t",
            probe_image,
            str(MANIFESTS.parent),
        ],
        f"docker build of {probe_image}",
    )
    weave_images = list(dict.fromkeys(i for v in versions for i in weave.images(v)))
    for image in weave_images:
        run([docker, "pull", image], f"docker pull {image}")
    for image in [probe_image, *weave_images]:
        try:
            cluster.load_docker_image(image)
        except Exception as exc:
            raise UsageError(f"kind load docker-image {image} failed: {exc}") from None


def provision(options: ClusterOptions) -> Cluster:
    kind, docker = preflight()
    try:
        from pytest_kind import KindCluster  # the suite dependency group; only needed here
    except ImportError:
        raise UsageError(
            "--cluster kind needs pytest-kind-ng (the `suite` dependency group: `tox -e e2e` installs it, "
            "or pip install pytest-kind-ng)"
        ) from None
    kubeconfig = work_kubeconfig(options, "kind")
    private_dir(Path(".pytest-kind"))  # KindCluster keeps ./.pytest-kind/<name>/ under the CWD
    kubectl = shutil.which("kubectl") or str(kubeconfig.parent / "kubectl")
    kc = KindCluster(CLUSTER_NAME, kubeconfig=kubeconfig, kind_path=Path(kind), kubectl_path=Path(kubectl))

    def delete() -> None:
        run(
            [kind, "delete", "cluster", f"--name={CLUSTER_NAME}", f"--kubeconfig={kubeconfig}"], "kind delete"
        )

    try:
        kc.create(config_file=KIND_CONFIG)
    except Exception as exc:
        raise UsageError(f"kind create cluster failed: {exc}") from None
    cluster = created_cluster(options, CLUSTER_NAME, "kind", kubeconfig, POD_SUBNET, delete)

    def prepare() -> None:
        export = [kind, "export", "kubeconfig", "--name", CLUSTER_NAME, "--kubeconfig", str(kubeconfig)]
        run(export, "kind export")
        side_load(kc, docker, options.probe_image, run_versions(options))

    with finishing(cluster, prepare) as api:
        cluster.weave_version = install_weave(api, options, POD_SUBNET)
    return cluster
