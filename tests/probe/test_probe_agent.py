"""The resident agent: `serve` answers `ask` on a private Unix socket (real sockets, real processes).

Probe requests give the verdicts a one-shot `probe` gives; a staggered watch sees a change happen (the
attempt before the change showed the old verdict, the first after it the new one); a target with an
interval of its own is attempted that often while the others keep the request's; a settle asked to
confirm probes every target once more as `probe` does, in the same request; without an agent,
`ask` says so (one-shot fallback recorded in the answer, or exit 4); bad requests are refused in one
line and the agent keeps serving.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from netpolcheck.probe.ask import socket_path
from tests.probe.netlab import AGENT, Lab, Pod

pytestmark = pytest.mark.netns

PACKAGE = Path(__file__).resolve().parents[2] / "netpolcheck"


def ask(lab: Lab, pod: Pod, journal: Path, request: list[dict[str, Any]], *options: str) -> dict[str, Any]:
    done = lab.run(pod, *AGENT, "ask", "--journal", str(journal), *options, input_text=json.dumps(request))
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def targets_to(server: Pod) -> list[dict[str, Any]]:
    return [
        {"id": "tcp-80", "ip": server.ip, "port": 80, "protocol": "TCP"},
        {"id": "tcp-82", "ip": server.ip, "port": 82, "protocol": "TCP"},
        {"id": "udp-81", "ip": server.ip, "port": 81, "protocol": "UDP"},
        {"id": "tcp-81", "ip": server.ip, "port": 81, "protocol": "TCP"},
    ]


# what targets_to(server) shows with TCP 81 dropped at the server
EXPECTED = {"tcp-80": "allowed", "tcp-82": "refused", "udp-81": "allowed", "tcp-81": "dropped"}


def served_pair(lab: Lab, tmp_path: Path) -> tuple[Pod, Pod, Path]:
    """A client and a server pod, both running serve, and the client's journal (names its agent)."""
    client, server = lab.add_pod("client"), lab.add_pod("server")
    journal = tmp_path / "client.jsonl"
    lab.serve(client, journal)
    lab.serve(server, tmp_path / "server.jsonl")
    return client, server, journal


def verdicts(results: list[dict[str, Any]]) -> dict[str, str]:
    return {str(r["id"]): str(r["verdict"]) for r in results}


def test_the_resident_agent_answers_as_a_one_shot_probe_does(lab: Lab, tmp_path: Path) -> None:
    client, server, journal = served_pair(lab, tmp_path)
    lab.iptables(server, "-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "DROP")
    targets, expected = targets_to(server), EXPECTED

    answer = ask(lab, client, journal, targets, "--timeout", "0.3")
    assert answer["agent"] == "resident" and "fallback" not in answer
    assert verdicts(answer["results"]) == expected
    assert answer["received_at"] <= answer["answered_at"]
    one_shot = json.loads(lab.probe(client, json.dumps(targets), "--timeout", "0.3").stdout)
    assert verdicts(one_shot) == expected
    assert {k for r in answer["results"] for k in r} >= {k for r in one_shot for k in r}

    # the socket is this user's alone: 0600 in a 0700 directory, named in the journal's first record
    path = Path(socket_path(str(journal)))
    assert stat.S_ISSOCK(path.lstat().st_mode) and stat.S_IMODE(path.lstat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.lstat().st_mode) == 0o700
    listening = json.loads(journal.read_text().splitlines()[0])
    assert (listening["agent"], listening["agent_unavailable"]) == (str(path), None)


def test_a_watch_sees_the_change_between_two_attempts(lab: Lab, tmp_path: Path) -> None:
    client, server, journal = served_pair(lab, tmp_path)
    target = [{"id": "0", "ip": server.ip, "port": 80, "protocol": "TCP"}]
    started = ask(lab, client, journal, target, "--op", "watch", "--timeout", "0.05", "--interval", "0.01")
    assert started["agent"] == "resident" and isinstance(started["watch"], str)

    lab.iptables(server, "-I", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP")
    rule_in_force = time.time()  # the agent runs on this machine's clock
    wanted = [{**target[0], "want": ["dropped"]}]
    options = ("--op", "settle", "--watch", started["watch"], "--timeout", "0.05", "--deadline", "30")
    (result,) = ask(lab, client, journal, wanted, *options)["results"]

    assert (result["settled"], result["verdict"]) == (True, "dropped")
    # the watch began before the change: the attempt before the first silent one was answered, and it
    # went out before the rule was in force (nothing sent after it could be answered)
    assert result["previous_at"] is not None and result["previous_at"] <= rule_in_force, result
    assert result["first_at"] <= result["previous_at"] < result["settled_at"]
    assert result["attempts"] >= 4  # at least one answered attempt and three silent ones


def test_a_watch_attempts_each_target_at_its_own_interval(lab: Lab, tmp_path: Path) -> None:
    client, server, journal = served_pair(lab, tmp_path)
    slow, fast = 0.1, 0.01
    targets = [
        {"id": "slow", "ip": server.ip, "port": 80, "protocol": "TCP", "interval": slow},
        {"id": "fast", "ip": server.ip, "port": 81, "protocol": "TCP"},  # the request's interval
    ]
    started = ask(
        lab, client, journal, targets, "--op", "watch", "--timeout", "0.05", "--interval", str(fast)
    )
    # both stay open: asked to wait for a drop, neither settles, and the watch runs to the deadline
    wanted = [{**t, "want": ["dropped"]} for t in targets]
    options = ("--op", "settle", "--watch", started["watch"], "--timeout", "0.05", "--deadline", "1.5")
    answer = ask(lab, client, journal, wanted, *options)
    results = {r["id"]: r for r in answer["results"]}
    assert answer["continued"] == 2 and not any(r["settled"] for r in results.values())
    assert {r["verdict"] for r in results.values()} == {"allowed"}
    # the k-th attempt toward a target goes out k intervals after the start, never sooner: the slow
    # target got at most one attempt per `slow` seconds of the watch, however the machine was loaded
    lasted = answer["answered_at"] - results["slow"]["first_at"]
    assert 2 <= results["slow"]["attempts"] <= lasted / slow + 1, (results, lasted)
    assert results["fast"]["attempts"] >= 3 * results["slow"]["attempts"], results


def test_a_settle_asked_to_confirm_probes_every_target_once_more(lab: Lab, tmp_path: Path) -> None:
    client, server, journal = served_pair(lab, tmp_path)
    lab.iptables(server, "-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "DROP")
    targets, expected = targets_to(server), EXPECTED
    wanted = [{**t, "want": [expected[t["id"]]]} for t in targets]
    settle = ("--op", "settle", "--timeout", "0.05", "--deadline", "30")

    answer = ask(lab, client, journal, wanted, *settle, "--confirm-timeout", "0.3", "--retries", "7")
    assert all(r["settled"] for r in answer["results"]) and verdicts(answer["results"]) == expected
    assert verdicts(answer["confirm"]) == expected and answer["confirm_failure"] is None
    # the confirmation is a `probe` run: the same fields as a one-shot probe's results
    one_shot = json.loads(lab.probe(client, json.dumps(targets), "--timeout", "0.3").stdout)
    assert [r["id"] for r in answer["confirm"]] == [t["id"] for t in targets]
    assert {k for r in answer["confirm"] for k in r} >= {k for r in one_shot for k in r}

    # not asked: the answer is the settle's alone, as before the option existed
    plain = ask(lab, client, journal, wanted, *settle)
    assert verdicts(plain["results"]) == expected and "confirm" not in plain

    # a bad window is refused in one line before any watch starts
    done = lab.run(
        client,
        *AGENT,
        "ask",
        "--journal",
        str(journal),
        *settle,
        "--confirm-timeout",
        "0",
        input_text=json.dumps(wanted),
        check=False,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "out of range" in done.stderr


def test_without_an_agent_ask_falls_back_to_one_shot_and_says_so(lab: Lab, tmp_path: Path) -> None:
    client, server = lab.add_pod("client"), lab.add_pod("server")
    lab.serve(server, tmp_path / "server.jsonl")
    journal = tmp_path / "no-serve-here.jsonl"  # no serve owns it: no socket

    answer = ask(lab, client, journal, targets_to(server)[:2], "--timeout", "0.3")
    assert answer["agent"] == "one-shot"
    assert "no resident agent at" in answer["fallback"]
    assert verdicts(answer["results"]) == {"tcp-80": "allowed", "tcp-82": "refused"}

    settle = [{**targets_to(server)[0], "want": ["allowed"]}]
    done = lab.run(
        client,
        *AGENT,
        "ask",
        "--op",
        "settle",
        "--journal",
        str(journal),
        input_text=json.dumps(settle),
        check=False,
    )
    assert done.returncode == 4 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no resident agent at" in done.stderr


def test_bad_requests_are_refused_in_one_line_and_the_agent_keeps_serving(lab: Lab, tmp_path: Path) -> None:
    client, server, journal = served_pair(lab, tmp_path)
    bad: list[tuple[list[dict[str, Any]], tuple[str, ...], str]] = [
        ([{"id": "x", "ip": "255.255.255.255", "port": 80, "protocol": "TCP"}], (), "broadcast address"),
        ([{"id": "x", "ip": server.ip, "port": 0, "protocol": "TCP"}], (), "out of range 1-65535"),
        ([{"id": "x", "ip": server.ip, "port": 80, "protocol": "ICMP"}], (), "unknown protocol"),
        ([{"id": "x", "ip": server.ip, "port": 80, "protocol": "TCP"}], ("--op", "settle"), "want must be"),
        (
            [{"id": "x", "ip": server.ip, "port": 80, "protocol": "TCP", "want": ["gone"]}],
            ("--op", "settle"),
            "want must be",
        ),
        (
            [{"id": "x", "ip": server.ip, "port": 80, "protocol": "TCP", "interval": 0}],
            ("--op", "watch"),
            "target 0: interval must be a number",
        ),
        (
            [
                {
                    "id": "x",
                    "ip": server.ip,
                    "port": 80,
                    "protocol": "TCP",
                    "want": ["allowed"],
                    "interval": "x",
                }
            ],
            ("--op", "settle"),
            "target 0: interval must be a number",
        ),
    ]
    for request, options, fragment in bad:
        done = lab.run(
            client,
            *AGENT,
            "ask",
            "--journal",
            str(journal),
            *options,
            input_text=json.dumps(request),
            check=False,
        )
        assert done.returncode == 2, (request, done.stderr)
        assert done.stderr.count("\n") == 1 and "the resident agent refused the request" in done.stderr
        assert fragment in done.stderr and "Traceback" not in done.stderr
    not_json = lab.run(client, *AGENT, "ask", "--journal", str(journal), input_text="[{", check=False)
    assert not_json.returncode == 2 and "targets: not valid JSON" in not_json.stderr

    answer = ask(lab, client, journal, targets_to(server)[:1], "--timeout", "0.3")
    assert verdicts(answer["results"]) == {"tcp-80": "allowed"}


def test_the_agent_refuses_what_exceeds_its_bounds(lab: Lab, tmp_path: Path) -> None:
    """Too many connections at once are told "busy" at once; a request that never ends is cut off."""
    import socket

    from netpolcheck.probe.agent import MAX_CONCURRENT

    client = lab.add_pod("client")
    journal = tmp_path / "client.jsonl"
    lab.serve(client, journal)
    path = socket_path(str(journal))
    held = []
    try:
        for _ in range(MAX_CONCURRENT):  # each holds a slot: the agent waits for its request
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(path)
            held.append(conn)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as extra:
            extra.settimeout(30)
            extra.connect(path)
            answer = json.loads(extra.recv(65536))
        assert answer == {"error": f"busy: {MAX_CONCURRENT} requests already running"}
    finally:
        for conn in held:
            conn.close()
    # the slots come back: a real request is answered again
    done = lab.run(
        client, *AGENT, "ask", "--journal", str(journal), "--op", "stop", "--watch", "none", check=False
    )
    assert json.loads(done.stdout)["stopped"] is False


def readable_copy_of_the_package(into: Path) -> Path:
    """A copy of netpolcheck that any user can import: the checkout may sit in a directory only root can
    enter (a clone under `mktemp -d`), and this test is about the agent's directory, not the checkout's."""
    lib = into / "lib"
    shutil.copytree(PACKAGE, lib / "netpolcheck", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [lib, *lib.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return lib


def test_only_this_user_reaches_the_agent(lab: Lab) -> None:
    client = lab.add_pod("client")
    # the journal's directory and the client are open to everyone; only the agent's directory is not
    open_dir = Path(tempfile.mkdtemp(prefix="netpolcheck-open-"))
    try:
        open_dir.chmod(0o755)
        lib = readable_copy_of_the_package(open_dir)
        journal = open_dir / "client.jsonl"
        lab.serve(client, journal)
        as_nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
        stop = ["ask", "--op", "stop", "--journal", str(journal), "--watch", "x"]
        python = os.path.realpath(sys.executable)  # a venv's bin/ may be inside the closed checkout too
        nobody = subprocess.run(
            [*as_nobody, python, "-S", "-m", "netpolcheck.probe", *stop],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=open_dir,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(lib), "PYTHONDONTWRITEBYTECODE": "1"},
        )
        assert nobody.returncode == 4, nobody.stderr
        assert "no resident agent" in nobody.stderr and "Permission denied" in nobody.stderr
        assert stat.S_IMODE(Path(socket_path(str(journal))).parent.stat().st_mode) & 0o077 == 0
        # the owner still reaches it
        owner = lab.run(client, *AGENT, *stop, check=False)
        assert json.loads(owner.stdout)["agent"] == "resident", owner.stdout + owner.stderr
    finally:
        shutil.rmtree(open_dir, ignore_errors=True)
