"""The relay (netpolcheck/probe/relay.py), run the way the engine runs it: its code as `python -I -S -c`.

Against a stand-in agent on a real Unix socket (no privilege needed): the answer is copied unread, a
missing agent exits 4 naming the socket, a late answer exits 2 after the wait it was given, bad usage
exits 2 in one line, and nothing of this package, `json`, `re`, `enum` or `socket` is imported. Against
the real resident agent in a network namespace (root): the same verdicts as `ask`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from netpolcheck.kube.execing import relay_code
from netpolcheck.probe.relay import PATH_ENV, socket_path
from tests.probe.netlab import Lab
from tests.probe.test_probe_agent import EXPECTED, ask, served_pair, targets_to, verdicts


def run_relay(journal: Path, request: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, PATH_ENV: str(journal)}
    command = [sys.executable, "-I", "-S", "-c", relay_code(), *args]
    return subprocess.run(command, input=request, capture_output=True, text=True, env=env, timeout=60)


class StandIn:
    """An agent stand-in at the socket `journal` names: records each request, answers `answer` (or
    nothing until released)."""

    def __init__(self, journal: Path, answer: bytes | None) -> None:
        path = Path(socket_path(str(journal)))
        path.parent.mkdir(mode=0o700)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        self.answer, self.requests, self.release = answer, list[bytes](), threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
                self.requests.append(b"".join(chunks))
                if self.answer is None:
                    self.release.wait(30)
                else:
                    conn.sendall(self.answer)

    def close(self) -> None:
        self.release.set()
        self.server.close()
        self.thread.join(10)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "journal-a.jsonl"


@pytest.fixture
def stand_in(journal: Path, request: pytest.FixtureRequest) -> Iterator[StandIn]:
    agent = StandIn(journal, request.param)
    try:
        yield agent
    finally:
        agent.close()


ANSWER = b'{"agent": "resident", "results": [{"id": "0", "verdict": "allowed"}], "failure": "partial"}'


@pytest.mark.parametrize("stand_in", [ANSWER], indirect=True)
def test_the_request_goes_to_the_agent_and_its_answer_comes_back_unread(
    journal: Path, stand_in: StandIn
) -> None:
    request = json.dumps({"op": "probe", "targets": [{"id": "0", "ip": "10.0.0.1", "port": 80}]})
    done = run_relay(journal, request, "5")
    assert (done.returncode, done.stdout.encode(), done.stderr) == (0, ANSWER, "")
    assert stand_in.requests == [request.encode()]


@pytest.mark.parametrize("stand_in", [None], indirect=True)
def test_an_answer_later_than_the_wait_given_fails_in_one_line(journal: Path, stand_in: StandIn) -> None:
    done = run_relay(journal, "{}", "0.5")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "netpolcheck relay: error: the agent's answer did not arrive within 0.5 s\n"


def test_without_an_agent_it_exits_4_naming_the_socket(journal: Path) -> None:
    done = run_relay(journal, "{}", "5")
    assert done.returncode == 4 and done.stdout == ""
    assert done.stderr.startswith(
        f"netpolcheck relay: error: no resident agent at {socket_path(str(journal))} ("
    )
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("args", [(), ("soon",), ("0",), ("-1",)])
def test_bad_usage_is_one_line_and_exit_2(journal: Path, args: tuple[str, ...]) -> None:
    done = run_relay(journal, "{}", *args)
    assert done.returncode == 2 and done.stdout == ""
    assert (
        done.stderr
        == "netpolcheck relay: error: usage: relay SECONDS (the longest wait for the answer, up to 86400)\n"
    )


def test_it_imports_nothing_of_the_package_nor_the_heavy_standard_modules(journal: Path) -> None:
    env = {**os.environ, PATH_ENV: str(journal)}
    command = [sys.executable, "-I", "-S", "-X", "importtime", "-c", relay_code(), "5"]
    done = subprocess.run(command, input="{}", capture_output=True, text=True, env=env, timeout=60)
    imported = {
        line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
    }
    assert done.returncode == 4  # no agent: the import lines above are all it loaded
    assert "_socket" in imported
    heavy = {"json", "re", "enum", "socket", "os", "hashlib"}
    assert not heavy & imported
    assert not any(name.startswith("netpolcheck") for name in imported)


def test_the_relay_finds_the_socket_where_the_agent_made_it() -> None:
    """The agent binds at ask.socket_path, the relay connects at relay.socket_path: one function."""
    from netpolcheck.probe import ask

    assert ask.socket_path is socket_path
    assert socket_path("a/../b//journal.jsonl") == socket_path(os.path.abspath("b/journal.jsonl"))


@pytest.mark.netns
def test_the_real_agent_answers_the_relay_as_it_answers_ask(lab: Lab, tmp_path: Path) -> None:
    client, server, journal = served_pair(lab, tmp_path)
    lab.iptables(server, "-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "DROP")
    targets = targets_to(server)
    relay = ["env", f"{PATH_ENV}={journal}", sys.executable, "-I", "-S", "-c", relay_code(), "30"]
    request = {"op": "probe", "targets": targets, "timeout": 0.3, "retries": 7}
    answer = json.loads(lab.run(client, *relay, input_text=json.dumps(request)).stdout)
    assert answer["agent"] == "resident" and verdicts(answer["results"]) == EXPECTED
    asked = ask(lab, client, journal, targets, "--timeout", "0.3")
    assert verdicts(asked["results"]) == verdicts(answer["results"])
    refused = lab.run(client, *relay, input_text=json.dumps({"op": "nonsense"}))
    assert refused.returncode == 0 and "op must be one of" in json.loads(refused.stdout)["error"]
