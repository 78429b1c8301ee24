"""fixtures/progress.py: the run's progress records are printed live, once, and only ours.

As in test_interrupt.py, each test runs pytest as a process of its own on a small test file. Liveness is
proven by order: the test logs, then blocks until this test lets it go; the line must be in pytest's
stdout while it blocks, before any outcome.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.progress import rollout_progress
from netpolcheck.kube.rollout import NodePod, RolloutStatus
from netpolcheck.kube.waiting import wait_for
from tests.kube.test_interrupt import EXIT_WAIT, REPO, START_WAIT, UNTIL, Run, running

MESSAGE = "case-x: step 1/1: waiting for the marker"
LINE = re.compile(r"^netpolcheck \d\d:\d\d:\d\d case-x: step 1/1: waiting for the marker$", re.MULTILINE)

PROGRESSING = (
    UNTIL
    + """
import logging

def test_waits():
    logging.getLogger("netpolcheck.verdict").info("case-x: step 1/1: waiting for the marker")
    logging.getLogger("netpolcheck.fixtures.deep").info("two\\nlines")
    other = logging.getLogger("netpolcheck.hollow.other")
    other.setLevel(logging.INFO)
    other.info("not ours: netpolcheck.hollow.other")
    logging.getLogger("elsewhere").warning("not ours: elsewhere")
    print("not ours: print")
    (OUT / "logged").write_text("")
    _until("proceed")

def test_fails():
    logging.getLogger("netpolcheck.verdict").info("case-y: the failing one")
    assert os.environ.get("FAIL") != "1"
"""
)


def start(tmp_path: Path, *args: str, test: str = "test_progressing.py::test_waits") -> list[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:pytest-kind-ng -p no:cacheprovider\n")
    (tmp_path / "test_progressing.py").write_text(PROGRESSING)
    return [sys.executable, "-m", "pytest", "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path),
            "-p", "fixtures.progress", *args, test]  # fmt: skip


def finished(run: Run) -> tuple[int, str]:
    code = run.exit_code()
    return code, run.stdout.read_text()


@pytest.mark.parametrize("verbosity", [[], ["-v"], ["-qq"]], ids=["default", "-v", "-qq"])
def test_the_line_is_printed_while_the_test_still_runs(tmp_path: Path, verbosity: list[str]) -> None:
    # stdout block-buffered, as into a CI log (PYTHONUNBUFFERED may be set here): the plugin must flush
    with running(tmp_path, start(tmp_path, *verbosity), env={"PYTHONUNBUFFERED": ""}) as run:
        run.until_file("logged")
        wait_for(lambda: LINE.search(run.stdout.read_text()) is not None, "the progress line in stdout",
                 timeout=START_WAIT, interval=0.05, retry_errors=False,
                 describe_last=lambda: repr(run.stdout.read_text()[-1500:]))  # fmt: skip
        assert run.proc.poll() is None, "pytest ended before the test was let go"
        before = run.stdout.read_text()
        (tmp_path / "proceed").write_text("")
        code, out = finished(run)
    assert code == pytest.ExitCode.OK, run.output()
    assert "passed" not in before and "PASSED" not in before, before  # no outcome yet when it was printed
    assert len(LINE.findall(out)) == 1, out
    assert re.search(r"^netpolcheck \d\d:\d\d:\d\d two; lines$", out, re.MULTILINE), out  # one line each
    assert "not ours" not in run.output(), out


def test_no_progress_prints_none(tmp_path: Path) -> None:
    (tmp_path / "proceed").write_text("")
    with running(tmp_path, start(tmp_path, "--no-progress")) as run:
        code, out = finished(run)
    assert code == pytest.ExitCode.OK, run.output()
    assert "netpolcheck " not in out and MESSAGE not in out, out


def test_with_pytests_live_logging_the_line_is_printed_once(tmp_path: Path) -> None:
    (tmp_path / "proceed").write_text("")
    with running(tmp_path, start(tmp_path, "-o", "log_cli=true", "--log-cli-level=INFO")) as run:
        code, out = finished(run)
    assert code == pytest.ExitCode.OK, run.output()
    assert out.count(MESSAGE) == 1, out
    assert "live log call" in out and not LINE.search(out), out  # pytest's line, not ours


def test_under_xdist_workers_print_nothing_and_a_failure_report_has_the_record(tmp_path: Path) -> None:
    pytest.importorskip("xdist", reason="pytest-xdist is not installed (the test dependency group has it)")
    (tmp_path / "proceed").write_text("")
    with running(tmp_path, start(tmp_path, "-p", "xdist", "-n", "2", test="test_progressing.py"),
                 env={"FAIL": "1"}) as run:  # fmt: skip
        code, out = finished(run)
    assert code == pytest.ExitCode.TESTS_FAILED, run.output()
    assert "1 failed, 1 passed" in out and "INTERNALERROR" not in run.output(), run.output()
    assert not LINE.search(out), out
    report = out[out.index("Captured log call") :]
    assert "case-y: the failing one" in report, out  # the worker's record, in its failure's report


IN_PROCESS = """
import logging, sys
import pytest

names = ("netpolcheck", "netpolcheck.verdict", "netpolcheck.fixtures")
before = [(logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names]
code = pytest.main(sys.argv[1:])
after = [(logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names]
print("same" if after == before else f"leaked: {before} -> {after}")
sys.exit(code)
"""


def test_an_in_process_run_leaves_no_handler_and_no_level(tmp_path: Path) -> None:
    (tmp_path / "proceed").write_text("")
    argv = start(tmp_path, "-q")
    (tmp_path / "main.py").write_text(IN_PROCESS)
    proc = subprocess.run([sys.executable, str(tmp_path / "main.py"), *argv[3:]], capture_output=True,
                          text=True, timeout=EXIT_WAIT, cwd=tmp_path,
                          env={"OUT": str(tmp_path), "PYTHONPATH": str(REPO), "PATH": ""})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert LINE.search(proc.stdout), proc.stdout  # it did print: the plugin was on
    assert proc.stdout.splitlines()[-1] == "same", proc.stdout


def _pod(node: str, ready: bool) -> NodePod:
    return NodePod(node, f"weave-net-{node}", (("weave-npc", "weaveworks/weave-npc:2.8.1"),), ready)


def test_a_rollout_is_reported_when_its_status_or_ready_pods_change(caplog: pytest.LogCaptureFixture) -> None:
    report = rollout_progress("Weave 2.8.1")
    waiting = RolloutStatus(
        False, 'Waiting for daemon set "weave-net" rollout to finish: 0 of 2 pods available'
    )
    with caplog.at_level(logging.INFO, logger="netpolcheck.fixtures"):
        report(waiting, {"n1": _pod("n1", False), "n2": _pod("n2", False)})
        report(waiting, {"n1": _pod("n1", False), "n2": _pod("n2", False)})  # another pod change: same line
        report(waiting, {"n1": _pod("n1", True), "n2": _pod("n2", False)})
        report(RolloutStatus(True, 'daemon set "weave-net" successfully rolled out'),
               {"n1": _pod("n1", True), "n2": _pod("n2", True)})  # fmt: skip
    assert [r.getMessage() for r in caplog.records if r.name == "netpolcheck.fixtures"] == [
        f"Weave 2.8.1: {waiting.message} (0/2 pods ready)",
        f"Weave 2.8.1: {waiting.message} (1/2 pods ready)",
        'Weave 2.8.1: daemon set "weave-net" successfully rolled out (2/2 pods ready)',
    ]
