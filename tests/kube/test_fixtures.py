"""The fixtures and options through pytest itself, on the embedded cluster; what they made is gone after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netpolcheck.kube import fetching, namespaces, weave
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.provisioners import hollow

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

REPO = Path(__file__).resolve().parents[2]
FIXTURES_CIDR = "10.144.0.0/12"  # this module's own pod range


def test_fixtures_install_probe_apply_upgrade_and_clean_up(tmp_path: Path) -> None:
    out = tmp_path / "namespace"
    env = {**os.environ, "NETPOLCHECK_HOLLOW_POD_CIDR": FIXTURES_CIDR, "USES_FIXTURES_OUT": str(out)}
    args = ["--nodes", "2", "--weave-version", "2.0.5", "--upgrade-to", "2.1.3", "--keep-cluster"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/kube/uses_fixtures.py", *args,
         f"--basetemp={tmp_path / 'bt'}"],
        capture_output=True, text=True, timeout=600, cwd=REPO, env=env,
    )  # fmt: skip
    state_dir = tmp_path / "bt" / "cluster0" / "hollow"
    try:
        assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
        api = KubeApi.from_kubeconfig(state_dir / "kubeconfig")
        try:  # --keep-cluster kept the cluster; the run's namespaces and policies are gone
            assert namespaces.run_namespaces(api) == []
            assert fetching.get(api, namespaces.ref(out.read_text())) is None
            assert fetching.list_objects(api, "networking.k8s.io/v1", "NetworkPolicy") == []
            assert weave.installed_version(api) == "2.1.3"
        finally:
            api.close()
    finally:
        hollow.stop(state_dir)
