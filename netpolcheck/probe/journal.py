"""The serve journal: one JSON object per line for everything that reached the listeners.

Each record has `time` (Unix seconds), `event` (listening, syn, accept, data, close, datagram), `proto`,
`port`, `peer` ("ip:port") and `bytes`. `syn` records come from a raw socket (NET_RAW) and show that a
connection attempt reached this pod even when the handshake never completed; `datagram` records show
that a UDP probe arrived (the echo was sent back), so "never reached the pod" and "the reply never got
back" can be told apart.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from netpolcheck.probe.errors import BadInput, shown_path
from netpolcheck.probe.inputs import load_json
from netpolcheck.probe.relay import DEFAULT_DIRECTORY, default_journal_path


def default_path() -> str:
    """The journal of this pod's serve (relay.py defines it: the relay finds the agent from it)."""
    return default_journal_path()


class JournalWriter:
    """Appends records to the journal. `serve` runs as root, often in a shared /tmp, so the journal is
    opened without following a link (O_NOFOLLOW: a link planted at its path is refused, never written
    through) and created 0600; the default directory is created 0700 and must be a private directory.
    """

    def __init__(self, path: str) -> None:
        if os.path.dirname(os.path.abspath(path)) == DEFAULT_DIRECTORY:
            private_directory(DEFAULT_DIRECTORY)
        else:
            Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        is_link = BadInput(f"the journal {shown_path(path)} is a symbolic link; refusing to write through it")
        if os.path.islink(path):
            raise is_link
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            descriptor = os.open(path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a link planted between the check and the open
                raise is_link from None
            raise
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise BadInput(f"the journal {shown_path(path)} is not a regular file")
        self.stream: TextIO = os.fdopen(descriptor, "a", encoding="utf-8")

    def record(self, event: str, **fields: Any) -> None:
        line = {"time": round(time.time(), 6), "event": event, **fields}
        self.stream.write(json.dumps(line, sort_keys=True) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()


def private_directory(path: str) -> None:
    """Create `path` 0700, or accept it only if it already is a real directory of ours that nobody else
    can write to (another user could have created it first in a shared /tmp)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise BadInput(
            f"{shown_path(path)} is not a private directory of this user (a link, another owner, or writable "
            "by others); refusing to keep the journal there"
        )


def read_journal(path: str) -> Iterator[dict[str, Any]]:
    """The journal's records; a line that is not a JSON object (a damaged journal) is BadInput."""
    with open(path, encoding="utf-8", errors="replace") as stream:
        for number, line in enumerate(stream, 1):
            if line.strip():
                record = load_json(line, f"journal {shown_path(path)} line {number}")
                if not isinstance(record, dict):
                    raise BadInput(f"journal {shown_path(path)} line {number}: not a JSON object")
                yield record


def matches(
    record: dict[str, Any], peer_ip: str | None, proto: str | None, port: int | None, since: float | None
) -> bool:
    if peer_ip is not None and str(record.get("peer", "")).rsplit(":", 1)[0] != peer_ip:
        return False
    if proto is not None and record.get("proto") != proto.lower():
        return False
    if port is not None and record.get("port") != port:
        return False
    when = record.get("time", 0)
    return since is None or (isinstance(when, (int, float)) and when >= since)
