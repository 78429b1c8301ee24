"""Listeners the daemon hands over (bound elsewhere, closed or removed later) and the serving cert."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509

from netpolcheck.hollow.api.tls import make_pki
from tests.hollow.api.apikit import Cluster


def version_over(port: int, cluster: Cluster, server_name: str | None = None) -> int:
    """GET /version on 127.0.0.1:port, verifying the certificate for `server_name` (default 127.0.0.1)."""
    ctx = ssl.create_default_context(cadata=cluster.ca_pem.decode())
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    if server_name:  # connect by address but check the name an in-cluster client would use
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sock = ctx.wrap_socket(raw, server_hostname=server_name)
    conn.request("GET", "/version", headers={"Authorization": f"Bearer {cluster.token}"})
    status = conn.getresponse().status
    conn.close()
    return status


def bound_socket() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


def accept_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "apiserver-accept")


def wait_threads(count: int, timeout: float = 3.0) -> int:
    deadline = time.monotonic() + timeout
    while accept_threads() != count and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the accept-thread count, bounded by the deadline
    return accept_threads()


def test_extra_listener_serves_then_stops_when_removed_or_closed(cluster: Cluster) -> None:
    before = accept_threads()
    sock, port = bound_socket()
    cluster.server.add_listener(sock)
    assert version_over(port, cluster) == 200
    cluster.server.remove_listener(sock)
    assert wait_threads(before) == before
    sock.close()
    with pytest.raises(OSError):
        version_over(port, cluster)
    other, other_port = bound_socket()
    cluster.server.add_listener(other)
    assert version_over(other_port, cluster) == 200
    other.close()  # the owner closes it (a pod went away): its accept loop ends by itself
    assert wait_threads(before) == before


def test_serving_certificate_names_and_tls_verification(cluster: Cluster) -> None:
    pki = make_pki("names")
    cert = x509.load_pem_x509_certificate(pki.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "kubernetes.default.svc"} <= set(sans.get_values_for_type(x509.DNSName))
    assert "127.0.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    port = int(cluster.url.rsplit(":", 1)[1])
    assert version_over(port, cluster, server_name="kubernetes.default.svc") == 200
    stranger = ssl.create_default_context(cadata=pki.ca_cert_pem.decode())  # another cluster's CA
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        stranger.wrap_socket(raw, server_hostname="localhost")
