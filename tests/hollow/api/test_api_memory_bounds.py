"""What a client can make the server hold: idle connections cost no thread each, their number is
bounded, idle ones are closed; the watch history is bounded by bytes (resuming from an evicted
version gets 410, as on a real server). Real TLS over loopback; counts and times kept small."""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import Gone
from netpolcheck.hollow.api.server import ApiServer
from netpolcheck.hollow.api.store import Store
from netpolcheck.hollow.api.tls import Pki, make_pki
from netpolcheck.hollow.waits import wait_until

TOKEN = "memory-token"


class Served:
    def __init__(self, store: Store, server: ApiServer, pki: Pki, port: int) -> None:
        self.store, self.server, self.pki, self.port = store, server, pki, port
        self.ctx = ssl.create_default_context(cadata=pki.ca_cert_pem.decode())
        self.sockets: list[socket.socket] = []

    def https(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)

    def request(
        self, conn: http.client.HTTPSConnection, method: str, path: str, body: Any = None
    ) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()

    def idle_tls(self) -> ssl.SSLSocket:
        """A TLS connection that served one keep-alive request and now idles."""
        sock = self.ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=10),
                                    server_hostname="127.0.0.1")  # fmt: skip
        self.sockets.append(sock)
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        data = b""
        while not data.endswith(b"ok"):
            chunk = sock.recv(4096)
            assert chunk, "the server closed a fresh keep-alive connection"
            data += chunk
        return sock

    def idle_tcp(self) -> socket.socket:
        """A connection that never starts its TLS handshake."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sockets.append(sock)
        return sock


@contextlib.contextmanager
def serving(store: Store | None = None, **options: Any) -> Iterator[Served]:
    store = store or Store()
    pki = make_pki("memory")
    server = ApiServer(store, None, TOKEN, pki, **options)
    sock, port = server.listen_loopback(0)
    served = Served(store, server, pki, port)
    try:
        yield served
    finally:
        for client_sock in served.sockets:
            with contextlib.suppress(OSError):
                client_sock.close()
        server.stop()
        sock.close()
        store.close()


def closed_by_server(sock: socket.socket, timeout: float = 10.0) -> bool:
    """True once the server has closed `sock` (EOF or reset), polled up to `timeout` seconds."""
    readable, _, _ = select.select([sock], [], [], timeout)
    if not readable:
        return False
    try:
        return sock.recv(1) == b""
    except (ssl.SSLError, OSError):
        return True


def server_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("apiserver"))


def test_idle_connections_hold_no_thread_each_and_the_server_still_answers() -> None:
    others_before = server_threads()  # servers of earlier tests still finishing, if any
    with serving(workers=8) as s:
        conn = s.https()
        assert s.request(conn, "GET", "/version")[0] == 200
        idle = [s.idle_tls() for _ in range(250)] + [s.idle_tcp() for _ in range(100)]
        wait_until(lambda: s.server.open_connections >= 351, 10, "the server to count every connection")
        # at most 8 request workers (plus the accept loop and the reactor), whatever the number of
        # idle connections
        assert len(s.server.pool.threads()) <= 8
        assert server_threads() <= 2 + 8 + others_before, [t.name for t in threading.enumerate()]
        assert s.request(conn, "GET", "/api/v1/namespaces")[0] == 200
        old = idle[0]  # an idle keep-alive connection still serves its next request
        old.sendall(f"GET /version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        assert old.recv(4096).startswith(b"HTTP/1.1 200")
        conn.close()


def test_connections_beyond_the_limit_close_the_longest_idle() -> None:
    with serving(max_connections=30) as s:
        idle = [s.idle_tls() for _ in range(45)]
        wait_until(lambda: s.server.open_connections <= 30, 10, "the server to close connections over 30")
        assert all(closed_by_server(sock) for sock in idle[:15])
        assert not any(closed_by_server(sock, timeout=0.2) for sock in idle[-10:])
        conn = s.https()
        assert s.request(conn, "GET", "/version")[0] == 200
        conn.close()


def test_idle_and_never_handshaking_connections_are_closed_after_their_timeouts() -> None:
    with serving(idle_timeout=0.5, handshake_timeout=0.5) as s:
        tls = s.idle_tls()
        tcp = s.idle_tcp()
        assert closed_by_server(tls) and closed_by_server(tcp)
        wait_until(lambda: s.server.open_connections == 0, 10, "no connection left open")


def test_long_running_streams_do_not_starve_ordinary_requests() -> None:
    with serving(workers=2) as s:
        watches = []
        for _ in range(5):
            watch = s.https()
            watch.request(
                "GET",
                "/api/v1/pods?watch=true&timeoutSeconds=60",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert watch.getresponse().status == 200
            watches.append(watch)
        conn = s.https()
        assert s.request(conn, "GET", "/api/v1/namespaces")[0] == 200
        for watch in [*watches, conn]:
            watch.close()


def test_clients_that_stall_mid_request_do_not_take_every_worker() -> None:
    with serving(workers=2) as s:
        stalled = []
        for _ in range(5):
            sock = s.ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=10),
                                     server_hostname="127.0.0.1")  # fmt: skip
            s.sockets.append(sock)
            sock.sendall(b"GET /vers")  # and nothing more
            stalled.append(sock)
        conn = s.https()
        assert s.request(conn, "GET", "/api/v1/namespaces")[0] == 200
        conn.close()


def _configmap(name: str, size: int) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"blob": "x" * size}}


def test_watch_history_is_bounded_by_bytes_and_old_versions_expire() -> None:
    budget = 8 * 1024 * 1024
    store = Store(history_bytes=budget)
    try:
        first = store.resource_version
        for round_ in range(40):
            store.create(r.CONFIGMAPS, {**_configmap("big", 1024 * 1024), "metadata": {"name": "big"}})
            store.delete(r.CONFIGMAPS, "default", "big")
            assert store.history_bytes <= budget, f"round {round_}: {store.history_bytes} bytes"
        # 40 rounds of ~3 MiB of events each would be 120 MiB; the history kept only its budget
        assert store.history_length < 20 and store.history_floor > first
        with pytest.raises(Gone):
            store.watch(r.CONFIGMAPS, "default", since=first)
        store.create(r.CONFIGMAPS, {"metadata": {"name": "small"}, "data": {"a": "b"}})
        with store.watch(r.CONFIGMAPS, "default", since=store.history_floor) as w:  # recent: still there
            assert w.initial_count >= 1
    finally:
        store.close()


def test_http_watch_from_an_evicted_version_gets_410(tmp_path: Path) -> None:
    with serving(Store(history_bytes=4 * 1024 * 1024)) as s:
        conn = s.https()
        start = s.store.resource_version
        for _ in range(6):
            status, _ = s.request(
                conn, "POST", "/api/v1/namespaces/default/configmaps", _configmap("big", 2**20)
            )
            assert status == 201
            assert s.request(conn, "DELETE", "/api/v1/namespaces/default/configmaps/big")[0] == 200
        assert s.store.history_bytes <= 4 * 1024 * 1024
        status, body = s.request(
            conn, "GET", f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={start}"
        )
        event = json.loads(body.splitlines()[0])
        assert status == 200 and event["type"] == "ERROR"
        assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
        conn.close()
