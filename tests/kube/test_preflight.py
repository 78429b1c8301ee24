"""Each provisioner's preflight gives its one documented line before anything is created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netpolcheck.errors import UsageError
from netpolcheck.kube.provisioners import ClusterOptions, kind, kops, provision
from tests.kube import faketools

REPO = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the fakes a test installs; their commands go to the returned log."""
    log = tmp_path / "commands.jsonl"
    monkeypatch.setenv("PATH", str(faketools.install(tmp_path / "bin")))
    monkeypatch.setenv("FAKE_TOOL_LOG", str(log))
    monkeypatch.chdir(tmp_path)
    return log


def options(tmp_path: Path, kind_name: str) -> ClusterOptions:
    return ClusterOptions(kind=kind_name, work_dir=tmp_path / "work")


def test_kind_without_kind_binary(tools: Path, tmp_path: Path) -> None:
    faketools.install(tmp_path / "bin", "docker")
    with pytest.raises(UsageError) as info:
        provision(options(tmp_path, "kind"))
    assert str(info.value) == kind.NO_KIND
    assert faketools.recorded(tools) == []


def test_kind_without_docker_daemon(tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faketools.install(tmp_path / "bin", "kind", "docker")
    monkeypatch.setenv("FAKE_DOCKER_DAEMON", "down")
    with pytest.raises(UsageError) as info:
        provision(options(tmp_path, "kind"))
    assert str(info.value) == (
        "kind: no Docker daemon: `docker info` failed (Cannot connect to the Docker daemon at "
        "unix:///var/run/docker.sock. Is the docker daemon running?); start Docker or set DOCKER_HOST"
    )
    assert faketools.recorded(tools) == [["docker", "info", "--format", "{{.ServerVersion}}"]]


def test_kind_without_docker_client(tools: Path, tmp_path: Path) -> None:
    faketools.install(tmp_path / "bin", "kind")
    with pytest.raises(UsageError, match=r"^kind: no `docker` command on PATH"):
        provision(options(tmp_path, "kind"))


@pytest.mark.parametrize("missing", kind.MODULES)
def test_kind_without_kernel_module(tools: Path, tmp_path: Path, missing: str) -> None:
    faketools.install(tmp_path / "bin", "kind", "docker")
    modules = tmp_path / "sys-module"
    for module in kind.MODULES:
        if module != missing:
            (modules / module).mkdir(parents=True)
    with pytest.raises(UsageError) as info:
        kind.preflight(modules)
    assert str(info.value) == (
        f"kind: kernel module {missing} is not loaded on this host; kind nodes share the host kernel and "
        f"Weave needs it: run `modprobe {missing}` as root"
    )
    assert [c[0] for c in faketools.recorded(tools)] == ["docker"]  # only `docker info`


def test_kops_without_kops(tools: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        provision(options(tmp_path, "kops"))
    assert str(info.value) == kops.NO_KOPS


def test_kops_without_state_store(tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faketools.install(tmp_path / "bin", "kops")
    monkeypatch.delenv("KOPS_STATE_STORE", raising=False)
    with pytest.raises(UsageError) as info:
        provision(options(tmp_path, "kops"))
    assert str(info.value) == kops.NO_STATE
    assert faketools.recorded(tools) == []


def test_kops_without_aws_credentials(tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faketools.install(tmp_path / "bin", "kops")
    monkeypatch.setenv("KOPS_STATE_STORE", "s3://bucket")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws/credentials
    for name in [*kops.AWS_CREDENTIAL_ENV, "AWS_SHARED_CREDENTIALS_FILE"]:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UsageError) as info:
        provision(options(tmp_path, "kops"))
    assert str(info.value) == kops.NO_CREDENTIALS
    assert faketools.recorded(tools) == []


def test_kops_networking_follows_its_version() -> None:
    assert kops.networking((1, 22)) == "weave" and kops.networking((1, 23)) == "cni"
    assert kops.create_command("kops", "c.k8s.local", 2, "weave", (1, 22)) == [
        "kops", "create", "cluster", "--name", "c.k8s.local", "--zones", "us-east-1a", "--node-count", "2",
        "--networking", "weave", "--yes",
    ]  # fmt: skip


def test_pytest_stops_at_start_with_the_preflight_line(tmp_path: Path) -> None:
    """`--cluster kind` where kind is missing: the first test needing the cluster ends the run, exit 2."""
    env = {
        **os.environ,
        "PATH": str(faketools.install(tmp_path / "bin", "docker")),
        "FAKE_TOOL_LOG": "/dev/null",
    }
    proc = subprocess.run(
        [*PYTEST, "-q", "tests/kube/uses_cluster.py", "--cluster", "kind", f"--basetemp={tmp_path / 'bt'}"],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"netpolcheck: {kind.NO_KIND}" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--cluster", "kind", "--kubeconfig", "k"], "--kubeconfig is only for --cluster existing"),
        (["--cluster", "existing", "--nodes", "2"], "--nodes is not for --cluster existing"),
        (["--nodes", "17"], "--nodes 17 is out of range for --cluster hollow"),
        (["--cluster", "kind", "--weave-npc-binary", "2.8.1=/bin/true"], "--weave-npc-binary is only for"),
        (["--weave-npc-binary", "2.8.1"], "--weave-npc-binary '2.8.1' is not VER=PATH"),
        (["--weave-npc-binary", "2.8.1=/nonexistent"], "/nonexistent is not an executable file"),
        (["--cluster", "existing", "--keep-cluster"], "--keep-cluster is not for --cluster existing"),
        (["--weave-version", "2.7"], "--weave-version: no Weave manifest for version '2.7'"),
        (["--upgrade-to", "2.8.1", "--weave-version", "2.8.1"], "--upgrade-to 2.8.1 is the version"),
        (["--upgrade-to", "2.1.3"], "--upgrade-to 2.1.3: Weave 2.8.1 cannot be moved down to 2.1.3 in place"),
        (["--profile", "weave-2"], "--profile 'weave-2' is not spec, weave or weave-X.Y.Z"),
        (["--npc-fault", "no-such-bug"], "--npc-fault no-such-bug: unknown; known: ignore-namespace"),
        (["--cluster", "kind", "--npc-fault", "ports-ignored"], "--npc-fault is only for --cluster hollow"),
        (
            ["--npc-fault", "ports-ignored", "--weave-npc-binary", "2.8.1=/bin/true"],
            "--npc-fault switches the reference controller: not with --weave-npc-binary",
        ),
    ],
)
def test_bad_option_combinations_stop_pytest_with_one_line(args: list[str], line: str) -> None:
    proc = subprocess.run(
        [*PYTEST, "--co", "-q", "tests/kube/test_waiting.py", *args],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 4, proc.stdout + proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("ERROR:")]
    assert len(errors) == 1 and line in errors[0], proc.stderr


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("2.8.1", "netpolcheck: error: --weave-npc-binary: '2.8.1' is not VERSION=PATH"),
        (
            "2.8.1=/nonexistent",
            "netpolcheck: error: --weave-npc-binary '2.8.1=/nonexistent': /nonexistent is not",
        ),
    ],
)
def test_hollow_up_refuses_a_bad_weave_npc_binary(tmp_path: Path, value: str, line: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("hollow up checks root before its options")
    proc = subprocess.run(
        [sys.executable, "-m", "netpolcheck", "hollow", "up", "--state-dir", str(tmp_path / "s"),
         "--weave-npc-binary", value],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith(line) and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "s").exists()
