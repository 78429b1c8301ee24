"""fixtures/parallel.py: the lock that keeps cluster-wide tests alone across xdist workers (real flock
on real files, from threads: each open() is its own open file description, as in another process),
and what the controller hands a worker."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fixtures.parallel import SharedCluster, _locked

XDIST_CIDR = "10.121.0.0/16"  # this test's own pod range (inside 10.112.0.0/12, used by no other test)


def _held_by_someone(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _until(condition: Callable[[], bool], what: str, bound: float = 10.0) -> None:
    end = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < end, f"waited {bound} s for {what}"
        time.sleep(0.01)


def test_shared_holders_run_together(tmp_path: Path) -> None:
    with _locked(tmp_path, False, "a"), _locked(tmp_path, False, "b"):
        assert _held_by_someone(tmp_path / "cluster.lock")
    assert not _held_by_someone(tmp_path / "cluster.lock")
    assert not _held_by_someone(tmp_path / "turnstile.lock")


def test_an_exclusive_holder_waits_for_running_tests_and_new_ones_wait_for_it(tmp_path: Path) -> None:
    entered: list[str] = []
    release_first = threading.Event()
    release_alone = threading.Event()

    def hold(name: str, exclusive: bool, until: threading.Event | None) -> None:
        with _locked(tmp_path, exclusive, name):
            entered.append(name)
            if until is not None:
                assert until.wait(10), f"{name} was never released"

    first = threading.Thread(target=hold, args=("first", False, release_first))
    first.start()
    _until(lambda: entered == ["first"], "the first shared holder")
    alone = threading.Thread(target=hold, args=("alone", True, release_alone))
    alone.start()
    # the exclusive test waits, holding the turnstile: a new test must queue behind it
    _until(lambda: _held_by_someone(tmp_path / "turnstile.lock"), "the exclusive test to wait")
    late = threading.Thread(target=hold, args=("late", False, None))
    late.start()
    late.join(0.3)
    assert entered == ["first"], "a test started beside a running one while an exclusive test waited"
    release_first.set()
    _until(lambda: entered == ["first", "alone"], "the exclusive test to start")
    late.join(0.3)
    assert entered == ["first", "alone"], "a test started beside the exclusive one"
    release_alone.set()
    for thread in (first, alone, late):
        thread.join(10)
    assert entered == ["first", "alone", "late"]


def test_a_worker_sees_the_controllers_cluster_without_clean_up(tmp_path: Path) -> None:
    given = SharedCluster(
        "c", "hollow", "/k/config", None, ["n1", "n2"], "2.8.1", "10.80.0.0/12", str(tmp_path)
    )
    cluster = SharedCluster(**json.loads(json.dumps(given.__dict__))).cluster()
    assert (cluster.kind, str(cluster.kubeconfig), cluster.nodes, cluster.pod_cidr) == (
        "hollow",
        "/k/config",
        ["n1", "n2"],
        "10.80.0.0/12",
    )
    assert cluster._cleanup is None  # a worker never removes the shared cluster


def test_workers_hand_their_report_cases_to_the_controller(tmp_path: Path) -> None:
    """A worker writes no report: its cases go to the controller (xdist's workeroutput), which merges
    every worker's and writes the one report at its own session end."""
    from fixtures import verdict as plugin

    def config(workeroutput: dict[str, Any] | None) -> Any:
        stash = {plugin.CERTIFICATION: plugin.Certification(tmp_path / "report.json")}
        return SimpleNamespace(
            stash=stash, **({} if workeroutput is None else {"workeroutput": workeroutput})
        )

    environment = {"cni": {"version": "2.8.1"}, "cluster": "hollow"}
    outputs = []
    for n in (1, 2):
        worker = config({})
        certification = worker.stash[plugin.CERTIFICATION]
        certification.cases[f"t{n}"] = {"id": f"t{n}", "status": "pass"}
        certification.environment = environment
        certification.weave_versions["2.8.1"] = None
        plugin.pytest_sessionfinish(SimpleNamespace(config=worker))  # type: ignore[arg-type]
        assert not (tmp_path / "report.json").exists()
        outputs.append(worker.workeroutput)
    controller = config(None)
    for output in outputs:
        plugin.pytest_testnodedown(SimpleNamespace(config=controller, workeroutput=output), None)
    merged = controller.stash[plugin.CERTIFICATION]
    assert set(merged.cases) == {"t1", "t2"} and merged.environment == environment
    assert list(merged.weave_versions) == ["2.8.1"]


def test_the_controller_makes_no_cluster_for_a_run_without_the_suites() -> None:
    """`pytest -n 2` over library tests must not bring up an embedded cluster (it needs root, and the
    machine's pod range); the progress would say "making the embedded cluster" if it did."""
    repo = Path(__file__).resolve().parents[2]
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "tests/test_layering.py",
    ]
    done = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "passed" in done.stdout and "making the embedded cluster" not in done.stdout + done.stderr


def test_paths_reach_the_suites_only_from_inside_or_above_them(tmp_path: Path) -> None:
    from fixtures.parallel import selects_suites

    root = tmp_path / "repo"
    (root / "suites").mkdir(parents=True)
    (root / "tests").mkdir()

    def config(*args: str) -> Any:
        return SimpleNamespace(rootpath=root, args=list(args), invocation_params=SimpleNamespace(dir=root))

    assert selects_suites(config("suites"))
    assert selects_suites(config("suites/test_ingress.py::test_ingress_rules[deny-all]"))
    assert selects_suites(config("."))
    assert not selects_suites(config("tests"))
    assert not selects_suites(config("tests/kube/test_parallel.py"))


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.slow
def test_a_distributed_suite_run_removes_its_shared_cluster_and_work_dir(tmp_path: Path) -> None:
    """`pytest suites -n 2`: the controller makes the one embedded cluster in a work dir of its own, and
    removes both when the workers are done (the cluster's state dir and logs go with it)."""
    repo = Path(__file__).resolve().parents[2]
    work_dirs = Path(tempfile.gettempdir())
    before = set(work_dirs.glob("netpolcheck-cluster-*"))
    env = {**os.environ, "NETPOLCHECK_HOLLOW_POD_CIDR": XDIST_CIDR}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup",
            "suites/test_ingress.py", "-k", "no-policy-allows-everything", "--cluster", "hollow",
            f"--basetemp={tmp_path / 'bt'}", f"--report-json={tmp_path / 'report.json'}"]  # fmt: skip
    done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    assert "making the embedded cluster" in done.stdout and " deleted in " in done.stdout
    assert set(work_dirs.glob("netpolcheck-cluster-*")) - before == set()
    routes = subprocess.run(["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True)
    assert XDIST_CIDR not in routes.stdout
