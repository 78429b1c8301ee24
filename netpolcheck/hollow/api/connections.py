"""Connections without a thread each: a reactor for idle ones, a bounded pool for requests.

A connection holds a thread only while a request is being served. Between requests (and during the
TLS handshake) it waits in one selector thread (`Reactor`); when it becomes readable, a `WorkerPool`
thread serves the request and hands it back. The pool has at most `size` threads serving short
requests; a request that turns into a long-running stream (watch, log follow, exec) `detach`es its
thread from that count, so streams cannot starve ordinary requests (as long-running requests are
exempt from the real server's in-flight limits); so does a request whose bytes arrive slowly, so
stalled clients cannot take every slot. Idle connections are closed after
`idle_timeout`, handshakes after `handshake_timeout`, and beyond `max_connections` the longest idle
connection is closed to make room (clients reconnect; an idle keep-alive connection may always be
closed by a server).

Plain HTTP to the TLS port gets the answer Go's net/http server gives: `400` with "Client sent an
HTTP request to an HTTPS server." for a request that starts like HTTP, a plain close otherwise.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

PLAIN_HTTP_ANSWER = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
# The first five bytes Go's server takes for HTTP (net/http tlsRecordHeaderLooksLikeHTTP).
_HTTP_PREFIXES = (b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO")
_TLS_HANDSHAKE_RECORD = 0x16
POLL_SECONDS = 0.25
WORKER_IDLE_EXIT_SECONDS = 30.0


class WorkerPool:
    """Threads on demand, at most `size` of them serving tasks that have not detached."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self._name = name
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._tasks: collections.deque[Callable[[], None]] = collections.deque()
        self._counted = 0  # threads counting against `size`
        self._idle = 0
        self._closed = False
        self._threads: set[threading.Thread] = set()
        self._local = threading.local()

    def submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            self._tasks.append(task)
            if len(self._tasks) > self._idle and self._counted < self.size:
                self._spawn()
            else:
                self._ready.notify()

    def detach(self) -> None:
        """The calling pool thread now serves a long-running stream: stop counting it."""
        if getattr(self._local, "detached", True):
            return  # not a pool thread, or already detached
        with self._lock:
            self._local.detached = True
            self._counted -= 1
            if len(self._tasks) > self._idle and self._counted < self.size:
                self._spawn()

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._ready.notify_all()

    def _spawn(self) -> None:  # lock held
        self._counted += 1
        thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._threads.add(thread)
        thread.start()

    def _next_task(self) -> Callable[[], None] | None:
        """The next task, or None when this thread should end (pool closed or idle too long)."""
        with self._lock:
            self._idle += 1
            try:
                while not self._tasks:
                    if self._closed or not self._ready.wait(WORKER_IDLE_EXIT_SECONDS):
                        if self._tasks:
                            break
                        self._counted -= 1
                        return None
                return self._tasks.popleft()
            finally:
                self._idle -= 1

    def _run(self) -> None:
        self._local.detached = False
        try:
            while (task := self._next_task()) is not None:
                try:
                    task()
                except Exception:
                    log.exception("API server worker task failed")
                if self._local.detached:
                    with self._lock:
                        if self._counted >= self.size:
                            return  # enough threads serve requests: this one ends with its stream
                        self._counted += 1
                        self._local.detached = False
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())


@dataclass(eq=False)
class Connection:
    """One client connection: the raw socket until the handshake is done, then the TLS socket."""

    sock: socket.socket
    addr: Any
    tls: ssl.SSLSocket | None = None
    handler: Any = None  # the server's per-connection request handler, once TLS is up
    deadline: float = 0.0
    idle_since: float = field(default_factory=time.monotonic)
    closed: bool = False

    @property
    def active(self) -> socket.socket:
        return self.tls if self.tls is not None else self.sock


class Reactor:
    """One thread watching handshaking and idle connections; ready ones go to `on_ready`."""

    def __init__(
        self,
        context: ssl.SSLContext,
        on_ready: Callable[[Connection], None],
        on_close: Callable[[Connection], None],
        *,
        max_connections: int,
        idle_timeout: float,
        handshake_timeout: float,
    ) -> None:
        self._context = context
        self._on_ready = on_ready
        self._on_close = on_close
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._incoming: collections.deque[Connection] = collections.deque()
        self._waiting: dict[Connection, str] = {}  # connection -> "handshake" | "idle"
        self._open = 0  # connections open anywhere (waiting here or being served)
        self._stopping = threading.Event()
        self._stopped = False  # set (under the lock) once the loop has ended
        self._thread = threading.Thread(target=self._loop, name="apiserver-reactor", daemon=True)
        self._thread.start()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    def add(self, sock: socket.socket, addr: Any) -> None:
        """A freshly accepted connection (non-blocking from here on)."""
        sock.setblocking(False)
        with self._lock:
            self._open += 1
        self._hand_over(Connection(sock, addr, deadline=time.monotonic() + self.handshake_timeout))

    def park(self, conn: Connection) -> None:
        """A served connection waits for its next request here."""
        conn.idle_since = time.monotonic()
        conn.deadline = conn.idle_since + self.idle_timeout
        self._hand_over(conn)

    def close(self, conn: Connection) -> None:
        """Close a connection that is not waiting here (a worker is done with it); idempotent."""
        with self._lock:
            if conn.closed:
                return
            conn.closed = True
            self._open -= 1
        with contextlib.suppress(OSError):
            conn.active.close()
        self._on_close(conn)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop watching; every connection still waiting here is closed."""
        self._stopping.set()
        self._wake()
        self._thread.join(timeout)

    # ---- reactor thread ------------------------------------------------------------------------

    def _hand_over(self, conn: Connection) -> None:
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._incoming.append(conn)
        if stopped:
            self.close(conn)
        else:
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _loop(self) -> None:
        try:
            while not self._stopping.is_set():
                for key, events in self._selector.select(POLL_SECONDS):
                    if key.data is None:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                        continue
                    try:
                        self._on_event(key.data, events)
                    except Exception:  # one bad connection must not stop the reactor for all others
                        log.exception("API server reactor: dropping connection from %s", key.data.addr)
                        self._drop(key.data)
                self._take_incoming()
                self._expire()
        finally:
            for conn in list(self._waiting):
                self._drop(conn)
            with self._lock:
                self._stopped = True
                leftover = list(self._incoming)
                self._incoming.clear()
            for conn in leftover:
                self.close(conn)
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _take_incoming(self) -> None:
        with self._lock:
            incoming = list(self._incoming)
            self._incoming.clear()
        for conn in incoming:
            if conn.tls is None:
                if self._make_room():
                    self._watch(conn, "handshake", selectors.EVENT_READ)
                else:
                    self.close(conn)  # every other connection is busy: refuse this one
            elif conn.tls.pending():
                self._on_ready(conn)  # a request is already buffered in TLS
            else:
                self._watch(conn, "idle", selectors.EVENT_READ)

    def _make_room(self) -> bool:
        """Over the limit: close the longest idle connections (clients reconnect). False if that
        is not enough."""
        with self._lock:
            excess = self._open - self.max_connections
        if excess <= 0:
            return True
        idle = sorted(
            (c for c, state in self._waiting.items() if state == "idle"), key=lambda c: c.idle_since
        )
        for conn in idle[:excess]:
            self._drop(conn)
        return len(idle) >= excess

    def _watch(self, conn: Connection, state: str, events: int) -> None:
        try:
            if conn in self._waiting:
                self._selector.modify(conn.active, events, conn)
            else:
                self._selector.register(conn.active, events, conn)
        except (OSError, ValueError):
            self._waiting.pop(conn, None)
            self.close(conn)
            return
        self._waiting[conn] = state

    def _unwatch(self, conn: Connection) -> None:
        self._waiting.pop(conn, None)
        with contextlib.suppress(KeyError, OSError, ValueError):
            self._selector.unregister(conn.active)

    def _drop(self, conn: Connection) -> None:
        self._unwatch(conn)
        self.close(conn)

    def _expire(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self._waiting if c.deadline <= now]:
            self._drop(conn)

    def _on_event(self, conn: Connection, events: int) -> None:
        state = self._waiting.get(conn)
        if state == "idle":
            self._unwatch(conn)
            self._on_ready(conn)
        elif state == "handshake":
            self._handshake_step(conn)

    def _handshake_step(self, conn: Connection) -> None:
        if conn.tls is None:
            try:
                head = conn.sock.recv(5, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(conn)
                return
            if not head:
                self._drop(conn)
                return
            if head[0] != _TLS_HANDSHAKE_RECORD:
                if len(head) < 5 and any(p.startswith(head) for p in _HTTP_PREFIXES):
                    return  # wait for the rest of the first five bytes
                with contextlib.suppress(OSError):
                    conn.sock.recv(65536)  # unread bytes would turn the close into a reset
                    if head[:5] in _HTTP_PREFIXES:
                        conn.sock.send(PLAIN_HTTP_ANSWER)
                    conn.sock.shutdown(socket.SHUT_WR)
                self._drop(conn)
                return
            self._unwatch(conn)
            try:
                conn.tls = self._context.wrap_socket(
                    conn.sock, server_side=True, do_handshake_on_connect=False
                )
            except (OSError, ValueError):
                self.close(conn)
                return
            self._watch(conn, "handshake", selectors.EVENT_READ)
        assert conn.tls is not None
        try:
            conn.tls.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn, "handshake", selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, "handshake", selectors.EVENT_WRITE)
            return
        except (OSError, ValueError) as exc:
            log.debug("TLS handshake with %s failed: %s", conn.addr, exc)
            self._drop(conn)
            return
        self._unwatch(conn)
        conn.tls.setblocking(True)
        self.park(conn)  # its first request may not have arrived yet
