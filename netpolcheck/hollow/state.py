"""DIR/cluster.json: what one cluster created, so `down` can remove it even after `kill -9`.

The CLI writes it (prefix, pod range) before anything is created; the daemon adds its PID, the API
address and the nodes once they exist. Every write is mirrored to /run/netpolcheck-hollow/<prefix>.json
(with the state dir), so `down --orphans` still knows a cluster's route when the state dir is lost;
/run is a tmpfs, cleared at boot like the namespaces and routes it describes.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

CLUSTER_FILE = "cluster.json"
KUBECONFIG_FILE = "kubeconfig"
REGISTRY_DIR = Path("/run/netpolcheck-hollow")
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# What every process of the cluster creates its files with: nothing readable by other users (the
# state dir holds bearer tokens in the containers' spec.json and in kubeconfig).
PRIVATE_UMASK = 0o077


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
    up_pid: int | None = None  # the `hollow up` process that is starting it

    def write(self, state_dir: Path) -> None:
        make_private_dir(state_dir)
        _write_atomically(state_dir / CLUSTER_FILE, asdict(self))
        if self.status == "stopped":
            forget_registered(self.prefix)
        else:
            _write_atomically(
                registry_path(self.prefix), {"state_dir": str(state_dir.resolve()), "record": asdict(self)}
            )

    @classmethod
    def read(cls, state_dir: Path) -> ClusterRecord | None:
        """The record in `state_dir`, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads((state_dir / CLUSTER_FILE).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def registry_path(prefix: str) -> Path:
    return REGISTRY_DIR / f"{prefix}.json"


def read_registered(prefix: str) -> tuple[Path, ClusterRecord] | None:
    """(state dir, record) of a cluster from its /run mirror, or None."""
    try:
        data = json.loads(registry_path(prefix).read_text())
        return Path(data["state_dir"]), ClusterRecord(**data["record"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def registered_prefixes() -> list[str]:
    try:
        return sorted(p.stem for p in REGISTRY_DIR.glob("*.json"))
    except OSError:
        return []


def forget_registered(prefix: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        registry_path(prefix).unlink()


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) as 0700 at creation; an existing directory is left as it is."""
    old = os.umask(PRIVATE_UMASK)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    finally:
        os.umask(old)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, created 0600 (a fresh temporary file, never an existing one)."""
    make_private_dir(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _write_atomically(path: Path, data: object) -> None:
    write_private(path, json.dumps(data, indent=2) + "\n")


def remove_record(state_dir: Path) -> None:
    record = ClusterRecord.read(state_dir)
    if record is not None:
        forget_registered(record.prefix)
    for name in (CLUSTER_FILE, KUBECONFIG_FILE):
        with contextlib.suppress(FileNotFoundError):
            (state_dir / name).unlink()
