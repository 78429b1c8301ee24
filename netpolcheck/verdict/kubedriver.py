"""`Driver` over `netpolcheck.kube`: the engine's cluster operations on a real (or embedded) cluster."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from netpolcheck.errors import UsageError
from netpolcheck.kube import deleting, execing, fetching, namespaces, patching, probepods, snapshot, weave
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.creating import create_or_replace
from netpolcheck.kube.objects import ObjectRef
from netpolcheck.verdict.driver import (
    AgentAnswer,
    ClusterInfo,
    NoResidentAgent,
    PodSpec,
    ProbeResult,
    ProbeTarget,
    Stagger,
)
from netpolcheck.verdict.forensics import lines_since

POLICY_API = "networking.k8s.io/v1"
SHARED_CLOCK_KINDS = frozenset({"hollow", "kind"})  # their pods run on this machine's kernel
TIMELINE_WAIT = 10.0  # the agent waits at most this long for the stopped watch to end
CONFIRM_RETRIES = 7  # the confirmation probes as a one-shot `probe` does (its default retries)
# the ports manifests/probe/pod.yaml serves
TEMPLATE_PORTS = frozenset({(80, "TCP"), (81, "TCP"), (80, "UDP"), (81, "UDP")})


def _hold_path(name: str) -> str:
    """The hold's status file in the pod (the template mounts an emptyDir at /tmp)."""
    return f"/tmp/netpolcheck-hold-{name}.json"


class KubeDriver:
    """`kind` names the provisioner (hollow, kind, kops, existing); `run` owns the namespaces it creates."""

    def __init__(
        self,
        api: KubeApi,
        kind: str,
        run: namespaces.Run,
        probe_image: str = probepods.DEFAULT_PROBE_IMAGE,
        timeout: float = 180.0,
    ) -> None:
        self.api = api
        self.kind = kind
        self.run = run
        self.probe_image = probe_image
        self.timeout = timeout
        self._nodes: tuple[str, ...] | None = None
        self._kubernetes: str | None = None
        self._exec_clients: list[KubeApi] = []  # every exec client made (closed by close())
        self._idle_exec_clients: list[KubeApi] = []  # of those, the ones no exec uses now
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def exec_client(self) -> Iterator[KubeApi]:
        """A client for one exec, used by nobody else meanwhile: the kubernetes client's `stream()` swaps
        the request function of the client it uses while it runs, so concurrent execs on one shared
        client can leave it speaking websocket to every later plain request. Clients are kept and
        handed out again (not made per thread: the probers' thread pools are made per round, and a
        new client costs a kubeconfig parse and a TLS handshake, about 0.4 s on the first exec)."""
        if self.api.kubeconfig is None:
            raise UsageError("exec needs a client made from a kubeconfig")
        with self._lock:
            api = self._idle_exec_clients.pop() if self._idle_exec_clients else None
        if api is None:
            api = KubeApi.from_kubeconfig(self.api.kubeconfig, self.api.context)
            with self._lock:
                self._exec_clients.append(api)
        try:
            yield api
        finally:
            with self._lock:
                if api in self._exec_clients:  # not closed meanwhile
                    self._idle_exec_clients.append(api)

    def close(self) -> None:
        """Close the exec clients (the shared one belongs to the caller)."""
        with self._lock:
            clients, self._exec_clients, self._idle_exec_clients = self._exec_clients, [], []
        for api in clients:
            api.close()

    def info(self) -> ClusterInfo:
        if self._nodes is None:
            self._nodes = tuple(probepods.schedulable_nodes(self.api))
        if self._kubernetes is None:
            self._kubernetes = fetching.server_version(self.api) or "unknown"
        return ClusterInfo(self.kind, self._kubernetes, weave.installed_version(self.api), self._nodes)

    # ----- namespaces and pods -----------------------------------------------------------------------

    def create_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        namespaces.create_namespace(self.api, self.run, name, labels, exact_name=True)

    def delete_namespace(self, name: str) -> None:
        deleting.delete_and_wait(self.api, [namespaces.ref(name)], timeout=self.timeout)
        if name in self.run.created:
            self.run.created.remove(name)

    def label_namespace(self, name: str, labels: Mapping[str, str | None]) -> None:
        patching.label(self.api, namespaces.ref(name), labels)

    def create_pods(self, pods: Sequence[PodSpec]) -> None:
        for pod in pods:
            extra = set(pod.ports) - TEMPLATE_PORTS
            if extra:
                raise UsageError(
                    f"pod {pod.namespace}/{pod.name}: the probe pod template does not serve {extra}"
                )
        specs = [probepods.PodSpec(p.namespace, p.name, p.node, dict(p.labels), p.host_network) for p in pods]
        probepods.create_probe_pods(self.api, specs, self.probe_image, self.timeout)

    def delete_pod(self, namespace: str, name: str) -> None:
        deleting.delete_and_wait(self.api, [probepods.pod_ref(namespace, name)], timeout=self.timeout)

    def label_pod(self, namespace: str, name: str, labels: Mapping[str, str | None]) -> None:
        patching.label(self.api, probepods.pod_ref(namespace, name), labels)

    # ----- policies ----------------------------------------------------------------------------------

    def apply_policy(self, namespace: str, manifest: Mapping[str, Any]) -> None:
        body = dict(manifest)
        body["metadata"] = {**body["metadata"], "namespace": namespace}
        create_or_replace(self.api, body)

    def delete_policy(self, namespace: str, name: str) -> None:
        deleting.delete(self.api, ObjectRef(POLICY_API, "NetworkPolicy", name, namespace))

    # ----- Weave ---------------------------------------------------------------------------------------

    def restart_policy_controller(self) -> None:
        """Delete every weave-net pod (the DaemonSet starts new ones) and wait until Weave is healthy."""
        version = weave.installed_version(self.api)
        pods = [probepods.pod_ref(weave.NAMESPACE, p.pod) for p in weave.running(self.api).values()]
        deleting.delete_and_wait(self.api, pods, timeout=self.timeout)
        weave.wait_healthy(self.api, version, self.timeout)

    def upgrade_weave(self, version: str) -> None:
        if weave.installed_version(self.api) is None:
            weave.install(self.api, version, timeout=self.timeout)
        else:
            weave.upgrade(self.api, version, timeout=self.timeout)

    # ----- observing ---------------------------------------------------------------------------------

    def snapshot(self, namespaces: Sequence[str]) -> dict[str, Any]:
        return snapshot.snapshot(self.api, namespaces)

    def probe(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], timeout: float
    ) -> list[ProbeResult]:
        with self.exec_client() as api:
            return execing.probe(api, (namespace, pod), targets, timeout=timeout)

    @property
    def shared_clock(self) -> bool:
        return self.kind in SHARED_CLOCK_KINDS

    def _ask(self, namespace: str, pod: str, request: dict[str, Any], wait: float) -> AgentAnswer:
        """One exec handing `request` to the pod's resident agent (the relay, `execing.ask`)."""
        try:
            with self.exec_client() as api:
                answer = execing.ask(api, (namespace, pod), request, wait)
        except execing.NoResidentAgent as exc:
            raise NoResidentAgent(str(exc)) from None
        return AgentAnswer(answer.document, answer.sent, answer.returned)

    def watch(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], stagger: Stagger, limit: float
    ) -> AgentAnswer:
        request = {"op": "watch", "targets": list(targets), **stagger.fields(), "limit": limit}
        return self._ask(namespace, pod, request, 0.0)

    def settle(
        self,
        namespace: str,
        pod: str,
        targets: Sequence[ProbeTarget],
        stagger: Stagger,
        deadline: float,
        watch: str | None,
        confirm: float | None = None,
    ) -> AgentAnswer:
        """An agent older than `confirm_timeout` ignores it: its answer has no `confirm`, and the engine
        then confirms those cells with a full round of its own."""
        request: dict[str, Any] = {
            "op": "settle",
            "targets": list(targets),
            **stagger.fields(),
            "deadline": deadline,
            "limit": deadline + stagger.silence + 5,
        }
        if watch is not None:
            request["watch"] = watch
        wait = deadline + stagger.silence
        if confirm is not None:
            request.update(confirm_timeout=confirm, retries=CONFIRM_RETRIES)
            wait += confirm * 4
        return self._ask(namespace, pod, request, wait)

    def stop_watch(self, namespace: str, pod: str, watch: str) -> None:
        self._ask(namespace, pod, {"op": "stop", "watch": watch}, 0.0)

    def timeline(self, namespace: str, pod: str, watch: str) -> AgentAnswer:
        return self._ask(namespace, pod, {"op": "timeline", "watch": watch}, TIMELINE_WAIT)

    def _agent(self, namespace: str, pod: str, args: list[str], what: str) -> dict[str, Any]:
        command = ["python", "-m", "netpolcheck.probe", *args]
        with self.exec_client() as api:
            result = execing.exec_in(api, (namespace, pod), command, timeout=60).check(what)
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def hold_start(
        self, namespace: str, pod: str, ip: str, port: int, udp_port: int | None, name: str
    ) -> None:
        args = ["hold", "--background", "--ip", ip, "--port", str(port), "--status", _hold_path(name)]
        if udp_port is not None:
            args += ["--udp-port", str(udp_port)]
        status = self._agent(namespace, pod, args, f"hold {name} in {namespace}/{pod}")
        if status.get("state") != "running":
            raise RuntimeError(f"hold {name} in {namespace}/{pod} did not start: {status.get('ended')}")

    def hold_stop(self, namespace: str, pod: str, name: str) -> dict[str, Any]:
        return self._agent(namespace, pod, ["hold-stop", "--status", _hold_path(name)], f"hold-stop {name}")

    def journal(self, namespace: str, pod: str, since: float) -> list[dict[str, Any]]:
        command = ["python", "-m", "netpolcheck.probe", "journal", "--since", f"{since:.3f}"]
        with self.exec_client() as api:
            result = execing.exec_in(api, (namespace, pod), command, timeout=60).check(
                f"journal of {namespace}/{pod}"
            )
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def blocked_lines(self, since: float) -> list[str]:
        return lines_since(weave.blocked_lines(self.api), since)
