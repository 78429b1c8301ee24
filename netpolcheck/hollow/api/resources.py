"""What the hollow API server serves: storage resources and the group versions they appear under.

Storage is keyed by (group, plural) of the canonical group; a resource served under another group
version as well (networkpolicies and daemonsets under extensions/v1beta1) shares that one storage.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    """One kind of stored object. `group` is the storage group ("" for core)."""

    group: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    singular: str = ""

    @property
    def api_version(self) -> str:
        """The canonical apiVersion stored objects carry."""
        return CANONICAL_VERSION[self.group]

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)


CANONICAL_VERSION = {
    "": "v1",
    "apps": "apps/v1",
    "networking.k8s.io": "networking.k8s.io/v1",
    "rbac.authorization.k8s.io": "rbac.authorization.k8s.io/v1",
    "policy": "policy/v1",
    "coordination.k8s.io": "coordination.k8s.io/v1",
}

NAMESPACES = Resource("", "namespaces", "Namespace", False, ("ns",), True)
PODS = Resource("", "pods", "Pod", True, ("po",), True)
NODES = Resource("", "nodes", "Node", False, ("no",), True)
SERVICEACCOUNTS = Resource("", "serviceaccounts", "ServiceAccount", True, ("sa",))
CONFIGMAPS = Resource("", "configmaps", "ConfigMap", True, ("cm",))
SECRETS = Resource("", "secrets", "Secret", True)
EVENTS = Resource("", "events", "Event", True, ("ev",))
SERVICES = Resource("", "services", "Service", True, ("svc",), True)
ENDPOINTS = Resource("", "endpoints", "Endpoints", True, ("ep",))
DAEMONSETS = Resource("apps", "daemonsets", "DaemonSet", True, ("ds",), True)
DEPLOYMENTS = Resource("apps", "deployments", "Deployment", True, ("deploy",), True)
CONTROLLERREVISIONS = Resource("apps", "controllerrevisions", "ControllerRevision", True)
NETWORKPOLICIES = Resource("networking.k8s.io", "networkpolicies", "NetworkPolicy", True, ("netpol",))
ROLES = Resource("rbac.authorization.k8s.io", "roles", "Role", True)
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "rolebindings", "RoleBinding", True)
CLUSTERROLES = Resource("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", False)
CLUSTERROLEBINDINGS = Resource(
    "rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", False
)
PODDISRUPTIONBUDGETS = Resource("policy", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), True)
LEASES = Resource("coordination.k8s.io", "leases", "Lease", True)

STORED: tuple[Resource, ...] = (
    NAMESPACES,
    PODS,
    NODES,
    SERVICEACCOUNTS,
    CONFIGMAPS,
    SECRETS,
    EVENTS,
    SERVICES,
    ENDPOINTS,
    DAEMONSETS,
    DEPLOYMENTS,
    CONTROLLERREVISIONS,
    NETWORKPOLICIES,
    ROLES,
    ROLEBINDINGS,
    CLUSTERROLES,
    CLUSTERROLEBINDINGS,
    PODDISRUPTIONBUDGETS,
    LEASES,
)

# Subresources served per storage resource (beyond `status` where has_status).
SUBRESOURCES: dict[tuple[str, str], tuple[str, ...]] = {
    PODS.key: ("status", "exec", "log", "ephemeralcontainers"),
}

_RBAC = (ROLES, ROLEBINDINGS, CLUSTERROLES, CLUSTERROLEBINDINGS)

# group version -> resources served there.
SERVED: dict[str, tuple[Resource, ...]] = {
    "v1": (NAMESPACES, PODS, NODES, SERVICEACCOUNTS, CONFIGMAPS, SECRETS, EVENTS, SERVICES, ENDPOINTS),
    "apps/v1": (DAEMONSETS, DEPLOYMENTS, CONTROLLERREVISIONS),
    "extensions/v1beta1": (DAEMONSETS, NETWORKPOLICIES),
    "networking.k8s.io/v1": (NETWORKPOLICIES,),
    "rbac.authorization.k8s.io/v1": _RBAC,
    "rbac.authorization.k8s.io/v1beta1": _RBAC,
    "policy/v1": (PODDISRUPTIONBUDGETS,),
    "coordination.k8s.io/v1": (LEASES,),
}

# group -> preferred version first (the order discovery lists them in).
GROUP_VERSIONS: dict[str, tuple[str, ...]] = {
    "apps": ("v1",),
    "extensions": ("v1beta1",),
    "networking.k8s.io": ("v1",),
    "rbac.authorization.k8s.io": ("v1", "v1beta1"),
    "policy": ("v1",),
    "coordination.k8s.io": ("v1",),
}


def served(group_version: str, plural: str) -> Resource | None:
    """The storage resource behind `plural` in `group_version`, or None if not served there."""
    for res in SERVED.get(group_version, ()):
        if res.plural == plural:
            return res
    return None


def by_kind(api_version: str, kind: str) -> Resource | None:
    for res in SERVED.get(api_version, ()):
        if res.kind == kind:
            return res
    return None
