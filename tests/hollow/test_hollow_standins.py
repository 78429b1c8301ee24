"""The image stand-ins as processes on loopback: http-echo answers, busybox's wget and nc fetch it."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netpolcheck.hollow.images import busybox
from netpolcheck.hollow.waits import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def echo() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netpolcheck.hollow.images.http_echo",
            "-text",
            "hi there",
            f"-listen=127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "listening on" in proc.stdout.readline()
        yield port
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # it stops on SIGTERM, as PID 1 of a container must


@pytest.fixture
def applets(tmp_path: Path) -> Path:
    busybox.write_applets(tmp_path / "bin")
    for applet in ("wget", "nc"):
        assert (tmp_path / "bin" / applet).stat().st_mode & 0o777 == 0o700
    return tmp_path / "bin"


def run(applets: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(applets / argv[0]), *argv[1:]], input=stdin, capture_output=True, text=True, timeout=30
    )


def test_wget_and_nc_fetch_from_http_echo(echo: int, applets: Path) -> None:
    got = run(applets, "wget", "-qO-", "-T", "3", f"127.0.0.1:{echo}")
    assert (got.returncode, got.stdout) == (0, "hi there\n")
    got = run(applets, "wget", "-q", "--output-document=-", f"http://127.0.0.1:{echo}/health")
    assert got.stdout == '{"status":"ok"}\n'
    got = run(applets, "nc", "-w", "3", "127.0.0.1", str(echo), stdin="GET /x HTTP/1.0\r\n\r\n")
    assert got.returncode == 0 and got.stdout.startswith("HTTP/1.0 200") and got.stdout.endswith("hi there\n")
    assert run(applets, "nc", "-z", "127.0.0.1", str(echo)).returncode == 0


def test_wget_and_nc_fail_like_busybox(applets: Path) -> None:
    closed = free_port()
    got = run(applets, "wget", "-qO-", f"http://127.0.0.1:{closed}/")
    assert got.returncode == 1 and got.stderr.startswith("wget: can't connect to remote host"), got.stderr
    got = run(applets, "nc", "-z", "127.0.0.1", str(closed))
    assert got.returncode == 1 and got.stderr.startswith("nc: can't connect"), got.stderr
    for bad in (["wget", "-T", "soon", "x"], ["wget", "-x", "u"], ["nc", "-w", "x", "h", "1"], ["nc", "-Q"]):
        got = run(applets, *bad)
        assert got.returncode == 1 and len(got.stderr.splitlines()) == 1 and "Traceback" not in got.stderr, (
            bad
        )


def test_http_echo_refuses_bad_flags_in_one_line() -> None:
    for argv in (["-text=x", "-listen=nope"], ["-listen=:1"], ["-bogus"]):
        got = subprocess.run(
            [sys.executable, "-m", "netpolcheck.hollow.images.http_echo", *argv],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (
            got.returncode == 2 and got.stderr.startswith("http-echo: ") and len(got.stderr.splitlines()) == 1
        )


def test_nc_listens_and_prints_what_it_receives(applets: Path) -> None:
    port = free_port()
    listener = subprocess.Popen(
        [str(applets / "nc"), "-l", "-p", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:

        def sent() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"ping\n")
                return True
            except OSError:
                return False

        wait_until(sent, 10, f"nc -l to accept on port {port}")
        out, _ = listener.communicate(timeout=10)
        assert out == "ping\n"
    finally:
        listener.kill()
        listener.wait(timeout=5)
