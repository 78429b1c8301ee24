"""Server side of RFC 6455 websockets: the handshake answer and frame reading/writing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import struct
import threading
from typing import BinaryIO

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


class WebSocketClosed(Exception):
    """The peer closed the connection (or sent a close frame)."""


def accept_key(client_key: str) -> str:
    return base64.b64encode(hashlib.sha1(client_key.encode() + _GUID).digest()).decode()


class WebSocket:
    """Frames over an already upgraded connection (`rfile`/`wfile` of the HTTP handler)."""

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO) -> None:
        self._rfile = rfile
        self._wfile = wfile
        self._send_lock = threading.Lock()
        self.closed = False

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self._rfile.read(n - len(data))
            if not chunk:
                raise WebSocketClosed("connection closed by peer")
            data += chunk
        return data

    def recv(self) -> tuple[int, bytes]:
        """Next complete message as (opcode, payload); answers pings itself; raises WebSocketClosed."""
        message_op, parts = -1, []
        while True:
            head = self._read_exact(2)
            fin, opcode = head[0] & 0x80, head[0] & 0x0F
            masked, length = head[1] & 0x80, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read_exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read_exact(8))[0]
            mask = self._read_exact(4) if masked else b""
            payload = self._read_exact(length)
            if masked:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == OP_PING:
                self.send(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                raise WebSocketClosed("close frame received")
            if opcode != OP_CONTINUATION:
                message_op = opcode
            parts.append(payload)
            if fin:
                return message_op, b"".join(parts)

    def send(self, opcode: int, payload: bytes) -> None:
        """Send one unmasked frame (servers never mask)."""
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, length)
        elif length < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, length)
        with self._send_lock:
            if self.closed:
                raise WebSocketClosed("already closed")
            self._wfile.write(head + payload)
            self._wfile.flush()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame once; later sends raise WebSocketClosed."""
        with contextlib.suppress(OSError, WebSocketClosed):
            self.send(OP_CLOSE, struct.pack("!H", code) + reason.encode())
        self.closed = True
