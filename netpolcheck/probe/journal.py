"""The serve journal: one JSON object per line for everything that reached the listeners.

Each record has `time` (Unix seconds), `event` (listening, syn, accept, data, close, datagram), `proto`,
`port`, `peer` ("ip:port") and `bytes`. `syn` records come from a raw socket (NET_RAW) and show that a
connection attempt reached this pod even when the handshake never completed; `datagram` records show
that a UDP probe arrived (the echo was sent back), so "never reached the pod" and "the reply never got
back" can be told apart.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

DEFAULT_DIRECTORY = "/tmp/netpolcheck-probe"
PATH_ENV = "NETPOLCHECK_PROBE_JOURNAL"


def default_path() -> str:
    """$NETPOLCHECK_PROBE_JOURNAL, else one file per pod (HOSTNAME is the pod name) under /tmp, so serves
    that share a filesystem (the embedded cluster, several netns on one machine) never share a journal."""
    if PATH_ENV in os.environ:
        return os.environ[PATH_ENV]
    host = os.environ.get("HOSTNAME") or socket.gethostname()
    return f"{DEFAULT_DIRECTORY}/journal-{host.replace('/', '_')}.jsonl"


class JournalWriter:
    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.stream: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as serve

    def record(self, event: str, **fields: Any) -> None:
        line = {"time": round(time.time(), 6), "event": event, **fields}
        self.stream.write(json.dumps(line, sort_keys=True) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.close()


def read_journal(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            if line.strip():
                yield json.loads(line)


def matches(
    record: dict[str, Any], peer_ip: str | None, proto: str | None, port: int | None, since: float | None
) -> bool:
    if peer_ip is not None and str(record.get("peer", "")).rsplit(":", 1)[0] != peer_ip:
        return False
    if proto is not None and record.get("proto") != proto.lower():
        return False
    if port is not None and record.get("port") != port:
        return False
    return since is None or float(record.get("time", 0)) >= since
