"""Thin helpers over iproute2 and setns(2): run commands, enter a network namespace from one thread.

setns(2) changes only the calling thread, so `in_netns` runs a function on a short-lived helper thread;
a socket or /proc/sys file opened there keeps the namespace it was created in.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
NETNS_DIR = Path("/run/netns")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class CommandError(RuntimeError):
    """A host command we ran failed; the message carries the command and its stderr."""


def run(argv: Sequence[str], *, input_text: str | None = None, check: bool = True) -> str:
    """Run a command, return stdout; raise CommandError with its stderr when it fails."""
    proc = subprocess.run(list(argv), input=input_text, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise CommandError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    """`ip [-n NETNS] ARGS`."""
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    return run([*prefix, *args], check=check)


def ip_batch(commands: Sequence[str], netns: str | None = None) -> None:
    """Several `ip` commands in one process (`ip -batch -`); much cheaper than one process each."""
    if not commands:
        return
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    run([*prefix, "-batch", "-"], input_text="\n".join(commands) + "\n")


def setns(fd: int, nstype: int) -> None:
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    res = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if res != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def umount2(target: str, flags: int) -> None:
    if _libc.umount2(target.encode(), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run `fn` on a helper thread that has entered network namespace `netns` (by name)."""
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
            try:
                setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name=f"in-netns-{netns}")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def write_sysctl(netns: str, settings: dict[str, str]) -> None:
    """Write /proc/sys keys (dotted names) inside `netns`; /proc/sys/net follows the opener's namespace."""

    def write_all() -> None:
        for key, value in settings.items():
            Path("/proc/sys", *key.split(".")).write_text(value)

    in_netns(netns, write_all)


def listening_socket(netns: str, host: str, port: int) -> socket.socket:
    """A TCP socket bound and listening inside `netns` (it keeps that namespace once made)."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        return sock

    return in_netns(netns, make)


def list_netns() -> list[str]:
    """Names of the named network namespaces (entries of /run/netns)."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []


def netns_pids(netns: str) -> list[int]:
    """PIDs of processes in `netns` (`ip netns pids`); empty when it does not exist."""
    out = run(["ip", "netns", "pids", netns], check=False)
    return [int(x) for x in out.split() if x.isdigit()]
