"""`ask`: hand a request to the resident agent of this pod (agent.py) and print its answer.

Light on purpose: this runs once per `kubectl exec`, so it imports only the standard library's small
modules (no scapy, not the probe engine: `python -X importtime -m netpolcheck.probe ask` shows it).
When no agent listens (an old pod, a crashed serve), a `probe` request is run here, one-shot, and the
answer says so (`"agent": "one-shot"` and `"fallback"`: why); any other request exits 4.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from netpolcheck.probe.errors import BadInput, shown_path
from netpolcheck.probe.inputs import load_json
from netpolcheck.probe.relay import MAX_ANSWER_BYTES, socket_path

__all__ = ["NoAgent", "ask", "read_object", "socket_path"]


class NoAgent(Exception):
    """Nothing answers on the agent socket (the reason is the message)."""


def ask(path: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Send `request` to the agent at `path` and return its answer (an object with `error` on refusal)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(path)
        except OSError as exc:  # missing, refused (a crashed serve), or not ours to reach
            raise NoAgent(f"no resident agent at {shown_path(path)} ({exc.strerror or exc})") from None
        conn.sendall(json.dumps(request).encode())
        conn.shutdown(socket.SHUT_WR)
        return read_object(conn, MAX_ANSWER_BYTES, timeout, "the agent's answer")


def read_object(conn: socket.socket, cap: int, seconds: float, what: str) -> dict[str, Any]:
    """One JSON object read from `conn` until its end: at most `cap` bytes, within `seconds`, UTF-8;
    anything else is BadInput naming `what` (both ends of the agent socket read this way)."""
    conn.settimeout(seconds)
    chunks, size = [], 0
    try:
        while chunk := conn.recv(1 << 16):
            size += len(chunk)
            if size > cap:
                raise BadInput(f"{what} is larger than {cap // 2**20} MiB")
            chunks.append(chunk)
    except TimeoutError:
        raise BadInput(f"{what} did not arrive within {seconds:g} s") from None
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{what} is not UTF-8 text (byte {exc.start})") from None
    document = load_json(text, what)
    if not isinstance(document, dict):
        raise BadInput(f"{what} must be a JSON object, got {type(document).__name__}")
    return document
