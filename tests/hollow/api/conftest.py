"""A real hollow API server on loopback for each test: Store + ApiServer over HTTPS, a kubeconfig,
and the local pod runtime from apikit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from netpolcheck.hollow.api.kubeconfig import write_kubeconfig
from netpolcheck.hollow.api.server import ApiServer
from netpolcheck.hollow.api.store import Store
from netpolcheck.hollow.api.tls import make_pki
from tests.hollow.api.apikit import Cluster, LocalRuntime


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    store = Store()
    pki = make_pki("test")
    runtime = LocalRuntime(tmp_path / "logs")
    server = ApiServer(store, runtime, "test-token", pki)
    sock, port = server.listen_loopback(0)
    url = f"https://127.0.0.1:{port}"
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, pki.ca_cert_pem, "test-token")
    api_client = config.new_client_from_config(str(kubeconfig))
    c = Cluster(store, server, runtime, url, "test-token", pki.ca_cert_pem, kubeconfig, api_client)
    try:
        yield c
    finally:
        for extra in [api_client, *c.clients]:
            extra.close()
        server.stop()
        sock.close()
        runtime.stop()
        store.close()


@pytest.fixture
def core(cluster: Cluster) -> client.CoreV1Api:
    return client.CoreV1Api(cluster.api_client)
