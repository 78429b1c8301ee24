"""DIR/cluster.json: what one cluster created, so `down` can remove it even after `kill -9`.

The CLI writes it (prefix, pod range) before anything is created; the daemon adds its PID, the API
address and the nodes once they exist.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

CLUSTER_FILE = "cluster.json"
KUBECONFIG_FILE = "kubeconfig"


@dataclass
class ClusterRecord:
    prefix: str
    pod_cidr: str
    nodes: int
    npc: str
    weave_version: str
    daemon_pid: int | None = None
    server: str | None = None
    node_names: list[str] = field(default_factory=list)
    node_netns: list[str] = field(default_factory=list)
    status: str = "starting"  # starting | running | stopped
    route: str | None = None  # the `unreachable` route this cluster added (set just before adding it)

    def write(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / (CLUSTER_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, state_dir / CLUSTER_FILE)

    @classmethod
    def read(cls, state_dir: Path) -> ClusterRecord | None:
        """The record in `state_dir`, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads((state_dir / CLUSTER_FILE).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def remove_record(state_dir: Path) -> None:
    for name in (CLUSTER_FILE, KUBECONFIG_FILE, CLUSTER_FILE + ".tmp"):
        with contextlib.suppress(FileNotFoundError):
            (state_dir / name).unlink()
