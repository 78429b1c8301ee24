"""Check a case before anything is created: names, references through the steps, ports, policies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from netpolcheck.errors import UsageError
from netpolcheck.verdict import case as c

# DNS-1123 label: what Kubernetes takes as a namespace or pod name
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


class CaseError(UsageError):
    """A case that cannot run as written: names the case, where, and what is wrong."""

    def __init__(self, case_id: str, where: str, problem: str) -> None:
        super().__init__(f"case {case_id}: {where}: {problem}")


def _name(case_id: str, where: str, name: str) -> None:
    if not _NAME.match(name):
        raise CaseError(case_id, where, f"{name!r} is not a valid name (lower-case DNS label)")


def _labels(case_id: str, where: str, labels: Mapping[str, str | None], removable: bool = False) -> None:
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise CaseError(case_id, where, f"invalid label key {key!r}")
        if value is None and removable:
            continue
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise CaseError(case_id, where, f"invalid value {value!r} for label {key!r}")


def _ports(case_id: str, where: str, ports: tuple[tuple[int, str], ...]) -> None:
    for number, protocol in ports:
        if not 1 <= number <= 65535:
            raise CaseError(case_id, where, f"port {number} out of 1-65535")
        if protocol not in c.PROTOCOLS:
            raise CaseError(
                case_id, where, f"unknown protocol {protocol!r}; use one of {', '.join(c.PROTOCOLS)}"
            )


def _policy(case_id: str, where: str, manifest: Mapping[str, Any], namespace: str) -> None:
    if manifest.get("kind") != "NetworkPolicy":
        raise CaseError(case_id, where, "manifest kind must be NetworkPolicy")
    metadata = manifest.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        raise CaseError(case_id, where, "manifest needs metadata.name")
    _name(case_id, where, metadata["name"])
    if metadata.get("namespace") not in (None, namespace):
        raise CaseError(
            case_id, where, f"metadata.namespace {metadata['namespace']!r} differs from the step's"
        )
    if not isinstance(manifest.get("spec"), Mapping):
        raise CaseError(case_id, where, "manifest needs a spec")


class _World:
    """Which namespaces, pods and policies exist at each step of the case."""

    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        self.namespaces: set[str] = set()
        self.pods: set[tuple[str, str]] = set()
        self.policies: set[tuple[str, str]] = set()
        self.holds: set[str] = set()

    def add_namespace(self, where: str, ns: c.NamespaceDef) -> None:
        _name(self.case_id, where, ns.name)
        _labels(self.case_id, where, ns.labels)
        if ns.name in self.namespaces:
            raise CaseError(self.case_id, where, f"namespace {ns.name} exists already")
        self.namespaces.add(ns.name)

    def add_pod(self, where: str, pod: c.PodDef) -> None:
        self.need_namespace(where, pod.namespace)
        _name(self.case_id, where, pod.name)
        _labels(self.case_id, where, pod.labels)
        _ports(self.case_id, where, pod.ports)
        if (pod.namespace, pod.name) in self.pods:
            raise CaseError(self.case_id, where, f"pod {pod.key} exists already")
        self.pods.add((pod.namespace, pod.name))

    def need_namespace(self, where: str, name: str) -> None:
        if name not in self.namespaces:
            raise CaseError(self.case_id, where, f"no namespace {name!r} at this step")

    def need_pod(self, where: str, namespace: str, name: str) -> None:
        if (namespace, name) not in self.pods:
            raise CaseError(self.case_id, where, f"no pod {namespace}/{name} at this step")

    def step(self, where: str, step: c.Step) -> None:
        match step:
            case c.ApplyPolicy(namespace=ns, manifest=manifest):
                self.need_namespace(where, ns)
                _policy(self.case_id, where, manifest, ns)
                self.policies.add((ns, step.name))
            case c.DeletePolicy(namespace=ns, name=name):
                if (ns, name) not in self.policies:
                    raise CaseError(self.case_id, where, f"no policy {ns}/{name} at this step")
                self.policies.discard((ns, name))
            case c.LabelPod(namespace=ns, name=name, labels=labels):
                self.need_pod(where, ns, name)
                _labels(self.case_id, where, labels, removable=True)
            case c.LabelNamespace(name=name, labels=labels):
                self.need_namespace(where, name)
                _labels(self.case_id, where, labels, removable=True)
            case c.CreatePod(pod=pod):
                self.add_pod(where, pod)
            case c.DeletePod(namespace=ns, name=name):
                self.need_pod(where, ns, name)
                self.pods.discard((ns, name))
            case c.CreateNamespace(namespace=ns):
                self.add_namespace(where, ns)
            case c.DeleteNamespace(name=name):
                self.need_namespace(where, name)
                self.namespaces.discard(name)
                self.pods = {p for p in self.pods if p[0] != name}
                self.policies = {p for p in self.policies if p[0] != name}
            case c.UpgradeWeave(version=version):
                if not re.match(r"^\d+\.\d+\.\d+$", version):
                    raise CaseError(self.case_id, where, f"Weave version {version!r} is not X.Y.Z")
            case c.RestartController():
                pass
            case c.Hold(name=name):
                _name(self.case_id, where, name)
                self.need_pod(where, step.namespace, step.pod)
                self.need_pod(where, step.to_namespace, step.to_pod)
                _ports(self.case_id, where, ((step.port, "TCP"),))
                if name in self.holds:
                    raise CaseError(self.case_id, where, f"hold {name} is running already")
                self.holds.add(name)
            case c.Release(name=name):
                if name not in self.holds:
                    raise CaseError(self.case_id, where, f"no hold {name} at this step")
                self.holds.discard(name)


def validate(case: c.Case) -> c.Case:
    """Return `case` when it can run; raise CaseError naming the first problem otherwise."""
    if not re.match(r"^[a-z0-9][-a-z0-9]*$", case.id):
        raise CaseError(case.id, "id", "use lower-case letters, digits and '-'")
    world = _World(case.id)
    for i, ns in enumerate(case.namespaces):
        world.add_namespace(f"namespaces[{i}]", ns)
    for i, pod in enumerate(case.pods):
        world.add_pod(f"pods[{i}]", pod)
    if not case.probes:
        raise CaseError(case.id, "probes", "nothing to probe")
    for i, probe in enumerate(case.probes):
        if isinstance(probe.port, int):
            _ports(case.id, f"probes[{i}]", ((probe.port, probe.protocol),))
        elif probe.protocol not in c.PROTOCOLS:
            raise CaseError(case.id, f"probes[{i}]", f"unknown protocol {probe.protocol!r}")
    if not case.steps and not case.check_first:
        raise CaseError(case.id, "steps", "no step and no first check: the case checks nothing")
    for i, step in enumerate(case.steps):
        world.step(f"steps[{i}] ({step.describe()})", step)
    return case
