"""Reading and writing one TLS connection from several threads.

OpenSSL's connection object must not be read and written at the same time (an exec session reads
stdin frames on one thread while others write output: concurrent calls corrupted records). Every
call into the TLS socket here holds the connection's lock, and a read never blocks inside it: it
tries without blocking and, when nothing is there yet, waits for the socket outside the lock.
The reader's buffer is visible (`buffered`), so the server knows whether the next request has
already arrived before handing the connection back to the reactor.
"""

from __future__ import annotations

import select
import ssl
import threading
import time
from collections.abc import Callable


class SocketReader:
    """Buffered reads (`readline`, `read`) for BaseHTTPRequestHandler and the websocket code."""

    def __init__(
        self, sock: ssl.SSLSocket, timeout: float, on_wait: Callable[[], None] | None = None
    ) -> None:
        self.sock = sock
        self.timeout = timeout
        self.on_wait = on_wait  # called before waiting for a slow client (the server frees a worker slot)
        self.lock = threading.Lock()
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _try_recv(self) -> bytes | None:
        """Whatever TLS has now (b"" at EOF), None if nothing yet. Lock held by the caller."""
        self.sock.setblocking(False)
        try:
            return self.sock.recv(65536)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            return None
        finally:
            self.sock.settimeout(self.timeout)

    def _fill(self) -> bool:
        """Read more into the buffer; False at EOF; TimeoutError after `timeout` without data."""
        deadline = time.monotonic() + self.timeout
        while True:
            with self.lock:
                data = self._try_recv()
            if data is not None:
                self._buf += data
                return bool(data)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out reading from the client")
            if self.on_wait is not None:
                self.on_wait()
            select.select([self.sock], [], [], remaining)

    def peer_closed(self) -> bool:
        """True if the client closed the connection (data that arrived instead is kept)."""
        with self.lock:
            try:
                data = self._try_recv()
            except OSError:
                return True
        if data is None:
            return False
        self._buf += data
        return not data

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0 and (limit < 0 or end < limit):
                return self._take(end + 1)
            if 0 <= limit <= len(self._buf):
                return self._take(limit)
            if not self._fill():
                return self._take(len(self._buf))

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._buf) < size) and self._fill():
            pass
        return self._take(len(self._buf) if size < 0 else min(size, len(self._buf)))

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def close(self) -> None:
        self._buf = bytearray()


class SocketWriter:
    """Unbuffered writes under the reader's lock (one lock per connection)."""

    def __init__(self, reader: SocketReader) -> None:
        self._reader = reader

    def write(self, data: bytes) -> int:
        with self._reader.lock:
            self._reader.sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass
