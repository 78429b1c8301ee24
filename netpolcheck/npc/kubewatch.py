"""List + watch of one Kubernetes collection, with reconnect and resync, feeding a queue of events.

Configuration comes from the kubernetes client's in-cluster loader (service-account token and CA,
`KUBERNETES_SERVICE_HOST`/`_PORT`); requests are plain HTTPS through urllib3 so a watch is read line by
line as the server streams it. After a dropped watch the watch resumes from the last resourceVersion;
after `410 Gone` (or repeated failures) the collection is listed again and handed over as a resync.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes.client import Configuration
from kubernetes.config.incluster_config import InClusterConfigLoader

log = logging.getLogger("netpolcheck.npc")
DEFAULT_SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class Event:
    kind: str  # "Namespace" | "Pod" | "NetworkPolicy"
    type: str  # "SYNC" (objects = the whole collection) | "ADDED" | "MODIFIED" | "DELETED"
    objects: tuple[dict[str, Any], ...]


class Gone(Exception):
    """The resourceVersion we watch from is too old: list again."""


class ApiClient:
    """Just enough of an in-cluster API client for list and watch."""

    def __init__(self, sa_dir: Path = DEFAULT_SA_DIR) -> None:
        config = Configuration()
        InClusterConfigLoader(
            token_filename=str(sa_dir / "token"), cert_filename=str(sa_dir / "ca.crt"), try_refresh_token=True
        ).load_and_set(config)
        self.config = config
        self.http = urllib3.PoolManager(
            num_pools=4, maxsize=8, cert_reqs="CERT_REQUIRED", ca_certs=config.ssl_ca_cert
        )

    def _headers(self) -> dict[str, str]:
        # the loader stores "bearer <token>"; send the canonical "Bearer" scheme some servers insist on
        value = self.config.get_api_key_with_prefix("BearerToken") or ""
        scheme, _, token = value.partition(" ")
        header = f"Bearer {token}" if scheme.lower() == "bearer" else value
        return {"Authorization": header, "Accept": "application/json"}

    def get(self, path: str, **params: str) -> dict[str, Any]:
        url = f"{self.config.host}{path}" + (f"?{urlencode(params)}" if params else "")
        resp = self.http.request("GET", url, headers=self._headers(), timeout=urllib3.Timeout(10, 30))
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {resp.status}: {resp.data[:200]!r}")
        result: dict[str, Any] = json.loads(resp.data)
        return result

    def watch(self, path: str, resource_version: str, timeout_seconds: int, stop: threading.Event) -> Any:
        """Yield watch events (dicts) as they arrive; raises Gone on 410."""
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
        }
        url = f"{self.config.host}{path}?{urlencode(params)}"
        resp = self.http.request(
            "GET",
            url,
            headers=self._headers(),
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=timeout_seconds + 30),
        )
        try:
            if resp.status == 410:
                raise Gone(path)
            if resp.status != 200:
                raise RuntimeError(f"watch {path}: HTTP {resp.status}")
            buffer = b""
            while not stop.is_set():
                chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.release_conn()


class CollectionWatcher(threading.Thread):
    """Keeps one collection (e.g. all pods) flowing into `events`, forever or until `stop`."""

    def __init__(
        self,
        client: ApiClient,
        kind: str,
        path: str,
        events: queue.Queue[Event],
        stop: threading.Event,
        watch_timeout: int = 300,
    ) -> None:
        super().__init__(name=f"watch-{kind}", daemon=True)
        self.client, self.kind, self.path = client, kind, path
        self.events, self.stop_event, self.watch_timeout = events, stop, watch_timeout

    def run(self) -> None:
        failures = 0
        resource_version: str | None = None
        while not self.stop_event.is_set():
            try:
                if resource_version is None:
                    listing = self.client.get(self.path, limit="500")
                    resource_version = str(listing.get("metadata", {}).get("resourceVersion", "0"))
                    self.events.put(Event(self.kind, "SYNC", tuple(listing.get("items") or ())))
                for event in self.client.watch(
                    self.path, resource_version, self.watch_timeout, self.stop_event
                ):
                    failures = 0
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if obj.get("code") == 410:
                            raise Gone(self.path)
                        raise RuntimeError(f"watch {self.path}: {obj.get('message')}")
                    resource_version = str(
                        (obj.get("metadata") or {}).get("resourceVersion") or resource_version
                    )
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        obj.setdefault("kind", self.kind)
                        self.events.put(Event(self.kind, event["type"], (obj,)))
            except Gone:
                log.warning("watch of %s expired (410 Gone); listing again", self.path)
                resource_version = None
            except Exception as exc:  # connection dropped, server restarting, bad response
                failures += 1
                log.warning("watch of %s failed (%s); retrying", self.path, exc)
                if failures >= 3:
                    resource_version = None  # resync from a fresh list
                # bounded back-off between reconnects; wakes at once on stop
                self.stop_event.wait(min(0.05 * 2**failures, 2.0))
