"""The kubelet of every hollow node: pods become network namespaces, containers become processes.

It reacts to pod changes through `Store.subscribe`, schedules unscheduled pods (fewest pods first),
starts pods on a small worker pool, watches their processes from one monitor thread (exits,
restarts per restartPolicy with a short back-off, readiness) and keeps pod status true with status
merge patches. It is the API server's PodRuntime (exec and log_path).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import ipaddress
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netpolcheck.hollow import cleanup, containers, images, netns
from netpolcheck.hollow.api.errors import ApiError, NotFound
from netpolcheck.hollow.api.resources import NODES, PODS, Resource
from netpolcheck.hollow.api.runtime import ExecError
from netpolcheck.hollow.api.store import Store, WatchEvent, terminating
from netpolcheck.hollow.fabric import Fabric
from netpolcheck.hollow.ipam import IP_ANNOTATION, AddressError

# The grace period a deleted pod reports (deletionGracePeriodSeconds); containers.stop's default.
STOP_GRACE_SECONDS = 2

log = logging.getLogger(__name__)

MONITOR_INTERVAL = 0.05
BACKOFF_START = 0.5
BACKOFF_MAX = 10.0
READY_MARK = b"READY"
READY_LINE = re.compile(rb"(?:^|\n)READY\b")  # a line starting with READY, as the agents print it
WORKERS = 8
SETUP_MODULE = b"netpolcheck.hollow.container_init"

# Opens the API listener inside a pod/node netns; returns the function that closes it.
ListenerFactory = Callable[[str], Callable[[], None]]


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_info(name: str) -> dict[str, str]:
    """Node.status.nodeInfo with every field clients require."""
    uname = os.uname()
    return {
        "architecture": "amd64" if uname.machine == "x86_64" else uname.machine,
        "bootID": name,
        "machineID": name,
        "systemUUID": name,
        "containerRuntimeVersion": "hollow://1",
        "kernelVersion": uname.release,
        "kubeProxyVersion": "",
        "kubeletVersion": "v1.30.0-hollow",
        "operatingSystem": "linux",
        "osImage": "netpolcheck hollow node",
    }


@dataclass
class ContainerRun:
    spec: dict[str, Any]
    program: images.Program
    env: dict[str, str]
    log_dir: Path
    init: bool = False
    proc: subprocess.Popen[bytes] | None = None
    restart_count: int = 0
    started_at: str | None = None
    ready: bool = False
    terminated: dict[str, Any] | None = None  # state.terminated of the current/last run
    last_terminated: dict[str, Any] | None = None
    restart_at: float | None = None  # monotonic time of the next start (back-off)
    ready_scan_offset: int = 0
    setup_done: bool = False
    execs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    mounts: list[tuple[str, str]] = field(default_factory=list)  # (directory here, mountPath inside)
    readiness_exec: list[str] | None = None  # readinessProbe.exec.command
    probe_period: float = 10.0
    probe_timeout: float = 1.0
    probe_due: float = 0.0  # monotonic time of the next readiness probe
    probe_running: bool = False
    probe_changed: bool = False  # set by a probe thread when `ready` flipped

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def log_path(self, restart: int | None = None) -> Path:
        return self.log_dir / f"{self.restart_count if restart is None else restart}.log"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class PodRun:
    namespace: str
    name: str
    uid: str
    node_index: int
    node_name: str
    host_network: bool
    restart_policy: str
    host_pid: bool = False
    netns: str = ""
    ip: ipaddress.IPv4Address | None = None
    own_ip: bool = False
    start_time: str = ""
    containers: list[ContainerRun] = field(default_factory=list)
    init_containers: list[ContainerRun] = field(default_factory=list)
    started: bool = False  # app containers launched (init containers done)
    failed: str | None = None  # setup failure message
    stopping: bool = False
    close_listener: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_status: dict[str, Any] | None = None  # last computed status, without transition times
    last_written: dict[str, Any] | None = None  # last status written, with them
    pod_dir: Path | None = None
    mount_service_account: bool = True


class Kubelet:
    """Runs the pods of all nodes of one cluster; see the module docstring."""

    def __init__(
        self,
        store: Store,
        fabric: Fabric,
        node_names: list[str],
        state_dir: Path,
        npc: str,
        service_account: dict[str, str],
        listener_factory: ListenerFactory | None = None,
    ) -> None:
        self.store = store
        self.fabric = fabric
        self.node_names = node_names
        self.state_dir = state_dir
        self.npc = npc
        self.service_account = service_account  # token, ca.crt (namespace is added per pod)
        self.listener_factory = listener_factory
        self._pods: dict[tuple[str, str], PodRun] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kubelet")
        self._probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kubelet-probe")
        self._stop = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._monitor = threading.Thread(target=self._monitor_loop, name="kubelet-monitor", daemon=True)
        self._scheduled: set[str] = set()
        self._pending: dict[str, str] = {}  # pod uid -> node it was just bound to
        self._terminating: set[str] = set()  # uids of deleted pods being stopped
        self._schedule_lock = threading.Lock()
        self._ulogd_conf = state_dir / "ulogd.conf"
        self._ulogd_conf.write_text(containers.weave_ulogd_conf())

    # ---- nodes -------------------------------------------------------------------------------

    def register_nodes(self) -> None:
        """Create the Node objects, Ready, with the bridge address as InternalIP."""
        for k, name in enumerate(self.node_names, start=1):
            ip = str(self.fabric.addresses.bridge_ip(k))
            node = {
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "hollow.netpolcheck.io/netns": self.fabric.node_netns(k),
                    },
                },
                "spec": {"podCIDR": str(self.fabric.addresses.block(k))},
            }
            self.store.create(NODES, node)
            self.store.merge_patch(
                NODES,
                None,
                name,
                {
                    "status": {
                        "addresses": [
                            {"type": "InternalIP", "address": ip},
                            {"type": "Hostname", "address": name},
                        ],
                        "conditions": [
                            {
                                "type": "Ready",
                                "status": "True",
                                "reason": "KubeletReady",
                                "message": "hollow kubelet is posting ready status",
                                "lastHeartbeatTime": now_iso(),
                                "lastTransitionTime": now_iso(),
                            }
                        ],
                        "nodeInfo": node_info(name),
                        "capacity": {"pods": "110"},
                        "allocatable": {"pods": "110"},
                    }
                },
                status=True,
            )

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe = self.store.subscribe(self._on_event)
        self._monitor.start()
        pods, _ = self.store.list(PODS)
        for pod in pods:
            self._admit(pod)

    def stop(self) -> None:
        """Stop every pod (processes, netns); bounded by the per-container grace periods."""
        if self._unsubscribe:
            self._unsubscribe()
        self._stop.set()
        with self._lock:
            runs = list(self._pods.values())
        list(self._pool.map(self._stop_pod, runs))
        self._pool.shutdown(wait=True)
        self._probes.shutdown(wait=True)
        if self._monitor.is_alive():
            self._monitor.join(timeout=5)

    def pod_count(self, node_index: int) -> int:
        """Pods on the node, counting those just scheduled there whose start has not begun."""
        with self._lock:
            running = sum(1 for r in self._pods.values() if r.node_index == node_index and not r.stopping)
            pending = sum(1 for n in self._pending.values() if n == self.node_names[node_index - 1])
            return running + pending

    # ---- events ------------------------------------------------------------------------------

    def _on_event(self, event: WatchEvent) -> None:
        if event.resource.key != PODS.key or self._stop.is_set():
            return
        meta = event.object.get("metadata", {})
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event.type == "DELETED":
            with self._lock:
                self._pending.pop(meta.get("uid", ""), None)
                run = self._pods.get(key)
                if run is None or run.uid != meta.get("uid"):
                    return
                run.stopping = True
            self._pool.submit(self._stop_pod, run)
            return
        if terminating(event.object):
            self._terminate(key, str(meta.get("uid", "")))
            return
        self._admit(event.object)

    def _terminate(self, key: tuple[str, str], uid: str) -> None:
        """A pod marked for deletion: stop it, then let its object go (Store.deletion_gate)."""
        with self._lock:
            if uid in self._terminating:
                return  # status writes while it stops arrive as more events
            self._terminating.add(uid)
            self._pending.pop(uid, None)
            run = self._pods.get(key)
            if run is not None and run.uid == uid:
                run.stopping = True
            else:
                run = None  # never started here (or replaced): nothing to stop
        self._pool.submit(self._stop_then_remove, key, uid, run)

    def _stop_then_remove(self, key: tuple[str, str], uid: str, run: PodRun | None) -> None:
        try:
            if run is not None:
                self._stop_pod(run)
            self.store.finish_deletion(PODS, key[0], key[1], uid)
        except Exception:  # the object stays Terminating: better visible than gone with leftovers
            log.exception("stopping deleted pod %s/%s", *key)
        finally:
            with self._lock:
                self._terminating.discard(uid)

    def runs_pod(self, pod: dict[str, Any]) -> bool:
        """This kubelet runs (or will run) the pod: it is bound to one of our nodes."""
        return (pod.get("spec") or {}).get("nodeName") in self.node_names and not self._stop.is_set()

    def deletion_grace(self, res: Resource, obj: dict[str, Any]) -> int | None:
        """Store.deletion_gate: a pod this kubelet runs stays Terminating until it has stopped."""
        if res.key == PODS.key and self.runs_pod(obj):
            return STOP_GRACE_SECONDS
        return None

    def _admit(self, pod: dict[str, Any]) -> None:
        meta, spec = pod.get("metadata", {}), pod.get("spec", {})
        uid = meta.get("uid", "")
        node_name = spec.get("nodeName")
        if not node_name:
            if uid not in self._scheduled:
                self._scheduled.add(uid)
                self._pool.submit(self._schedule, meta.get("namespace", ""), meta.get("name", ""), uid)
            return
        if node_name not in self.node_names:
            return
        key = (meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            existing = self._pods.get(key)
            if existing is not None and existing.uid == uid:
                return
            if existing is not None:
                existing.stopping = True
                self._pool.submit(self._stop_pod, existing)
            run = PodRun(
                namespace=key[0],
                name=key[1],
                uid=uid,
                node_index=self.node_names.index(node_name) + 1,
                node_name=node_name,
                host_network=bool(spec.get("hostNetwork")),
                host_pid=bool(spec.get("hostPID")),
                restart_policy=str(spec.get("restartPolicy") or "Always"),
            )
            self._pods[key] = run
            self._pending.pop(uid, None)
        self._pool.submit(self._start_pod, run, pod)

    def _schedule(self, namespace: str, name: str, uid: str) -> None:
        """Bind the pod to the node with the fewest pods (one binding at a time, so a burst spreads)."""
        with self._schedule_lock:
            counts = [self.pod_count(k) for k in range(1, len(self.node_names) + 1)]
            node = self.node_names[counts.index(min(counts))]
            with self._lock:
                self._pending[uid] = node
            bound = False
            with contextlib.suppress(ApiError):  # deleted or replaced meanwhile: nothing to bind
                current = self.store.get(PODS, namespace, name)
                if current["metadata"]["uid"] == uid and not current["spec"].get("nodeName"):
                    self.store.merge_patch(PODS, namespace, name, {"spec": {"nodeName": node}})
                    bound = True
            if not bound:
                with self._lock:
                    self._pending.pop(uid, None)

    # ---- starting and stopping ---------------------------------------------------------------

    def _start_pod(self, run: PodRun, pod: dict[str, Any]) -> None:
        with run.lock:
            if run.stopping:
                return
            try:
                self._setup_pod(run, pod)
            except (AddressError, OSError, RuntimeError) as exc:
                log.warning("pod %s/%s setup failed: %s", run.namespace, run.name, exc)
                run.failed = str(exc)
                if not run.containers:  # statuses that say why, for every container of the spec
                    run.containers = [
                        ContainerRun(
                            spec=c, program=images.Program([], "idle"), env={}, log_dir=Path("/nonexistent")
                        )
                        for c in pod["spec"].get("containers") or []
                    ]
                self._write_status(run)
                return
            self._write_status(run)
            for init in run.init_containers:
                self._launch(run, init)
        # init containers run to completion before the app containers (monitor loop drives that)

    def _setup_pod(self, run: PodRun, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        run.start_time = now_iso()
        if run.host_network:
            run.netns = self.fabric.node_netns(run.node_index)
            run.ip = self.fabric.addresses.bridge_ip(run.node_index)
        else:
            wanted = (meta.get("annotations") or {}).get(IP_ANNOTATION)
            run.ip = self.fabric.addresses.allocate(run.node_index, wanted)
            run.own_ip = True
            run.netns = self.fabric.add_pod(run.node_index, run.ip)
            if self.listener_factory is not None:
                run.close_listener = self.listener_factory(run.netns)
        pod_dir = self.state_dir / "pods" / f"{run.namespace}_{run.name}_{run.uid[:8]}"
        run.pod_dir = pod_dir
        run.mount_service_account = spec.get("automountServiceAccountToken") is not False
        empty_dirs = {}
        for volume in spec.get("volumes") or []:
            if "emptyDir" in volume:  # other volume types are not provided (docs/hollow.md)
                empty_dirs[volume["name"]] = pod_dir / "volumes" / volume["name"]
                empty_dirs[volume["name"]].mkdir(parents=True, exist_ok=True)
        for group, init in (("initContainers", True), ("containers", False)):
            for c in spec.get(group) or []:
                program = images.resolve(c, self.npc, init=init)
                cr = ContainerRun(
                    spec=c,
                    program=program,
                    env=self._env(run, pod, c),
                    log_dir=pod_dir / c["name"],
                    init=init,
                )
                cr.mounts = [
                    (str(empty_dirs[m["name"]]), str(m["mountPath"]))
                    for m in c.get("volumeMounts") or []
                    if m.get("name") in empty_dirs and m.get("mountPath")
                ]
                probe = c.get("readinessProbe") or {}
                if not init and (probe.get("exec") or {}).get("command"):
                    cr.readiness_exec = [str(a) for a in probe["exec"]["command"]]
                    cr.probe_period = float(probe.get("periodSeconds") or 10)
                    cr.probe_timeout = float(probe.get("timeoutSeconds") or 1)
                    cr.probe_due = time.monotonic() + float(probe.get("initialDelaySeconds") or 0)
                (run.init_containers if init else run.containers).append(cr)
        if not run.init_containers:
            run.started = True
            for cr in run.containers:
                self._launch(run, cr)

    def _env(self, run: PodRun, pod: dict[str, Any], c: dict[str, Any]) -> dict[str, str]:
        env = {
            "PATH": containers.CONTAINER_PATH,
            "HOME": "/root",
            "HOSTNAME": run.node_name if run.host_network else run.name,
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": "6443",
            "KUBERNETES_SERVICE_PORT_HTTPS": "6443",
            "HOLLOW_IMAGE": str(c.get("image") or ""),
            "PYTHONUNBUFFERED": "1",
            cleanup.CLUSTER_ENV: self.fabric.prefix,
        }
        fields = {
            "spec.nodeName": run.node_name,
            "metadata.name": run.name,
            "metadata.namespace": run.namespace,
            "status.podIP": str(run.ip),
            "status.hostIP": str(self.fabric.addresses.bridge_ip(run.node_index)),
            "spec.serviceAccountName": str(pod["spec"].get("serviceAccountName") or "default"),
        }
        for item in c.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
            else:
                path = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath", "")
                if path in fields:
                    env[item["name"]] = fields[path]
        return env

    def _launch(self, run: PodRun, cr: ContainerRun) -> None:
        sa = dict(self.service_account) if run.mount_service_account else {}
        if run.mount_service_account:
            sa["namespace"] = run.namespace
        ulogd = self._ulogd_conf if cr.program.role == "weave-npc" else None
        cr.terminated = None
        cr.ready = False
        cr.ready_scan_offset = 0
        cr.setup_done = False
        cr.restart_at = None
        log_path = cr.log_path()
        cr.proc = containers.launch(
            containers.LaunchSpec(
                netns=run.netns,
                argv=cr.program.argv,
                env=cr.env,
                service_account=sa,
                log_path=log_path,
                spec_path=cr.log_dir / "spec.json",
                ulogd_conf=ulogd,
                mounts=cr.mounts,
                hostname=run.node_name if run.host_network else run.name,
                own_pids=not run.host_pid,
            )
        )
        cr.started_at = now_iso()

    def _stop_pod(self, run: PodRun) -> None:
        with run.lock:
            run.stopping = True
            for cr in run.init_containers + run.containers:
                for proc in cr.execs:
                    containers.stop(proc, grace=0.5, whole_group=True)
                if cr.proc is not None:
                    containers.stop(cr.proc)
            if run.netns and not run.host_network:
                # anything that left its process group (daemonised children) still lives in the netns
                stragglers = set(netns.netns_pids(run.netns))
                if stragglers:
                    cleanup.stop_pids(stragglers, grace=1.0)
            if run.close_listener is not None:
                run.close_listener()
                run.close_listener = None
            if run.netns and not run.host_network:
                self.fabric.remove_pod(run.netns)
            if run.own_ip and run.ip is not None:
                self.fabric.addresses.release(run.ip)
                run.own_ip = False
            if run.pod_dir is not None:  # emptyDir volumes go with the pod; logs stay in the state dir
                shutil.rmtree(run.pod_dir / "volumes", ignore_errors=True)
        with self._lock:
            if self._pods.get((run.namespace, run.name)) is run:
                del self._pods[(run.namespace, run.name)]

    # ---- monitoring --------------------------------------------------------------------------

    def _monitor_loop(self) -> None:
        while not self._stop.wait(MONITOR_INTERVAL):
            with self._lock:
                runs = list(self._pods.values())
            for run in runs:
                if run.stopping or not run.netns or run.failed or not run.lock.acquire(blocking=False):
                    continue
                try:
                    if not run.stopping:
                        self._tick(run)
                except Exception:  # keep the monitor alive; the pod shows what it can
                    log.exception("monitor of pod %s/%s", run.namespace, run.name)
                finally:
                    run.lock.release()

    def _tick(self, run: PodRun) -> None:
        now = time.monotonic()
        if run.last_status is not None and self._steady(run):
            for cr in run.containers:  # readiness probes keep running on a ready pod
                self._maybe_probe(cr, now)
            return
        if not run.started:
            self._tick_init(run, now)
        else:
            for cr in run.containers:
                self._tick_container(run, cr, now)
        self._write_status(run)

    def _steady(self, run: PodRun) -> bool:
        """Nothing can change without a process exiting: every container runs and is ready, or every
        container has finished for good. Keeps the monitor cheap for many idle pods."""
        if not run.started:
            return False
        running = [cr.ready and not cr.probe_changed and cr.running() for cr in run.containers]
        if all(running):
            return True
        return all(
            cr.terminated is not None and not self._will_restart(run, cr.terminated["exitCode"])
            for cr in run.containers
        )

    def _tick_init(self, run: PodRun, now: float) -> None:
        for cr in run.init_containers:
            if cr.proc is None:
                return
            code = cr.proc.poll()
            if code is None:
                return
            if cr.terminated is None:
                cr.terminated = self._terminated(cr, code)
            if code != 0:
                if run.restart_policy == "Never":
                    return
                if cr.restart_at is None:
                    cr.restart_at = now + self._backoff(cr)
                if now >= cr.restart_at:
                    cr.last_terminated = cr.terminated
                    cr.restart_count += 1
                    self._launch(run, cr)
                return
        run.started = True
        for cr in run.containers:
            self._launch(run, cr)

    def _tick_container(self, run: PodRun, cr: ContainerRun, now: float) -> None:
        if cr.proc is None:
            return
        code = cr.proc.poll()
        if code is None:
            if cr.readiness_exec is not None:
                cr.probe_changed = False
                if self._set_up(cr):
                    self._maybe_probe(cr, now)
            elif not cr.ready:
                cr.ready = self._set_up(cr) and self._looks_ready(cr)
            return
        if cr.terminated is None:
            cr.terminated = self._terminated(cr, code)
            cr.ready = False
        if not self._will_restart(run, code):
            return
        if cr.restart_at is None:
            cr.restart_at = now + self._backoff(cr)
        if now >= cr.restart_at:
            cr.last_terminated = cr.terminated
            cr.restart_count += 1
            self._launch(run, cr)

    def _maybe_probe(self, cr: ContainerRun, now: float) -> None:
        if cr.readiness_exec is None or cr.probe_running or now < cr.probe_due or cr.proc is None:
            return
        cr.probe_running = True
        self._probes.submit(self._run_readiness_probe, cr, cr.proc)

    def _run_readiness_probe(self, cr: ContainerRun, proc: subprocess.Popen[bytes]) -> None:
        """One exec readiness probe (on its own pool: it may take up to timeoutSeconds)."""
        try:
            argv = (
                [
                    sys.executable if cr.readiness_exec[0] in ("python", "python3") else cr.readiness_exec[0],
                    *cr.readiness_exec[1:],
                ]
                if cr.readiness_exec
                else []
            )
            check = subprocess.Popen(
                ["nsenter", "--target", str(proc.pid), "--net", "--mount", "--uts", "--pid", "--", *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=cr.env,
                start_new_session=True,
            )
            try:
                ok = check.wait(timeout=cr.probe_timeout) == 0
            except subprocess.TimeoutExpired:
                containers.stop(check, grace=0, whole_group=True)
                ok = False
            if cr.proc is proc and proc.poll() is None and ok != cr.ready:
                cr.ready = ok
                cr.probe_changed = True
            # until the first success, probe often: a pod becomes Ready soon after its program is
            # (Kubernetes would wait periodSeconds; docs/hollow.md)
            cr.probe_due = time.monotonic() + (cr.probe_period if cr.ready else min(cr.probe_period, 0.2))
        finally:
            cr.probe_running = False

    @staticmethod
    def _backoff(cr: ContainerRun) -> float:
        return min(BACKOFF_MAX, BACKOFF_START * (2 ** min(cr.restart_count, 10)))

    @staticmethod
    def _will_restart(run: PodRun, code: int) -> bool:
        return run.restart_policy == "Always" or (run.restart_policy == "OnFailure" and code != 0)

    @staticmethod
    def _terminated(cr: ContainerRun, code: int) -> dict[str, Any]:
        return {
            "exitCode": code if code >= 0 else 128 - code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": cr.started_at,
            "finishedAt": now_iso(),
            "containerID": f"hollow://{cr.proc.pid if cr.proc else 0}",
        }

    @staticmethod
    def _set_up(cr: ContainerRun) -> bool:
        """The container's namespaces are ready: container_init has exec'd the program."""
        if cr.setup_done:
            return True
        if cr.proc is None:
            return False
        try:
            cmdline = Path(f"/proc/{cr.proc.pid}/cmdline").read_bytes()
        except OSError:
            return False
        # empty while an execve is still loading the image (Popen returns once exec has begun, before
        # container_init's own arguments are in place): not set up yet
        cr.setup_done = bool(cmdline) and SETUP_MODULE not in cmdline
        return cr.setup_done

    @staticmethod
    def _looks_ready(cr: ContainerRun) -> bool:
        """Up, and for the probe agent and the router stand-in: READY printed in its log."""
        waits_for_mark = cr.program.role == "weave-router" or (
            cr.program.role == "probe" and "serve" in cr.program.argv
        )
        if not waits_for_mark:
            return True
        start = max(0, cr.ready_scan_offset - len(READY_MARK))  # a mark split across two reads
        try:
            with open(cr.log_path(), "rb") as fh:
                fh.seek(start)
                data = fh.read()
        except OSError:
            return False
        cr.ready_scan_offset = start + len(data)
        return READY_LINE.search(data) is not None

    # ---- status ------------------------------------------------------------------------------

    def _container_status(self, run: PodRun, cr: ContainerRun) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": cr.name,
            "image": cr.spec.get("image", ""),
            "imageID": "",
            "restartCount": cr.restart_count,
            "ready": cr.ready,
        }
        if cr.proc is not None:
            status["containerID"] = f"hollow://{cr.proc.pid}"
        if run.failed:
            status["state"] = {"waiting": {"reason": "CreateContainerError", "message": run.failed}}
        elif cr.proc is None:
            status["state"] = {
                "waiting": {"reason": "PodInitializing" if not cr.init else "ContainerCreating"}
            }
        elif cr.terminated is not None:
            if cr.restart_at is not None:
                status["state"] = {
                    "waiting": {"reason": "CrashLoopBackOff" if cr.terminated["exitCode"] else "Completed"}
                }
                status["lastState"] = {"terminated": cr.terminated}
            else:
                status["state"] = {"terminated": cr.terminated}
        elif not cr.setup_done:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        else:
            status["state"] = {"running": {"startedAt": cr.started_at}}
        if "lastState" not in status and cr.last_terminated is not None:
            status["lastState"] = {"terminated": cr.last_terminated}
        status["started"] = cr.terminated is None and cr.setup_done
        return status

    def _phase(self, run: PodRun) -> str:
        if run.failed or not run.started:
            return "Pending"
        states = [
            (cr.terminated, self._will_restart(run, cr.terminated["exitCode"]) if cr.terminated else True)
            for cr in run.containers
        ]
        if all(t is not None and not again for t, again in states):
            return "Succeeded" if all(t and t["exitCode"] == 0 for t, _ in states) else "Failed"
        return "Running"

    def _write_status(self, run: PodRun) -> None:
        ready = run.started and not run.failed and all(cr.ready for cr in run.containers)
        initialized = run.started
        t = now_iso()

        def cond(kind: str, ok: bool, reason: str = "") -> dict[str, Any]:
            c: dict[str, Any] = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
            if reason and not ok:
                c["reason"] = reason
            return c

        host_ip = str(self.fabric.addresses.bridge_ip(run.node_index))
        status: dict[str, Any] = {
            "phase": self._phase(run),
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "startTime": run.start_time,
            "conditions": [
                cond("PodScheduled", True),
                cond("Initialized", initialized, "ContainersNotInitialized"),
                cond("ContainersReady", ready, "ContainersNotReady"),
                cond("Ready", ready, "ContainersNotReady"),
            ],
            "containerStatuses": [self._container_status(run, cr) for cr in run.containers],
            "qosClass": "BestEffort",
        }
        if run.init_containers:
            status["initContainerStatuses"] = [self._container_status(run, cr) for cr in run.init_containers]
        if run.ip is not None:
            status["podIP"] = str(run.ip)
            status["podIPs"] = [{"ip": str(run.ip)}]
        if run.failed:
            status["message"] = run.failed
            status["reason"] = "HollowSetupError"
        if status == run.last_status:
            return
        # compared without transition times (a shallow copy would share the condition dicts, get
        # the times added below, and then never equal the next computed status)
        run.last_status = copy.deepcopy(status)
        previous = run.last_written
        # transition times change only with the status itself
        for c in status["conditions"]:
            old = (
                next((o for o in previous["conditions"] if o["type"] == c["type"]), None)
                if previous
                else None
            )
            c["lastTransitionTime"] = old["lastTransitionTime"] if old and old["status"] == c["status"] else t
        run.last_written = status
        try:
            self.store.merge_patch(PODS, run.namespace, run.name, {"status": status}, status=True)
        except NotFound:
            pass
        except ApiError as exc:
            log.warning("status of pod %s/%s: %s", run.namespace, run.name, exc)

    # ---- PodRuntime --------------------------------------------------------------------------

    def _container(self, namespace: str, pod: str, container: str) -> tuple[PodRun, ContainerRun]:
        with self._lock:
            run = self._pods.get((namespace, pod))
        if run is None:
            raise ExecError(f'pod "{pod}" in namespace "{namespace}" is not running on a hollow node')
        for cr in run.containers + run.init_containers:
            if cr.name == container or not container:
                return run, cr
        raise ExecError(f'container "{container}" not found in pod "{pod}"')

    def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> subprocess.Popen[bytes]:
        _run, cr = self._container(namespace, pod, container)
        if not cr.running() or cr.proc is None or not self._set_up(cr):
            raise ExecError(f'container "{cr.name}" in pod "{pod}" is not running')
        if not command:
            raise ExecError("no command given")
        argv = [str(a) for a in command]
        if argv[0] in ("python", "python3"):
            argv[0] = sys.executable
        cr.execs = [p for p in cr.execs if p.poll() is None]
        proc = subprocess.Popen(
            ["nsenter", "--target", str(cr.proc.pid), "--net", "--mount", "--uts", "--pid", "--", *argv],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if tty else subprocess.PIPE,
            env=cr.env,
            start_new_session=True,
        )
        cr.execs.append(proc)  # stopped with the pod
        return proc

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        try:
            _, cr = self._container(namespace, pod, container)
        except ExecError:
            return None
        if previous:
            return cr.log_path(cr.restart_count - 1) if cr.restart_count > 0 else None
        path = cr.log_path()
        return path if path.exists() else None
