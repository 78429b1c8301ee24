"""Pod setup and teardown: network namespace and address, volumes, the container records, launches.

The two places other work keys on are their own functions: `PodSetup.pod_dir` (every per-pod host
path: logs, launch specs, emptyDir volumes) and `PodSetup.service_account_files` (the token and CA
a container gets mounted).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netpolcheck.hollow import cleanup, containers, images, netns
from netpolcheck.hollow.clock import now_iso
from netpolcheck.hollow.fabric import Fabric
from netpolcheck.hollow.images import busybox
from netpolcheck.hollow.ipam import IP_ANNOTATION
from netpolcheck.hollow.kubelet.records import ContainerRun, PodRun

# Opens the API listener inside a pod/node netns; returns the function that closes it.
ListenerFactory = Callable[[str], Callable[[], None]]


class PodSetup:
    def __init__(
        self,
        fabric: Fabric,
        state_dir: Path,
        npc: str,
        service_account: dict[str, str],
        listener_factory: ListenerFactory | None,
    ) -> None:
        self.fabric = fabric
        self.state_dir = state_dir
        self.npc = npc
        self.service_account = service_account  # token, ca.crt (namespace is added per pod)
        # (namespace, service account) -> that account's token; None: every pod gets service_account's
        self.service_account_token: Callable[[str, str], str] | None = None
        self.listener_factory = listener_factory
        self.ulogd_conf = state_dir / "ulogd.conf"
        self.ulogd_conf.write_text(containers.weave_ulogd_conf())
        self.busybox_bin = state_dir / "busybox-bin"
        busybox.write_applets(self.busybox_bin)

    # ---- the per-pod choices -----------------------------------------------------------------

    def pod_dir(self, run: PodRun) -> Path:
        """Where this pod's files live on the machine (logs, launch specs, emptyDir volumes)."""
        # keyed by namespace and the whole uid: no two pods (same name elsewhere, or recreated) share it
        return self.state_dir / "pods" / f"{run.namespace}_{run.name}_{run.uid}"

    def service_account_files(self, run: PodRun) -> dict[str, str]:
        """The files mounted at /var/run/secrets/kubernetes.io/serviceaccount/ (none when opted out)."""
        if not run.mount_service_account:
            return {}
        files = {**self.service_account, "namespace": run.namespace}
        if self.service_account_token is not None:
            files["token"] = self.service_account_token(run.namespace, run.service_account_name)
        return files

    # ---- setup -------------------------------------------------------------------------------

    def setup(self, run: PodRun, pod: dict[str, Any]) -> None:
        """Network, volumes and container records of `run`; app containers are launched when there are
        no init containers (the monitor launches them after the init containers otherwise)."""
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
        pod_dir = self.pod_dir(run)
        run.pod_dir = pod_dir
        run.mount_service_account = spec.get("automountServiceAccountToken") is not False
        run.service_account_name = str(
            spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        )
        # the pod's own /tmp, as a container's root file system gives it (`_` is in no volume name)
        own_tmp = pod_dir / "volumes" / "_tmp"
        own_tmp.mkdir(parents=True, exist_ok=True)
        empty_dirs = {}
        for volume in spec.get("volumes") or []:
            if "emptyDir" in volume:  # other volume types are not provided (docs/hollow.md)
                empty_dirs[volume["name"]] = pod_dir / "volumes" / volume["name"]
                empty_dirs[volume["name"]].mkdir(parents=True, exist_ok=True)
        for group, init in (("initContainers", True), ("containers", False)):
            for c in spec.get(group) or []:
                cr = self.container(run, c, init)
                cr.mounts = [
                    (str(empty_dirs[m["name"]]), str(m["mountPath"]))
                    for m in c.get("volumeMounts") or []
                    if m.get("name") in empty_dirs and m.get("mountPath")
                ]
                if not any(os.path.normpath(target) == "/tmp" for _, target in cr.mounts):
                    cr.mounts.insert(0, (str(own_tmp), "/tmp"))
                (run.init_containers if init else run.containers).append(cr)
        if not run.init_containers:
            run.started = True
            for cr in run.containers:
                self.launch(run, cr)

    def container(self, run: PodRun, c: dict[str, Any], init: bool) -> ContainerRun:
        """The run record of one container of the pod's spec (not started)."""
        program = images.resolve(c, self.npc, init=init)
        cr = ContainerRun(
            spec=c,
            program=program,
            env=self.env(run, c, program),
            log_dir=self.pod_dir(run) / c["name"],
            init=init,
        )
        probe = c.get("readinessProbe") or {}
        if not init and (probe.get("exec") or {}).get("command"):
            cr.readiness_exec = [str(a) for a in probe["exec"]["command"]]
            cr.probe_period = float(probe.get("periodSeconds") or 10)
            cr.probe_timeout = float(probe.get("timeoutSeconds") or 1)
            cr.probe_due = time.monotonic() + float(probe.get("initialDelaySeconds") or 0)
        return cr

    def placeholders(self, pod: dict[str, Any]) -> list[ContainerRun]:
        """Container records for a pod whose setup failed: statuses that say why, for each container."""
        return [
            ContainerRun(spec=c, program=images.Program([], "idle"), env={}, log_dir=Path("/nonexistent"))
            for c in pod["spec"].get("containers") or []
        ]

    def env(self, run: PodRun, c: dict[str, Any], program: images.Program) -> dict[str, str]:
        path = containers.CONTAINER_PATH
        if program.role == "busybox":
            path = f"{self.busybox_bin}:{path}"
        env = {
            "PATH": path,
            "HOME": "/root",
            "HOSTNAME": run.hostname,
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
            "spec.serviceAccountName": run.service_account_name,
        }
        for item in c.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
            else:
                path = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath", "")
                if path in fields:
                    env[item["name"]] = fields[path]
        return env

    # ---- containers --------------------------------------------------------------------------

    def launch(self, run: PodRun, cr: ContainerRun) -> None:
        """Start (or restart) one container; an image it cannot run is not started (ErrImagePull)."""
        if cr.image_error:
            return
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
                service_account=self.service_account_files(run),
                log_path=log_path,
                spec_path=cr.log_dir / "spec.json",
                ulogd_conf=self.ulogd_conf if cr.program.role == "weave-npc" else None,
                mounts=cr.mounts,
                hostname=run.hostname,
                own_pids=not run.host_pid,
            )
        )
        cr.container_id = f"hollow://{cr.proc.pid}"
        cr.started_at = now_iso()

    # ---- teardown ----------------------------------------------------------------------------

    def teardown(self, run: PodRun) -> None:
        """Stop every process of the pod and remove its network namespace (caller holds `run.lock`)."""
        run.stopping = True
        everyone = run.init_containers + run.containers + run.ephemeral_containers
        containers.stop_all([p for cr in everyone for p in cr.execs], grace=0.5, whole_group=True)
        containers.stop_all([cr.proc for cr in everyone if cr.proc is not None])
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
