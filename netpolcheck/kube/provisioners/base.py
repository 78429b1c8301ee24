"""What every provisioner takes (`ClusterOptions`) and gives (`Cluster`), and the checks they share."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from netpolcheck.errors import UsageError
from netpolcheck.kube import probepods, weave
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.probepods import DEFAULT_PROBE_IMAGE
from netpolcheck.kube.rollout import Progress

KINDS = ("hollow", "kind", "kops", "existing")
DEFAULT_WEAVE_VERSION = "2.8.1"


@dataclass
class ClusterOptions:
    """The suite's cluster options (see the README's "Running the suite" table)."""

    kind: str = "hollow"
    kubeconfig: Path | None = None
    context: str | None = None
    nodes: int | None = None
    weave_version: str | None = None  # None: DEFAULT_WEAVE_VERSION, or what an existing cluster runs
    upgrade_to: str | None = None
    weave_npc_binaries: Mapping[str, str] = field(default_factory=dict)
    probe_image: str = DEFAULT_PROBE_IMAGE
    keep_cluster: bool = False
    work_dir: Path = Path(".netpolcheck")
    pod_cidr: str | None = None  # hollow only: the embedded cluster's pod range
    npc_faults: tuple[str, ...] = ()  # hollow only: the reference controller runs with these --fault switches
    timeout: float = 600.0
    on_progress: Progress | None = field(default=None, repr=False, compare=False)  # the Weave rollout's

    def install_version(self) -> str:
        return self.weave_version or DEFAULT_WEAVE_VERSION


@dataclass
class Cluster:
    """A cluster the suite can use: how to reach it, its nodes, its Weave version, how to clean up."""

    name: str
    kind: str
    kubeconfig: Path
    context: str | None
    nodes: list[str]
    weave_version: str | None
    pod_cidr: str | None = None
    _cleanup: Callable[[], None] | None = field(default=None, repr=False)

    def api(self) -> KubeApi:
        return KubeApi.from_kubeconfig(self.kubeconfig, self.context)

    @property
    def outlives_session(self) -> bool:
        """False when `cleanup` deletes the cluster itself (one this run made and does not keep)."""
        return self._cleanup is None

    def cleanup(self) -> None:
        """Remove what the provisioner created (the cluster itself unless kept); idempotent."""
        step, self._cleanup = self._cleanup, None
        if step is not None:
            step()


@contextmanager
def finishing(cluster: Cluster, prepare: Callable[[], object] | None = None) -> Iterator[KubeApi]:
    """`prepare()` (e.g. export the kubeconfig), then the new cluster's API for a provisioner's last
    steps; the nodes are read after them. On any failure, Ctrl-C included, the cluster is cleaned up
    before the error propagates."""
    try:
        if prepare is not None:
            prepare()
        api = cluster.api()
        try:
            yield api
            cluster.nodes = probepods.schedulable_nodes(api)
        finally:
            api.close()
    except BaseException:
        cluster.cleanup()
        raise


def private_dir(path: Path) -> Path:
    """`path` created 0700 (a parent missing is created 0700 too)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def work_kubeconfig(options: ClusterOptions, kind: str) -> Path:
    """Where a provisioner that creates its cluster keeps the kubeconfig: in <work dir>/<kind>/ (0700)."""
    return private_dir(Path(options.work_dir) / kind) / "kubeconfig"


def created_cluster(
    options: ClusterOptions, name: str, kind: str, kubeconfig: Path, pod_cidr: str, delete: Callable[[], None]
) -> Cluster:
    """A cluster this run created, its nodes and Weave version still to be read; `delete` at cleanup
    unless --keep-cluster."""
    return Cluster(name, kind, kubeconfig, None, [], None, pod_cidr, None if options.keep_cluster else delete)


def require_binary(name: str, why: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise UsageError(why)
    return found


def run(argv: Sequence[str], what: str, timeout: float = 1800.0, env: Mapping[str, str] | None = None) -> str:
    """Run a tool; its stdout, or UsageError naming `what` with the last line of its stderr."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
        )
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"{what}: `{' '.join(argv[:3])} ...` did not finish within {timeout:.0f} s"
        ) from None
    except OSError as exc:
        raise UsageError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"{what} failed (exit {proc.returncode}): {last}")
    return proc.stdout


def install_weave(api: KubeApi, options: ClusterOptions, ipalloc_range: str | None) -> str:
    """Install the chosen Weave (manifest from manifests/weave/, pinned tags, IfNotPresent); its version."""
    version = options.install_version()
    current = weave.installed_version(api)
    how: weave.ApplyOptions = {"ipalloc_range": ipalloc_range, "timeout": options.timeout}
    how["on_progress"] = options.on_progress
    if current is None:
        weave.install(api, version, **how)
    elif current != version:
        weave.upgrade(api, version, **how)
    else:
        weave.wait_healthy(api, version, options.timeout)
    return version
