"""The kind and kops flows against fake `kind`, `docker` and `kops` executables (argv recorded in order).

The fakes hand the provisioners the kubeconfig of a real embedded cluster started without Weave, so
the Weave install and upgrade that follow go through the API for real; the test checks the exact
commands, in order, for create, load, install, upgrade and delete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from netpolcheck.kube import weave
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.paths import KIND_CONFIG, MANIFESTS
from netpolcheck.kube.provisioners import ClusterOptions, hollow, kind, provision
from tests.kube import faketools

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

FLOW_CIDR = "10.160.0.0/12"  # this module's own pod range
REPO = MANIFESTS.parent
CONFIG = str(KIND_CONFIG)
DOCKERFILE = str(REPO / "images" / "probe" / "Dockerfile")


@pytest.fixture(scope="module")
def bare_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An embedded cluster without Weave (what kind or kops hand over: no CNI yet); its kubeconfig."""
    state_dir = tmp_path_factory.mktemp("kube-flows") / "hollow"
    options = ClusterOptions(kind="hollow", nodes=2, pod_cidr=FLOW_CIDR)
    hollow.start(options, state_dir)
    try:
        yield state_dir / "kubeconfig"
    finally:
        hollow.stop(state_dir)


@pytest.fixture
def fakes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bare_cluster: Path
) -> Iterator[tuple[Path, KubeApi]]:
    log = tmp_path / "commands.jsonl"
    bin_dir = faketools.install(tmp_path / "bin", "kind", "docker", "kops")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin")
    monkeypatch.setenv("FAKE_TOOL_LOG", str(log))
    monkeypatch.setenv("FAKE_KUBECONFIG", str(bare_cluster))
    monkeypatch.chdir(tmp_path)
    api = KubeApi.from_kubeconfig(bare_cluster)
    try:
        yield log, api
    finally:
        weave.uninstall(api)
        api.close()


@pytest.fixture
def modules_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kind's preflight sees br_netfilter and xt_set (the build machine's modules are not the point here)."""
    present = tmp_path / "sys-module"
    for module in kind.MODULES:
        (present / module).mkdir(parents=True)
    monkeypatch.setattr(kind, "SYS_MODULE", present)


@pytest.mark.usefixtures("modules_loaded")
def test_kind_create_load_install_upgrade_delete(fakes: tuple[Path, KubeApi], tmp_path: Path) -> None:
    log, api = fakes
    options = ClusterOptions(kind="kind", weave_version="2.0.5", upgrade_to="2.1.3", work_dir=tmp_path / "w")
    cluster = provision(options)
    kubeconfig = str(tmp_path / "w" / "kind" / "kubeconfig")
    weave_images = [f"weaveworks/weave-{c}:{v}" for v in ("2.0.5", "2.1.3") for c in ("kube", "npc")]
    assert faketools.recorded(log) == [
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        ["kind", "get", "clusters"],
        ["kind", "create", "cluster", "--name=netpolcheck", f"--kubeconfig={kubeconfig}", "--config", CONFIG],
        ["kind", "export", "kubeconfig", "--name", "netpolcheck", "--kubeconfig", kubeconfig],
        ["docker", "build", "-f", DOCKERFILE, "-t", "netpolcheck-probe:0.1.0", str(REPO)],
        *(["docker", "pull", image] for image in weave_images),
        *(["kind", "load", "docker-image", "--name", "netpolcheck", image]
          for image in ["netpolcheck-probe:0.1.0", *weave_images]),
    ]  # fmt: skip
    # install: through the API, pinned tags, IfNotPresent (the side-loaded images are the ones used)
    assert (cluster.kind, cluster.weave_version, cluster.pod_cidr) == ("kind", "2.0.5", "10.32.0.0/12")
    assert cluster.nodes == ["node1", "node2"]
    ds = weave.daemonset(api)
    assert ds is not None
    containers = ds["spec"]["template"]["spec"]["containers"]
    assert {(c["image"], c["imagePullPolicy"]) for c in containers} == {
        ("weaveworks/weave-kube:2.0.5", "IfNotPresent"),
        ("weaveworks/weave-npc:2.0.5", "IfNotPresent"),
    }
    router_env = next(c for c in containers if c["name"] == "weave")["env"]
    assert {"name": "IPALLOC_RANGE", "value": "10.32.0.0/12"} in router_env
    # upgrade: images were loaded at create time, so it is API work only: no new command
    before = len(faketools.recorded(log))
    cluster_api = cluster.api()
    try:
        weave.upgrade(cluster_api, "2.1.3", ipalloc_range=cluster.pod_cidr, timeout=180)
    finally:
        cluster_api.close()
    assert weave.installed_version(api) == "2.1.3" and len(faketools.recorded(log)) == before
    cluster.cleanup()
    cluster.cleanup()  # idempotent
    assert faketools.recorded(log)[before:] == [
        ["kind", "delete", "cluster", "--name=netpolcheck", f"--kubeconfig={kubeconfig}"]
    ]


@pytest.mark.usefixtures("modules_loaded")
def test_kind_keep_cluster_skips_delete(fakes: tuple[Path, KubeApi], tmp_path: Path) -> None:
    log, _ = fakes
    options = ClusterOptions(kind="kind", weave_version="2.8.1", keep_cluster=True, work_dir=tmp_path / "w")
    provision(options).cleanup()
    assert not any(c[:3] == ["kind", "delete", "cluster"] for c in faketools.recorded(log))


def test_kops_create_install_validate_delete(
    fakes: tuple[Path, KubeApi], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, api = fakes
    monkeypatch.setenv("KOPS_STATE_STORE", "s3://netpolcheck-test-state")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
    monkeypatch.setenv("KOPS_CLUSTER_NAME", "np.k8s.local")
    monkeypatch.setenv("FAKE_KOPS_VERSION", "1.30.1")
    options = ClusterOptions(kind="kops", weave_version="2.1.3", work_dir=tmp_path / "w")
    cluster = provision(dataclasses.replace(options))
    kubeconfig = str(tmp_path / "w" / "kops" / "kubeconfig")
    assert faketools.recorded(log) == [
        ["kops", "version"],
        ["kops", "create", "cluster", "--name", "np.k8s.local", "--zones", "us-east-1a", "--node-count", "2",
         "--networking", "cni", "--dns", "none", "--yes"],
        ["kops", "export", "kubeconfig", "np.k8s.local", "--admin", "--kubeconfig", kubeconfig],
        ["kops", "validate", "cluster", "--name", "np.k8s.local", "--wait", "15m", "--count", "3"],
    ]  # fmt: skip
    assert cluster.weave_version == weave.installed_version(api) == "2.1.3"
    ds = weave.daemonset(api)
    assert ds is not None
    router = next(c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "weave")
    assert [e["value"] for e in router["env"] if e["name"] == "IPALLOC_RANGE"] == ["100.96.0.0/11"]
    cluster.cleanup()
    assert faketools.recorded(log)[-1] == ["kops", "delete", "cluster", "--name", "np.k8s.local", "--yes"]
