"""A case is data: a topology, what to probe, and steps, each followed by a check.

Namespaces and pods carry *logical* names (`x`, `a`); `naming.Naming` maps them to names unique to one
run of the case, so cases can run side by side. `validate` checks a case before anything is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True)
class NamespaceDef:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodDef:
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    node: int | None = None  # index into the cluster's nodes (modulo their number); None: scheduler
    ports: tuple[tuple[int, str], ...] = ((80, "TCP"), (81, "TCP"), (80, "UDP"), (81, "UDP"))
    host_network: bool = False  # in its node's network namespace: at most one such pod per node

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ProbeDef:
    """A port number, or a container port name resolved per destination (`serve-80-tcp`)."""

    port: int | str
    protocol: str = "TCP"


# ----- steps -------------------------------------------------------------------------------------


class _Step:
    """A step describes itself by one template over its own fields (`{self.name}`)."""

    DESCRIPTION: ClassVar[str]

    def describe(self) -> str:
        return self.DESCRIPTION.format(self=self)


@dataclass(frozen=True)
class ApplyPolicy(_Step):
    namespace: str
    manifest: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.manifest.get("metadata", {}).get("name", ""))

    DESCRIPTION: ClassVar[str] = "apply policy {self.namespace}/{self.name}"


@dataclass(frozen=True)
class DeletePolicy(_Step):
    namespace: str
    name: str

    DESCRIPTION: ClassVar[str] = "delete policy {self.namespace}/{self.name}"


class _Relabel(_Step):
    """Set labels (value) or remove them (None)."""

    labels: Mapping[str, str | None]

    @property
    def labels_text(self) -> str:
        return ",".join(f"{k}-" if v is None else f"{k}={v}" for k, v in sorted(self.labels.items()))


@dataclass(frozen=True)
class LabelPod(_Relabel):
    namespace: str
    name: str
    labels: Mapping[str, str | None]

    DESCRIPTION: ClassVar[str] = "label pod {self.namespace}/{self.name} {self.labels_text}"


@dataclass(frozen=True)
class LabelNamespace(_Relabel):
    name: str
    labels: Mapping[str, str | None]

    DESCRIPTION: ClassVar[str] = "label namespace {self.name} {self.labels_text}"


@dataclass(frozen=True)
class CreatePod(_Step):
    pod: PodDef

    DESCRIPTION: ClassVar[str] = "create pod {self.pod.key}"


@dataclass(frozen=True)
class DeletePod(_Step):
    namespace: str
    name: str

    DESCRIPTION: ClassVar[str] = "delete pod {self.namespace}/{self.name}"


@dataclass(frozen=True)
class CreateNamespace(_Step):
    namespace: NamespaceDef

    DESCRIPTION: ClassVar[str] = "create namespace {self.namespace.name}"


@dataclass(frozen=True)
class DeleteNamespace(_Step):
    name: str

    DESCRIPTION: ClassVar[str] = "delete namespace {self.name}"


@dataclass(frozen=True)
class RestartController(_Step):
    DESCRIPTION: ClassVar[str] = "restart the policy controller"


@dataclass(frozen=True)
class UpgradeWeave(_Step):
    """`watch`: probe continuously while the DaemonSet rolls (see verdict/watch.py)."""

    version: str
    watch: bool = True

    DESCRIPTION: ClassVar[str] = "upgrade Weave to {self.version}"


@dataclass(frozen=True)
class Hold(_Step):
    """Open a real TCP connection (and a UDP flow) from a pod to another's `port` and keep it going."""

    name: str
    namespace: str
    pod: str
    to_namespace: str
    to_pod: str
    port: int = 80
    udp_port: int | None = 80

    DESCRIPTION: ClassVar[str] = (
        "hold {self.name}: {self.namespace}/{self.pod} -> {self.to_namespace}/{self.to_pod}:{self.port}"
    )


@dataclass(frozen=True)
class Release(_Step):
    """Stop a held connection; its report (gaps per flow, how it ended) goes into the case result."""

    name: str

    DESCRIPTION: ClassVar[str] = "release {self.name}"


Step = (
    ApplyPolicy
    | DeletePolicy
    | LabelPod
    | LabelNamespace
    | CreatePod
    | DeletePod
    | CreateNamespace
    | DeleteNamespace
    | RestartController
    | UpgradeWeave
    | Hold
    | Release
)
CLUSTER_WIDE_STEPS = (RestartController, UpgradeWeave)
POLICY_STEPS = (ApplyPolicy, DeletePolicy)


@dataclass(frozen=True)
class Case:
    """`check_first`: check the topology before the first step (the "no policy" matrix)."""

    id: str
    namespaces: tuple[NamespaceDef, ...]
    pods: tuple[PodDef, ...]
    steps: tuple[Step, ...]
    probes: tuple[ProbeDef, ...] = (
        ProbeDef(80, "TCP"),
        ProbeDef(81, "TCP"),
        ProbeDef(80, "UDP"),
        ProbeDef(81, "UDP"),
    )
    check_first: bool = True
    weave_version: str | None = None  # the version the case starts from (the seed starts on 2.0.5)

    @property
    def cluster_wide(self) -> bool:
        """Cases that change the whole cluster cannot run beside others."""
        return self.weave_version is not None or any(isinstance(s, CLUSTER_WIDE_STEPS) for s in self.steps)

    @property
    def policy_case(self) -> bool:
        return any(isinstance(s, ApplyPolicy) for s in self.steps)
