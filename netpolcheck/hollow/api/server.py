"""The hollow cluster's HTTPS API server: TLS listeners, bearer-token auth, request plumbing.

`ApiServer(store, runtime, token, pki)`; `add_listener(sock)` serves on an already bound socket
(the daemon binds one in each node/pod network namespace and one on the machine's loopback).
Routing and the REST semantics live in `rest.py`; this module only moves bytes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from netpolcheck.hollow.api import decoding, rest
from netpolcheck.hollow.api.auth import Auth, Tokens
from netpolcheck.hollow.api.connections import Connection, Reactor, WorkerPool
from netpolcheck.hollow.api.errors import ApiError, BadRequest, RequestEntityTooLarge
from netpolcheck.hollow.api.runtime import PodRuntime
from netpolcheck.hollow.api.sockio import SocketReader, SocketWriter
from netpolcheck.hollow.api.store import Store
from netpolcheck.hollow.api.tls import Pki
from netpolcheck.hollow.api.websocket import WebSocket, accept_key

log = logging.getLogger(__name__)

ACCEPT_POLL_SECONDS = 0.2
HANDSHAKE_TIMEOUT_SECONDS = 10.0
# Idle keep-alive connections are closed after this (without a thread: see connections.py).
IDLE_CONNECTION_TIMEOUT_SECONDS = 90.0
# Reading one request, or writing to a client that does not read, gives up after this.
REQUEST_IO_TIMEOUT_SECONDS = 60.0
MAX_CONNECTIONS = 1024  # per server; beyond it the longest idle connection is closed
MAX_REQUEST_WORKERS = 16  # threads serving short requests at once (streams do not count)
MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's --max-request-body-bytes default


class RequestHandler(BaseHTTPRequestHandler):
    """The HTTP/1.1 side of one connection; `serve_one` serves one request (to `rest.dispatch`)."""

    protocol_version = "HTTP/1.1"
    server_version = "hollow-apiserver"
    timeout = REQUEST_IO_TIMEOUT_SECONDS
    rfile: SocketReader  # type: ignore[assignment]
    wfile: SocketWriter  # type: ignore[assignment]

    def __init__(self, tls: ssl.SSLSocket, addr: Any, api: ApiServer) -> None:
        # Not socketserver's __init__ (which serves the whole connection in this thread).
        self.request = self.connection = tls
        self.client_address = addr
        self.api = api
        tls.settimeout(self.timeout)
        # A request that arrives slowly waits without holding one of the pool's request slots.
        self.rfile = SocketReader(tls, self.timeout, on_wait=api.pool.detach)
        self.wfile = SocketWriter(self.rfile)

    def serve_one(self) -> bool:
        """Serve one request; True if the connection stays open for another."""
        self.close_connection = True
        self.handle_one_request()
        return not self.close_connection

    # -- request side -----------------------------------------------------------------------------

    def _handle_any(self) -> None:
        started = time.monotonic()
        parsed = urllib.parse.urlsplit(self.path)
        self.req_path = parsed.path.rstrip("/") or "/"
        self.query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        self._body: bytes | None = None
        self._streaming = False
        self.status_code = 0
        try:
            self._authenticate()
            rest.dispatch(self.api, self)
        except ApiError as exc:
            if not self._streaming:
                self.send_json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, TimeoutError):
            self.close_connection = True
        except Exception as exc:
            log.exception("request %s %s failed", self.command, self.path)
            if not self._streaming:
                self.send_json(500, ApiError(f"internal error: {exc}").status())
            self.close_connection = True
        finally:
            if self.api.stopping.is_set():
                self.close_connection = True  # do not wait for another request on this connection
            if not self._streaming and not self.close_connection:
                try:  # an unread request body would be parsed as the next request on this connection
                    self.body()
                except (OSError, ValueError, ApiError):
                    self.close_connection = True
            self.api.log_request_line(self, time.monotonic() - started)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle_any

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _authenticate(self) -> None:
        self.user = self.api.auth.check(
            self.headers.get("Authorization", ""), self.command, self.req_path, self.flag("watch")
        )

    def server_address_text(self) -> str:
        host, port = self.connection.getsockname()[:2]
        return f"{host}:{port}"

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def params(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def int_param(self, name: str, default: int | None = None) -> int | None:
        value = self.param(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except ValueError as exc:
            raise BadRequest(f"invalid value for {name}: {value!r} (an integer is required)") from exc

    def flag(self, name: str) -> bool:
        return (self.param(name) or "").lower() in ("true", "1")

    def body(self) -> bytes:
        """The request body, at most MAX_BODY_BYTES (413 beyond, checked before reading it)."""
        if self._body is None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self._body = self._read_chunked()
            else:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError as exc:
                    self.close_connection = True
                    raise BadRequest("invalid Content-Length") from exc
                if length < 0:
                    self.close_connection = True
                    raise BadRequest("invalid Content-Length")
                if length > MAX_BODY_BYTES:
                    raise self._too_large()
                self._body = self.rfile.read(length) if length else b""
        return self._body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError as exc:
                self.close_connection = True
                raise BadRequest("invalid chunked encoding") from exc
            if size == 0:
                self.rfile.readline(1024)
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise self._too_large()
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _too_large(self) -> RequestEntityTooLarge:
        self.close_connection = True  # the rest of the body is never read
        self._body = b""
        return RequestEntityTooLarge(f"Request entity too large: limit is {MAX_BODY_BYTES}")

    def handle_expect_100(self) -> bool:
        """Answer `Expect: 100-continue` with 413 instead of 100 when the announced body is too big."""
        try:
            announced = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            announced = 0
        if announced > MAX_BODY_BYTES:
            self._body = b""
            self.status_code = 413
            self.send_json(413, self._too_large().status())
            return False
        return super().handle_expect_100()

    def json_body(self) -> Any:
        return decoding.loads_json(self.body())

    # -- response side ----------------------------------------------------------------------------

    def send_bytes(
        self, code: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.status_code = code
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def send_json(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(code, json.dumps(obj, separators=(",", ":")).encode(), "application/json", headers)

    def start_stream(self, code: int, content_type: str) -> None:
        """Start a chunked response (watch streams, followed logs)."""
        self.status_code = code
        self._streaming = True
        self.api.pool.detach()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def client_gone(self) -> bool:
        """True once the client closed its side of a streaming response (checked between writes,
        so an idle watch or log follow does not outlive its client until the timeout)."""
        return self.rfile.peer_closed()

    def upgrade_websocket(self, protocol: str | None) -> WebSocket:
        key = self.headers.get("Sec-WebSocket-Key", "")
        self.status_code = 101
        self._streaming = True
        self.api.pool.detach()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        if protocol:
            self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        return WebSocket(self.rfile, self.wfile)  # type: ignore[arg-type]


class ApiServer:
    """Serves `store` over HTTPS on every listener added; `stop()` ends streams and connections."""

    def __init__(
        self,
        store: Store,
        runtime: PodRuntime | None,
        token: str | Auth,
        pki: Pki,
        request_log: Any | None = None,
        *,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_CONNECTION_TIMEOUT_SECONDS,
        workers: int = MAX_REQUEST_WORKERS,
        handshake_timeout: float = HANDSHAKE_TIMEOUT_SECONDS,
    ) -> None:
        self.store = store
        self.runtime = runtime
        # a plain token: that one admin token and nothing else (tests); the daemon passes an Auth
        self.auth = token if isinstance(token, Auth) else Auth(Tokens(token), None)
        self.pki = pki
        self.stopping = threading.Event()
        self.request_log = request_log  # optional text file: one line per request, like the observed logs
        self._ssl = pki.server_context()
        self._lock = threading.Lock()
        self._listeners: list[tuple[socket.socket, threading.Thread]] = []
        self._retired: set[socket.socket] = set()
        self._served: set[Connection] = set()  # connections a worker is serving now
        self.pool = WorkerPool(workers, "apiserver-worker")
        self.reactor = Reactor(
            self._ssl,
            self._on_ready,
            self._forget,
            max_connections=max_connections,
            idle_timeout=idle_timeout,
            handshake_timeout=handshake_timeout,
        )

    def add_listener(self, sock: socket.socket) -> None:
        """Accept on `sock` (bound; listen() is called here) until stop(). The socket stays the caller's."""
        sock.listen(128)
        sock.settimeout(ACCEPT_POLL_SECONDS)
        thread = threading.Thread(
            target=self._accept_loop, args=(sock,), name="apiserver-accept", daemon=True
        )
        with self._lock:
            self._listeners.append((sock, thread))
        thread.start()

    def remove_listener(self, sock: socket.socket) -> None:
        """Stop accepting on `sock` within one poll period (closing the socket does the same)."""
        with self._lock:
            self._retired.add(sock)
            threads = [t for s, t in self._listeners if s is sock]
            self._listeners = [(s, t) for s, t in self._listeners if s is not sock]
        for thread in threads:
            thread.join(2 * ACCEPT_POLL_SECONDS + 1)
        with self._lock:
            self._retired.discard(sock)

    def listen_loopback(self, port: int = 0) -> tuple[socket.socket, int]:
        """Convenience for tests and the machine namespace: bind 127.0.0.1:port, serve it, return it."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.add_listener(sock)
        return sock, sock.getsockname()[1]

    def _accept_loop(self, sock: socket.socket) -> None:
        while not self.stopping.is_set() and sock not in self._retired:
            try:
                conn, addr = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self.stopping.is_set() or sock.fileno() == -1:
                    return  # server stopping, or the owner closed this listener (e.g. its pod is gone)
                time.sleep(ACCEPT_POLL_SECONDS)  # e.g. EMFILE: back off one poll period, then retry
                continue
            # Headers and body go out as separate TLS records: without NODELAY, Nagle + delayed ACK
            # add ~40 ms to every response.
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.reactor.add(conn, addr)

    # ---- connections -----------------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        return self.reactor.open_connections

    def _on_ready(self, conn: Connection) -> None:
        """Reactor thread: `conn` has a request (or its client closed): serve it on the pool."""
        with self._lock:
            self._served.add(conn)
        self.pool.submit(lambda: self._serve(conn))

    def _serve(self, conn: Connection) -> None:
        assert conn.tls is not None
        try:
            if conn.handler is None:
                conn.handler = RequestHandler(conn.tls, conn.addr, self)
            else:
                conn.tls.settimeout(RequestHandler.timeout)
            handler: RequestHandler = conn.handler
            while handler.serve_one() and not self.stopping.is_set():
                if handler.rfile.buffered or conn.tls.pending():
                    continue  # the next request is already here
                with self._lock:
                    self._served.discard(conn)
                self.reactor.park(conn)
                return
        except (OSError, ssl.SSLError) as exc:
            log.debug("connection from %s ended: %s", conn.addr, exc)
        self.reactor.close(conn)

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            self._served.discard(conn)

    def log_request_line(self, handler: RequestHandler, seconds: float) -> None:
        if self.request_log is None:
            return
        line = (
            f'API "{handler.command} {handler.path} HTTP/1.1" {handler.status_code} {seconds * 1000:.1f}ms\n'
        )
        with self._lock:
            self.request_log.write(line)
            self.request_log.flush()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close idle connections, let watch streams end cleanly (final chunk), then
        close every connection. Bounded by `timeout` seconds; the listening sockets are left to their
        owner."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            listeners = list(self._listeners)
        for _, thread in listeners:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.reactor.stop(max(0.0, deadline - time.monotonic()))  # closes the idle connections
        self.pool.close()
        threads = self.pool.threads()
        grace_end = min(deadline, time.monotonic() + 2 * rest.STREAM_POLL_SECONDS + 0.3)
        for thread in threads:  # streaming handlers notice `stopping` within one poll and finish
            thread.join(max(0.0, grace_end - time.monotonic()))
        with self._lock:
            served = list(self._served)
        for conn in served:
            with contextlib.suppress(OSError):
                conn.active.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
