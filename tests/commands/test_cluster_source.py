"""`--kubeconfig` as the source of `expect` and `upgrade-impact`, where it fails: bad kubeconfigs, a
server nobody listens on, a real HTTP server that refuses, and the options used without a cluster.
Each is one line on stderr, exit 2, nothing on stdout. (What a reachable cluster gives: the embedded
cluster's test, test_cluster_embedded.py.)"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.commands.runcli import SEED, netpolcheck

COMMANDS = [["expect"], ["upgrade-impact", "--from", "weave-2.0.5", "--to", "weave-2.1.3"]]


def kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "here", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "here",
            }
        )
    )
    return path


def one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("netpolcheck: error: "), lines
    return lines[0]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released: connecting is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Refusing(BaseHTTPRequestHandler):
    """Answers every request as an API server answers a token it does not accept."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": "forbidden: no",
                "code": 403,
            }
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_nobody_listening_is_one_line(tmp_path: Path, command: list[str]) -> None:
    server = f"https://127.0.0.1:{closed_port()}"
    line = one_line_exit_2(netpolcheck(*command, "--kubeconfig", str(kubeconfig(tmp_path, server))))
    assert line == f"netpolcheck: error: cannot reach the cluster at {server}: Connection refused"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_refusing_server_is_one_line_with_its_status(
    tmp_path: Path, command: list[str], refusing_server: str
) -> None:
    line = one_line_exit_2(netpolcheck(*command, "--kubeconfig", str(kubeconfig(tmp_path, refusing_server))))
    assert line == (
        f"netpolcheck: error: the cluster at {refusing_server} refused asking for its version: "
        "HTTP 403 forbidden: no"
    )


@pytest.mark.parametrize(
    ("content", "context", "says"),
    [
        (None, None, "kubeconfig {path} does not exist"),
        ("clusters: [\n", None, "kubeconfig {path} is not usable: while parsing a flow node"),
        ("- 1\n- 2\n", None, "kubeconfig {path} is not usable: "),
        ("{server}", "elsewhere", "kubeconfig {path} (context 'elsewhere') is not usable: "),
    ],
    ids=["missing", "malformed-yaml", "not-a-mapping", "unknown-context"],
)
def test_a_bad_kubeconfig_is_one_line(
    tmp_path: Path, content: str | None, context: str | None, says: str
) -> None:
    path = tmp_path / "kubeconfig"
    if content == "{server}":
        kubeconfig(tmp_path, f"https://127.0.0.1:{closed_port()}")
    elif content is not None:
        path.write_text(content)
    args = ["expect", "--kubeconfig", str(path), *(["--context", context] if context else [])]
    line = one_line_exit_2(netpolcheck(*args))
    assert line.startswith("netpolcheck: error: " + says.format(path=path)), line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["expect"], "expect: the following arguments are required: STATE.json (or --kubeconfig)"),
        (
            ["upgrade-impact", "--from", "weave-2.0.5", "--to", "weave-2.1.3"],
            "upgrade-impact: the following arguments are required: STATE (or --kubeconfig)",
        ),
        (["expect", "{seed}", "--namespace", "x"], "--namespace reads a live cluster; give --kubeconfig too"),
        (["expect", "{seed}", "--context", "c"], "--context reads a live cluster; give --kubeconfig too"),
        (["expect", "{seed}", "--kubeconfig", "k"], "{seed}: give STATE.json or --kubeconfig, not both"),
    ],
)
def test_sources_used_wrongly_are_one_line(args: list[str], says: str) -> None:
    seed = str(SEED / "1-deny-all.json")
    line = one_line_exit_2(netpolcheck(*(seed if a == "{seed}" else a for a in args)))
    assert line == "netpolcheck: error: " + says.format(seed=seed)
