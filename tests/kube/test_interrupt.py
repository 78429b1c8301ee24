"""fixtures/interrupt.py: SIGTERM and SIGHUP stop a real pytest process with its clean-up, as Ctrl-C does.

Each test runs pytest as a process of its own on a small test file, signals it by PID and looks at what
its fixtures left on disk; the last one does it to the suite on its own embedded cluster and looks for
anything of that cluster left on the machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fixtures.interrupt import GRACE, Interrupter
from netpolcheck.kube import namespaces
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.provisioners import hollow
from netpolcheck.kube.waiting import WaitTimeout, wait_for
from tests.dispositions import reset_to_defaults
from tests.hollow.clusterkit import leftovers

REPO = Path(__file__).resolve().parents[2]
START_WAIT = 120.0  # seconds for a pytest process to import everything and reach its test (loaded machine)
EXIT_WAIT = 120.0
LINE = "netpolcheck: received {}: stopping the run; clean-up runs first, as after Ctrl-C"

# the small test files' start: `_until(name)` waits (bounded) for a file this test writes into OUT
UNTIL = """
import os, time
from pathlib import Path
import pytest

OUT = Path(os.environ["OUT"])

def _until(name):
    end = time.monotonic() + 120
    while not (OUT / name).exists():
        assert time.monotonic() < end, f"{name} never came"
        time.sleep(0.05)
"""

BLOCKING = (
    UNTIL
    + """
@pytest.fixture(scope="session")
def session_thing():
    yield
    (OUT / "session-torn-down").write_text("")

@pytest.fixture
def slow_teardown():
    yield
    (OUT / "tearing-down").write_text("")
    _until("proceed")
    (OUT / "function-torn-down").write_text("")

def test_blocks(session_thing):
    (OUT / "started").write_text("")
    _until("released")  # only a signal ends it

def test_tears_down_slowly(session_thing, slow_teardown):
    pass

def test_after(session_thing):
    (OUT / "second-test-ran").write_text("")
"""
)


class Run:
    """One pytest process on BLOCKING (or on `argv`), its output in files."""

    def __init__(self, tmp_path: Path, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.out = tmp_path
        self.stdout = tmp_path / "stdout"
        self.stderr = tmp_path / "stderr"
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.proc = subprocess.Popen(
                argv,
                cwd=tmp_path,
                stdout=out,
                stderr=err,
                env={**os.environ, "OUT": str(tmp_path), "PYTHONPATH": str(REPO), **(env or {})},
                start_new_session=True,  # a terminal's Ctrl-C must not reach it: only our signals do
                preexec_fn=reset_to_defaults,  # not nohup's ignored SIGHUP: as a user's terminal starts it
            )

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def until_file(self, name: str) -> None:
        def there() -> bool:
            assert self.proc.poll() is None, (
                f"pytest exited ({self.proc.returncode}): {self.output()[-3000:]}"
            )
            return (self.out / name).exists()

        wait_for(there, f"{name} from the pytest process", timeout=START_WAIT, interval=0.05,
                 describe_last=lambda: f"no {name}; output so far: {self.output()[-1500:]!r}",
                 retry_errors=False)  # fmt: skip

    def until_said(self, text: str) -> None:
        wait_for(lambda: text in self.stderr.read_text(), f"pytest to print {text!r}", timeout=START_WAIT,
                 interval=0.05, describe_last=lambda: repr(self.stderr.read_text()[-1500:]))  # fmt: skip

    def exit_code(self) -> int:
        try:
            return self.proc.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"pytest still runs {EXIT_WAIT:.0f} s after the signal: {self.output()}"
            ) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def pytest_argv(tmp_path: Path, *tests: str) -> list[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:pytest-kind-ng -p no:cacheprovider\n")
    (tmp_path / "test_blocking.py").write_text(BLOCKING)
    node_ids = [f"test_blocking.py::{name}" for name in tests]
    return [sys.executable, "-m", "pytest", "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path),
            "-p", "fixtures.interrupt", "-q", *node_ids]  # fmt: skip


@contextmanager
def running(tmp_path: Path, argv: list[str], env: dict[str, str] | None = None) -> Iterator[Run]:
    run = Run(tmp_path, argv, env)
    try:
        yield run
    finally:
        run.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_stops_the_run_with_its_teardown(tmp_path: Path, signum: signal.Signals) -> None:
    with running(tmp_path, pytest_argv(tmp_path, "test_blocks", "test_after")) as run:
        run.until_file("started")
        os.kill(run.proc.pid, signum)
        code = run.exit_code()
        output = run.output()
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert (tmp_path / "session-torn-down").exists(), output
    assert not (tmp_path / "second-test-ran").exists(), "the run went on after the signal"
    assert LINE.format(signum.name) in run.stderr.read_text().splitlines(), output


def test_a_signal_during_a_teardown_waits_for_it_and_repeats_are_ignored(tmp_path: Path) -> None:
    with running(tmp_path, pytest_argv(tmp_path, "test_tears_down_slowly", "test_after")) as run:
        run.until_file("tearing-down")
        os.kill(run.proc.pid, signal.SIGTERM)
        run.until_said("received SIGTERM: clean-up is running; it finishes first, then the run stops")
        os.kill(run.proc.pid, signal.SIGHUP)
        run.until_said("received SIGHUP again: ignored while clean-up runs")
        (tmp_path / "proceed").write_text("")
        code = run.exit_code()
        output = run.output()
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert (tmp_path / "function-torn-down").exists(), "the teardown was cut short"
    assert (tmp_path / "session-torn-down").exists(), output
    assert not (tmp_path / "second-test-ran").exists(), "the run went on after the teardown"


OWN_HANDLER = """
import os, signal, sys
from pathlib import Path
import pytest

OUT = Path(os.environ["OUT"])

def mine(signum, frame):
    (OUT / "released").write_text("")  # ends test_blocks: the run goes on
    (OUT / "own-handler-ran").write_text("")

signal.signal(signal.SIGTERM, mine)
code = pytest.main(sys.argv[1:])
after = {s.name: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
(OUT / "handlers-after").write_text(repr({k: "mine" if v is mine else str(v) for k, v in after.items()}))
sys.exit(code)
"""


def test_a_handler_the_user_installed_is_kept_and_ours_is_removed_after(tmp_path: Path) -> None:
    argv = pytest_argv(tmp_path, "test_blocks", "test_after")
    (tmp_path / "main.py").write_text(OWN_HANDLER)
    with running(tmp_path, [sys.executable, str(tmp_path / "main.py"), *argv[3:]]) as run:
        run.until_file("started")
        os.kill(run.proc.pid, signal.SIGTERM)
        code = run.exit_code()
        output = run.output()
    assert code == pytest.ExitCode.OK, output
    assert (tmp_path / "own-handler-ran").exists() and (tmp_path / "second-test-ran").exists(), output
    assert "netpolcheck: received" not in output
    # SIGTERM still the user's; SIGHUP, which the plugin took, back to the default after pytest
    assert (tmp_path / "handlers-after").read_text() == repr(
        {"SIGTERM": "mine", "SIGHUP": str(signal.Handlers.SIG_DFL)}
    )


LATE_REPEAT = """
import os, signal, sys
from fixtures import interrupt

clock = [0.0]
state = interrupt.Interrupter(2, "", now=lambda: clock[0])
interrupt.install(state)
try:
    os.kill(os.getpid(), signal.SIGTERM)
except KeyboardInterrupt:
    pass
state.finishing = True
clock[0] = interrupt.GRACE  # a repeat within the grace: ignored
os.kill(os.getpid(), signal.SIGTERM)
print("survived the repeat", flush=True)
clock[0] = interrupt.GRACE + 1  # one after it: the default action, the process ends by SIGTERM
os.kill(os.getpid(), signal.SIGTERM)
print("survived the late repeat", flush=True)
"""


def test_a_repeat_after_the_grace_ends_the_process(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", LATE_REPEAT], capture_output=True, text=True,
                          timeout=EXIT_WAIT, cwd=REPO, env=env)  # fmt: skip
    assert proc.returncode == -signal.SIGTERM, proc.stdout + proc.stderr
    assert proc.stdout == "survived the repeat\n", proc.stdout + proc.stderr
    assert f"received SIGTERM again {GRACE + 1:.0f} s after the first: ending now" in proc.stderr


def test_a_signal_held_during_a_failing_teardown_still_stops_the_run(tmp_path: Path) -> None:
    """The teardown's own error does not swallow the held signal (called as the signal would be)."""
    read, write = os.pipe()
    try:
        state = Interrupter(write, "")
        with pytest.raises(KeyboardInterrupt, match="received SIGTERM") as caught, state.holding():
            state.handle(signal.SIGTERM, None)  # held: no exception here
            raise ValueError("the teardown failed")
        assert isinstance(caught.value.__context__, ValueError)
        assert b"received SIGTERM: clean-up is running" in os.read(read, 4096)
    finally:
        os.close(read)
        os.close(write)


WORKERS = """
import os, time
from pathlib import Path
import pytest

OUT = Path(os.environ["OUT"])

@pytest.fixture(scope="session")
def session_thing(worker_id):
    yield
    (OUT / f"tearing-down-{worker_id}").write_text("")
    end = time.monotonic() + 120
    while not (OUT / "proceed").exists():
        assert time.monotonic() < end, "proceed never came"
        time.sleep(0.05)
    (OUT / f"torn-down-{worker_id}").write_text("")

@pytest.mark.parametrize("n", [1, 2])
def test_blocks(session_thing, worker_id, n):
    (OUT / f"started-{worker_id}").write_text("")
    end = time.monotonic() + 120
    while not (OUT / "released").exists():
        assert time.monotonic() < end, "only a signal ends it"
        time.sleep(0.05)
"""
XDIST_CUTS_AFTER = 15.0  # execnet interrupts a worker 5 s into its teardown and ends it 10 s later


def test_under_xdist_the_controller_hands_the_signal_to_its_workers(tmp_path: Path) -> None:
    """SIGTERM to the controller alone: each worker gets it, tears down as long as it needs (longer
    than execnet would allow it), and the run ends interrupted."""
    pytest.importorskip("xdist", reason="pytest-xdist is not installed (the test dependency group has it)")
    argv = pytest_argv(tmp_path)
    (tmp_path / "test_blocking.py").write_text(WORKERS)
    with running(tmp_path, [*argv, "-n", "2", "test_blocking.py"]) as run:
        run.until_file("started-gw0")
        run.until_file("started-gw1")
        os.kill(run.proc.pid, signal.SIGTERM)
        run.until_said("received SIGTERM: stopping the workers (gw0, gw1)")
        run.until_file("tearing-down-gw0")
        run.until_file("tearing-down-gw1")
        # an observation window, not a synchronisation: nothing may cut the teardowns short in it
        with pytest.raises(WaitTimeout):
            wait_for(lambda: run.proc.poll() is not None, "the run to end before its teardowns",
                     timeout=XDIST_CUTS_AFTER + 5, interval=0.2)  # fmt: skip
        (tmp_path / "proceed").write_text("")
        code = run.exit_code()
        output = run.output()
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert (tmp_path / "torn-down-gw0").exists() and (tmp_path / "torn-down-gw1").exists(), output
    stderr = run.stderr.read_text().splitlines()
    assert {
        LINE.replace("netpolcheck:", f"netpolcheck [{w}]:").format("SIGTERM") for w in ("gw0", "gw1")
    } <= set(stderr), output


# The suite itself on its own embedded cluster: SIGTERM to pytest (not to its process group) removes it.

SIGTERM_CIDR = "10.120.0.0/16"  # this test's own pod range (inside 10.112.0.0/12, used by no other test)
CLUSTER_WAIT = 600.0  # seconds for the suite to start its embedded cluster on a loaded machine
CLEANUP_WAIT = 300.0  # seconds for the interrupted suite to remove it and exit


def _suite_state(state_dir: Path, record: dict[str, object]) -> str:
    """What the suite has made so far: `starting` (cluster.json written, `hollow up` still running or
    Weave still being installed), `case` (a case's namespace exists) or `` (nothing yet)."""
    try:
        record.update(json.loads((state_dir / "cluster.json").read_text()))
    except (OSError, ValueError):
        return ""
    if record.get("status") != "running":
        return "starting"
    api = KubeApi.from_kubeconfig(state_dir / "kubeconfig")
    try:
        return "case" if namespaces.run_namespaces(api) else "starting"
    finally:
        api.close()


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.slow
@pytest.mark.parametrize("when", ["starting", "case"])
def test_sigterm_to_the_suite_removes_its_embedded_cluster(tmp_path: Path, when: str) -> None:
    """SIGTERM while the cluster is being made (`hollow up` or the Weave install runs) or while a case
    runs (its namespace exists): the suite exits 2 and nothing of its cluster is left on the machine."""
    basetemp = tmp_path / "bt"
    state_dir = basetemp / "cluster0" / "hollow"  # the `cluster` fixture's work dir (fixtures/cluster.py)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "suites/test_ingress.py",
            "-k", "no-policy-allows-everything", "--cluster", "hollow", "--nodes", "2",
            f"--basetemp={basetemp}", f"--report-json={tmp_path / 'report.json'}"]  # fmt: skip
    env = {"NETPOLCHECK_HOLLOW_POD_CIDR": SIGTERM_CIDR}
    record: dict[str, object] = {}
    seen = [""]
    with (tmp_path / "stdout").open("w") as out, (tmp_path / "stderr").open("w") as err:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=err, env={**os.environ, **env},
                                start_new_session=True, preexec_fn=reset_to_defaults)  # fmt: skip
    try:

        def reached() -> bool:
            assert proc.poll() is None, f"the suite exited ({proc.returncode}) before it got to {when!r}"
            seen[0] = _suite_state(state_dir, record)
            return seen[0] == when

        wait_for(reached, f"the suite (cluster in {state_dir}) to get to {when!r}", timeout=CLUSTER_WAIT,
                 interval=0.1, retry_errors=False,
                 describe_last=lambda: f"state {seen[0]!r}; cluster.json {record or 'absent'}; "
                 f"stderr {(tmp_path / 'stderr').read_text()[-800:]!r}")  # fmt: skip
        os.kill(proc.pid, signal.SIGTERM)  # pytest alone, as `timeout` or a job runner does
        try:
            code = proc.wait(CLEANUP_WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the suite still runs {CLEANUP_WAIT:.0f} s after SIGTERM") from None
        output = (tmp_path / "stdout").read_text() + (tmp_path / "stderr").read_text()
        assert code == pytest.ExitCode.INTERRUPTED, output[-3000:]
        assert LINE.format("SIGTERM") in output, output[-3000:]
        assert leftovers(str(record["prefix"]), SIGTERM_CIDR) == [], output[-3000:]
        assert not (state_dir / "cluster.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        hollow.stop(state_dir)  # `hollow down --state-dir`: nothing to do when the suite cleaned up
