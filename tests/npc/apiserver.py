"""A small HTTPS Kubernetes API for the controller tests: list + watch of namespaces, pods and policies.

Real TLS (a throw-away CA), a bearer token, resourceVersions, chunked watch streams, `410 Gone` when a
watch starts before the kept history, and a switch that drops every open watch. It listens on
127.0.0.1:6443 inside the node namespaces (a socket keeps the namespace it was made in).
"""

from __future__ import annotations

import copy
import ctypes
import datetime
import json
import os
import socket
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PATHS = {
    "/api/v1/namespaces": "Namespace",
    "/api/v1/pods": "Pod",
    "/apis/networking.k8s.io/v1/networkpolicies": "NetworkPolicy",
    "/apis/extensions/v1beta1/networkpolicies": "NetworkPolicy",
}
CLONE_NEWNET = 0x40000000


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "npcref-test-api")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "ca.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def socket_in_netns(netns: str, port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port inside /run/netns/<netns> (made from a short-lived thread)."""
    result: dict[str, Any] = {}

    def make() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(64)
            result["sock"] = sock
        except OSError as exc:
            result["error"] = exc
        finally:
            os.close(fd)  # the thread ends here, so its namespace switch ends with it

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    sock: socket.socket = result["sock"]
    return sock


class FakeApi:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="npcref-api-"))
        self.ca, key = _self_signed(self.dir)
        self.token = os.urandom(16).hex()
        (self.dir / "token").write_text(self.token)
        self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl.load_cert_chain(self.ca, key)
        self.lock = threading.Condition()
        self.rv = 1
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {k: {} for k in set(PATHS.values())}
        self.history: list[tuple[int, str, str, dict[str, Any]]] = []
        self.history_floor = 0
        self.watch_generation = 0
        self.requests: list[str] = []
        self.servers: list[ThreadingHTTPServer] = []

    # -- the store --------------------------------------------------------------------------------
    def _record(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        self.history.append((self.rv, kind, event, copy.deepcopy(obj)))
        self.lock.notify_all()

    def put(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.setdefault("metadata", {})
        key = (meta.get("namespace", ""), meta["name"])
        with self.lock:
            event = "MODIFIED" if key in self.objects[kind] else "ADDED"
            meta.setdefault("uid", f"{kind}-{key[0]}-{key[1]}")
            self.objects[kind][key] = copy.deepcopy(obj)
            self._record(kind, event, self.objects[kind][key])

    def delete(self, kind: str, namespace: str, name: str) -> None:
        with self.lock:
            obj = self.objects[kind].pop((namespace, name))
            self._record(kind, "DELETED", obj)

    def load_state(self, state: dict[str, Any]) -> None:
        for kind, field in (("Namespace", "namespaces"), ("Pod", "pods"), ("NetworkPolicy", "policies")):
            for obj in state.get(field, []):
                self.put(kind, copy.deepcopy(obj))

    def drop_watches(self) -> None:
        """End every open watch stream (as an API server restart or a proxy timeout would)."""
        with self.lock:
            self.watch_generation += 1
            self.lock.notify_all()

    def expire_history(self) -> None:
        """Forget the event history: a watch resuming from an older resourceVersion gets 410 Gone."""
        with self.lock:
            self.history_floor = self.rv
            self.history.clear()
            self.watch_generation += 1
            self.lock.notify_all()

    # -- serving ----------------------------------------------------------------------------------
    def listen_in(self, netns: str, port: int = 6443) -> None:
        sock = socket_in_netns(netns, port)
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self), bind_and_activate=False)
        server.socket = self.ssl.wrap_socket(sock, server_side=True)
        server.daemon_threads = True
        self.servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self) -> None:
        self.drop_watches()
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for path in self.dir.iterdir():
            path.unlink()
        self.dir.rmdir()


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            api.requests.append(self.path)
            scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or token != api.token:  # the scheme is case-insensitive
                self._json(401, {"kind": "Status", "code": 401, "message": "Unauthorized"})
                return
            kind = PATHS.get(url.path)
            if kind is None:
                self._json(404, {"kind": "Status", "code": 404, "message": f"{url.path} not found"})
                return
            if query.get("watch") == "true":
                self._watch(
                    kind, int(query.get("resourceVersion") or 0), float(query.get("timeoutSeconds", 60))
                )
                return
            with api.lock:
                items = [copy.deepcopy(o) for o in api.objects[kind].values()]
                rv = api.rv
            self._json(200, {"kind": f"{kind}List", "metadata": {"resourceVersion": str(rv)}, "items": items})

        def _chunk(self, event: dict[str, Any]) -> None:
            data = json.dumps(event).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _watch(self, kind: str, since: int, timeout: float) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            deadline = threading.Event()
            timer = threading.Timer(timeout, deadline.set)
            timer.start()
            try:
                with api.lock:
                    generation = api.watch_generation
                    if since < api.history_floor:
                        self._chunk(
                            {
                                "type": "ERROR",
                                "object": {
                                    "kind": "Status",
                                    "code": 410,
                                    "reason": "Expired",
                                    "message": "too old",
                                },
                            }
                        )
                        return
                sent = since
                while not deadline.is_set():
                    with api.lock:
                        if api.watch_generation != generation:
                            return
                        pending = [h for h in api.history if h[0] > sent and h[1] == kind]
                        if not pending:
                            api.lock.wait(0.2)
                            continue
                    for rv, _, event, obj in pending:
                        self._chunk({"type": event, "object": obj})
                        sent = rv
            except OSError:
                return
            finally:
                timer.cancel()
                try:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:
                    pass
                self.close_connection = True

    return Handler
