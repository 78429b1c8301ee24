"""The project's API server (`netpolcheck.hollow.api`) run in-process for the controller-process tests.

A `Store` served by an `ApiServer` over HTTPS on 127.0.0.1:6443 inside a node namespace (a socket keeps
the namespace it was made in), with the service-account files (token, ca.crt) a controller reads.
What a test needs beyond a real API server stays here: `restart()` ends every open watch the way an API
server restart does; `expire_history()` adds an etcd compaction, so a resuming watch gets 410 Gone.
"""

from __future__ import annotations

import copy
import ctypes
import os
import secrets
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import NotFound
from netpolcheck.hollow.api.server import ApiServer
from netpolcheck.hollow.api.store import Store
from netpolcheck.hollow.api.tls import make_pki
from netpolcheck.npc.world import World

CLONE_NEWNET = 0x40000000
PORT = 6443
KINDS = {"Namespace": r.NAMESPACES, "Pod": r.PODS, "NetworkPolicy": r.NETWORKPOLICIES}


def socket_in_netns(netns: str, port: int) -> socket.socket:
    """A bound (not yet listening) socket on 127.0.0.1:port inside /run/netns/<netns>, made from a
    short-lived thread so the calling thread never changes namespace."""
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
            result["sock"] = sock
        except OSError as exc:
            result["error"] = exc
        finally:
            os.close(fd)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    sock: socket.socket = result["sock"]
    return sock


def _creatable(obj: dict[str, Any]) -> dict[str, Any]:
    """An observed object as a client would create it: identity, labels, annotations and spec."""
    meta = obj.get("metadata") or {}
    keep = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)}
    body: dict[str, Any] = {"metadata": copy.deepcopy(keep)}
    if "spec" in obj:
        body["spec"] = copy.deepcopy(obj["spec"])
    return body


class NodeApi:
    """Store + ApiServer + service-account directory; `listen_in(netns)` serves it in a node namespace."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="npcref-api-"))
        self.pki = make_pki("npcref")
        self.token = secrets.token_hex(16)
        (self.dir / "token").write_text(self.token)
        (self.dir / "ca.crt").write_bytes(self.pki.ca_cert_pem)
        (self.dir / "namespace").write_text("kube-system")
        self.request_log_path = self.dir / "requests.log"
        self._request_log = self.request_log_path.open("a")
        self.store = Store(bootstrap=False)
        self.server = self._new_server()
        self._netns: list[str] = []
        self._sockets: list[socket.socket] = []

    def _new_server(self) -> ApiServer:
        return ApiServer(self.store, None, self.token, self.pki, request_log=self._request_log)

    # -- content ------------------------------------------------------------------------------
    def put(self, kind: str, obj: dict[str, Any]) -> None:
        """Create, or replace if it exists; a pod's status (phase, podIP, hostIP) is written too."""
        res = KINDS[kind]
        meta = obj["metadata"]
        body = _creatable(obj)
        if kind == "Pod" and not body.setdefault("spec", {}).get("containers"):
            body["spec"]["containers"] = [{"name": "c", "image": "netpolcheck/netpolcheck-probe:dev"}]
        try:
            current = self.store.get(res, meta.get("namespace"), meta["name"])
        except NotFound:
            self.store.create(res, body)
        else:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.store.replace(res, {**current, **body, "status": current.get("status", {})})
        if kind == "Pod" and obj.get("status"):
            status = {k: obj["status"][k] for k in ("phase", "podIP", "hostIP") if k in obj["status"]}
            self.store.merge_patch(res, meta.get("namespace"), meta["name"], {"status": status}, status=True)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.store.delete(KINDS[kind], namespace or None, name)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self.store.get(KINDS[kind], namespace or None, name)

    def load_state(self, state: dict[str, Any]) -> None:
        for kind, key in (("Namespace", "namespaces"), ("Pod", "pods"), ("NetworkPolicy", "policies")):
            for obj in state.get(key, []):
                self.put(kind, obj)

    def world(self) -> World:
        return World.from_state(
            {
                "namespaces": self.store.list(r.NAMESPACES)[0],
                "pods": self.store.list(r.PODS)[0],
                "policies": self.store.list(r.NETWORKPOLICIES)[0],
            }
        )

    def requests(self) -> list[str]:
        """One line per request served so far (`API "GET /path HTTP/1.1" 200 1.2ms`)."""
        self._request_log.flush()
        return self.request_log_path.read_text().splitlines()

    # -- serving ------------------------------------------------------------------------------
    def listen_in(self, netns: str) -> None:
        sock = socket_in_netns(netns, PORT)
        self._netns.append(netns)
        self._sockets.append(sock)
        self.server.add_listener(sock)

    def _stop_serving(self) -> None:
        self.server.stop()
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def restart(self) -> None:
        """Stop the server (every watch stream ends, every connection closes) and serve the same store
        again on the same addresses, as an API server restart does."""
        self._stop_serving()
        self.server = self._new_server()
        for netns in self._netns:
            sock = socket_in_netns(netns, PORT)
            self._sockets.append(sock)
            self.server.add_listener(sock)

    def expire_history(self) -> None:
        """Compact the history and restart: a watch resuming from an older version gets 410 Gone."""
        self.store.compact()
        self.restart()

    def close(self) -> None:
        self._stop_serving()
        self.store.close()
        self._request_log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
