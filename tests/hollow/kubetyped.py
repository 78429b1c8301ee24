"""Typed use of the kubernetes client in the hollow tests and benchmarks.

The client's annotations ask for model objects as request bodies (`body: V1Pod`), while it sends a plain
dict as it is (`ApiClient.sanitize_for_serialization`): the tests write manifests as dicts, so the server
sees exactly those fields. `as_body` says so once. Every field of the client's models is optional; the
readers below fail the test, naming the field, where the server left out one the test relies on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, cast

from kubernetes import client

T = TypeVar("T")
S = TypeVar("S", covariant=True)


def as_body(model: type[T], manifest: Mapping[str, Any]) -> T:
    """`manifest` as the request body the client's annotation names (`model`), sent unchanged."""
    return cast(T, manifest)


def present(value: T | None, what: str) -> T:
    assert value is not None, f"{what} is absent"
    return value


class _Object(Protocol):
    @property
    def metadata(self) -> client.V1ObjectMeta | None: ...


class _WithSpec(Protocol[S]):
    @property
    def spec(self) -> S | None: ...


class _WithStatus(Protocol[S]):
    @property
    def status(self) -> S | None: ...


def meta_of(obj: _Object) -> client.V1ObjectMeta:
    return present(obj.metadata, "metadata")


def name_of(obj: _Object) -> str:
    return present(meta_of(obj).name, "metadata.name")


def spec_of(obj: _WithSpec[S]) -> S:
    return present(obj.spec, "spec")


def status_of(obj: _WithStatus[S]) -> S:
    return present(obj.status, "status")


def pod_ready(pod: client.V1Pod) -> bool:
    """Running with condition Ready=True, as `kubectl wait --for=condition=Ready` reads it."""
    pod_status = status_of(pod)
    conditions = {c.type: c.status for c in pod_status.conditions or []}
    return pod_status.phase == "Running" and conditions.get("Ready") == "True"


def containers_of(pod: client.V1Pod) -> list[client.V1ContainerStatus]:
    """The pod's container statuses; [] while the kubelet has reported none."""
    return status_of(pod).container_statuses or []


def state_of(container: client.V1ContainerStatus, last: bool = False) -> client.V1ContainerState:
    """A container's state, or with `last` its previous one."""
    return present(container.last_state if last else container.state, "lastState" if last else "state")


def container_pid(container: client.V1ContainerStatus) -> int:
    """The host PID of a container's main process (the hollow kubelet's `hollow://PID` container id)."""
    return int(present(container.container_id, "containerId").removeprefix("hollow://"))


def ip_of(pod: client.V1Pod) -> str:
    """The pod's IP, once the kubelet has reported it."""
    return present(status_of(pod).pod_ip, "status.podIP")
