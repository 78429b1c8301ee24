"""The kubelet of every hollow node: pods become network namespaces, containers become processes.

It reacts to pod changes through `Store.subscribe`, has unscheduled pods scheduled (scheduler.py),
starts pods on a small worker pool (podsetup.py), watches their processes from one monitor thread
(exits and restarts: restarts.py; readiness: readiness.py) and keeps pod status true (status.py) with
status merge patches. It is the API server's PodRuntime (runtime.py).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from netpolcheck.hollow import events
from netpolcheck.hollow.api.errors import ApiError, NotFound
from netpolcheck.hollow.api.resources import PODS, Resource
from netpolcheck.hollow.api.store import Store, WatchEvent, terminating
from netpolcheck.hollow.clock import now_iso
from netpolcheck.hollow.fabric import Fabric
from netpolcheck.hollow.ipam import AddressError
from netpolcheck.hollow.kubelet import ephemeral, nodes, readiness, restarts, status
from netpolcheck.hollow.kubelet.podsetup import ListenerFactory, PodSetup
from netpolcheck.hollow.kubelet.records import ContainerRun, PodRun
from netpolcheck.hollow.kubelet.runtime import ContainerRuntime
from netpolcheck.hollow.kubelet.scheduler import Scheduler

# The grace period a deleted pod reports (deletionGracePeriodSeconds); containers.stop's default.
STOP_GRACE_SECONDS = 2

log = logging.getLogger(__name__)

MONITOR_INTERVAL = 0.05
WORKERS = 8
# Stopping mostly waits (a main process that ignores SIGTERM gets its full grace period, as in
# Kubernetes): pods stop in parallel on their own pool, so a namespace of 30 pods takes one grace
# period rather than 30 / WORKERS of them.
STOP_WORKERS = 64
COMPONENT = "kubelet"


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
        self.pods = PodSetup(fabric, state_dir, npc, service_account, listener_factory)
        self.scheduler = Scheduler(store, node_names, self._running_on)
        self.runtime = ContainerRuntime(self._find)
        self._prober = readiness.Prober()
        self._pods: dict[tuple[str, str], PodRun] = {}
        self._lock = threading.Lock()  # guards _pods and _terminating
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="kubelet")
        self._stops = ThreadPoolExecutor(max_workers=STOP_WORKERS, thread_name_prefix="kubelet-stop")
        self._stop = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._monitor = threading.Thread(target=self._monitor_loop, name="kubelet-monitor", daemon=True)
        self._terminating: set[str] = set()  # uids of deleted pods being stopped

    # ---- nodes and lifecycle -----------------------------------------------------------------

    def register_nodes(self) -> None:
        nodes.register_nodes(self.store, self.fabric, self.node_names)

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
        list(self._stops.map(self._stop_pod, runs))
        self._pool.shutdown(wait=True)
        self._stops.shutdown(wait=True)
        self._prober.shutdown()
        if self._monitor.is_alive():
            self._monitor.join(timeout=5)

    def _running_on(self, node_index: int) -> int:
        with self._lock:
            return sum(1 for r in self._pods.values() if r.node_index == node_index and not r.stopping)

    def pod_count(self, node_index: int) -> int:
        return self.scheduler.pod_count(node_index)

    def _find(self, namespace: str, name: str) -> PodRun | None:
        with self._lock:
            return self._pods.get((namespace, name))

    # ---- PodRuntime (the API server's view) --------------------------------------------------

    def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> subprocess.Popen[bytes]:
        return self.runtime.exec(namespace, pod, container, command, stdin=stdin, tty=tty)

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        return self.runtime.log_path(namespace, pod, container, previous)

    # ---- events ------------------------------------------------------------------------------

    def _on_event(self, event: WatchEvent) -> None:
        if event.resource.key != PODS.key or self._stop.is_set():
            return
        meta = event.object.get("metadata", {})
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if event.type == "DELETED":
            self.scheduler.forget(meta.get("uid", ""))
            with self._lock:
                run = self._pods.get(key)
                if run is None or run.uid != meta.get("uid"):
                    return
                run.stopping = True
            self._stops.submit(self._stop_pod, run)
            return
        if terminating(event.object):
            self._terminate(key, str(meta.get("uid", "")))
            return
        self._admit(event.object)

    def _terminate(self, key: tuple[str, str], uid: str) -> None:
        """A pod marked for deletion: stop it, then let its object go (Store.deletion_gate)."""
        self.scheduler.forget(uid)
        with self._lock:
            if uid in self._terminating:
                return  # status writes while it stops arrive as more events
            self._terminating.add(uid)
            run = self._pods.get(key)
            if run is not None and run.uid == uid:
                run.stopping = True
            else:
                run = None  # never started here (or replaced): nothing to stop
        self._stops.submit(self._stop_then_remove, key, uid, run)

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
            if self.scheduler.wants(uid):
                self._pool.submit(
                    self.scheduler.schedule, meta.get("namespace", ""), meta.get("name", ""), uid
                )
            return
        if node_name not in self.node_names:
            return
        key = (meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            existing = self._pods.get(key)
            if existing is not None and existing.uid == uid:
                if ephemeral.specs_of(pod) != existing.ephemeral_specs:
                    self._pool.submit(self._update_ephemeral, existing, ephemeral.specs_of(pod))
                return
            if existing is not None:
                existing.stopping = True
                self._stops.submit(self._stop_pod, existing)
            run = PodRun(
                namespace=key[0],
                name=key[1],
                uid=uid,
                node_index=self.node_names.index(node_name) + 1,
                node_name=node_name,
                host_network=bool(spec.get("hostNetwork")),
                restart_policy=str(spec.get("restartPolicy") or "Always"),
                host_pid=bool(spec.get("hostPID")),
                ephemeral_specs=ephemeral.specs_of(pod),
            )
            self._pods[key] = run
        self.scheduler.forget(uid)
        self._pool.submit(self._start_pod, run, pod)

    def _update_ephemeral(self, run: PodRun, specs: list[dict[str, Any]]) -> None:
        """A pod got ephemeral containers: the monitor starts them (they can only be added)."""
        with run.lock:
            if len(specs) > len(run.ephemeral_specs):
                run.ephemeral_specs = specs

    # ---- starting and stopping ---------------------------------------------------------------

    def _start_pod(self, run: PodRun, pod: dict[str, Any]) -> None:
        with run.lock:
            if run.stopping:
                return
            try:
                self.pods.setup(run, pod)
            except (AddressError, OSError, RuntimeError) as exc:
                log.warning("pod %s/%s setup failed: %s", run.namespace, run.name, exc)
                run.failed = str(exc)
                if not run.containers:
                    run.containers = self.pods.placeholders(pod)
                self._write_status(run)
                return
            self._report_images(run, time.monotonic())
            self._write_status(run)
            for init in run.init_containers:
                self.pods.launch(run, init)
        # init containers run to completion before the app containers (monitor loop drives that)

    def _stop_pod(self, run: PodRun) -> None:
        with run.lock:
            self.pods.teardown(run)
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
        """One look at the pod (caller holds `run.lock`)."""
        now = time.monotonic()
        changed = ephemeral.start_pending(self.pods, run)
        changed = ephemeral.tick(run) or changed
        if run.last_status is not None and self._steady(run) and not changed:
            for cr in run.containers:  # readiness probes keep running on a ready pod
                self._prober.maybe_probe(run, cr, now)
            return
        self._report_images(run, now)
        if not run.started:
            self._tick_init(run, now)
        else:
            for cr in run.containers:
                self._tick_container(run, cr, now)
        self._write_status(run)

    @staticmethod
    def _steady(run: PodRun) -> bool:
        """Nothing can change without a process exiting: every container runs and is ready, or every
        container has finished for good. Keeps the monitor cheap for many idle pods."""
        if not run.started:
            return False
        if all(cr.ready and not cr.probe_changed and cr.running() for cr in run.containers):
            return True
        return all(
            cr.terminated is not None and not restarts.will_restart(run, cr, cr.terminated["exitCode"])
            for cr in run.containers
        )

    def _tick_init(self, run: PodRun, now: float) -> None:
        for cr in run.init_containers:
            if cr.proc is None:
                return
            code = cr.proc.poll()
            if code is None:
                return
            if code != 0:
                if restarts.after_exit(run, cr, code, now):
                    self.pods.launch(run, cr)
                return
            if cr.terminated is None:
                cr.terminated = restarts.terminated(cr, code)
        run.started = True
        for cr in run.containers:
            self.pods.launch(run, cr)

    def _tick_container(self, run: PodRun, cr: ContainerRun, now: float) -> None:
        if cr.proc is None:
            return
        code = cr.proc.poll()
        if code is None:
            if cr.readiness_exec is not None:
                cr.probe_changed = False
                if readiness.set_up(cr):
                    self._prober.maybe_probe(run, cr, now)
            elif not cr.ready:
                cr.ready = readiness.set_up(cr) and readiness.looks_ready(cr)
            return
        if restarts.after_exit(run, cr, code, now):
            self.pods.launch(run, cr)

    def _report_images(self, run: PodRun, now: float) -> None:
        """Images it cannot run: events as for a failed pull, and ErrImagePull turning into
        ImagePullBackOff after the first back-off (caller holds `run.lock`)."""
        for cr in run.init_containers + run.containers:
            if not cr.image_error or cr.pull_backoff:
                continue
            image = cr.spec.get("image", "")
            path = f"spec.{'initContainers' if cr.init else 'containers'}{{{cr.name}}}"
            if cr.pull_retry_at is None:
                cr.pull_retry_at = now + restarts.backoff(0)
                message = f'Failed to pull image "{image}": {cr.image_error}'
                self._event(run, "Failed", message, path)
                self._event(run, "Failed", "Error: ErrImagePull", path)
            elif now >= cr.pull_retry_at:
                cr.pull_backoff = True
                self._event(run, "BackOff", f'Back-off pulling image "{image}"', path)
                self._event(run, "Failed", "Error: ImagePullBackOff", path)

    def _event(self, run: PodRun, reason: str, message: str, field_path: str) -> None:
        events.record(
            self.store,
            run.involved(),
            reason,
            message,
            component=COMPONENT,
            warning=True,
            field_path=field_path,
        )

    # ---- status ------------------------------------------------------------------------------

    def _write_status(self, run: PodRun) -> None:
        """Write the pod's status if it changed (caller holds `run.lock`)."""
        host_ip = str(self.fabric.addresses.bridge_ip(run.node_index))
        current = status.pod_status(run, host_ip)
        if current == run.last_status:
            return
        run.last_status = current
        stamped = status.with_transition_times(current, run.last_written, now_iso())
        run.last_written = stamped
        try:
            self.store.merge_patch(PODS, run.namespace, run.name, {"status": stamped}, status=True)
        except NotFound:
            pass
        except ApiError as exc:
            log.warning("status of pod %s/%s: %s", run.namespace, run.name, exc)
