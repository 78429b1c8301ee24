"""Small helpers for tests that create pods with the kubernetes client and exec into them."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.stream import stream

from netpolcheck.hollow.waits import wait_until
from tests.hollow.kubetyped import as_body, pod_ready

# A TCP echo server: replies "<its pod IP> saw <peer IP>" and closes.
ECHO_SERVER = (
    "import os, socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 8080)); s.listen(16); print('READY', flush=True)\n"
    "while True:\n"
    "    c, a = s.accept(); c.sendall((os.environ['POD_IP'] + ' saw ' + a[0]).encode()); c.close()\n"
)
CONNECT = (
    "import socket, sys\nprint(socket.create_connection((sys.argv[1], 8080), timeout=3).recv(200).decode())"
)


def echo_pod(name: str, node: str | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "echo",
                "image": "python:3.11",
                "command": ["python3", "-c", ECHO_SERVER],
                "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            }
        ],
    }
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "echo"}, "annotations": annotations or {}},
        "spec": spec,
    }


def create_namespace(core: client.CoreV1Api, name: str) -> None:
    core.create_namespace(
        as_body(client.V1Namespace, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    )


def wait_running(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 20) -> client.V1Pod:
    box: list[client.V1Pod] = []

    def ready() -> bool:
        pod = core.read_namespaced_pod(name, namespace)
        box[:] = [pod]
        return pod_ready(pod)

    wait_until(ready, timeout, f"pod {namespace}/{name} to be Running and Ready")
    return box[0]


def pod_exec(
    core: client.CoreV1Api, namespace: str, name: str, command: list[str], container: str | None = None
) -> tuple[int, str, str]:
    """Exec over the API (websocket); returns (exit code, stdout, stderr)."""
    kwargs: dict[str, Any] = {"container": container} if container else {}
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        namespace,
        command=command,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
        **kwargs,
    )
    resp.run_forever(timeout=30)
    out, err = resp.read_stdout(), resp.read_stderr()
    code = resp.returncode
    resp.close()
    return code, out, err
