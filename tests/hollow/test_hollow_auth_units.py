"""RBAC evaluation and request attributes of the hollow API server (no root, no cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from netpolcheck.hollow.api.auth import (
    ADMIN,
    Attributes,
    Auth,
    RbacAuthorizer,
    Tokens,
    User,
    attributes,
    forbidden,
    service_account_user,
)
from netpolcheck.hollow.api.errors import Unauthorized
from netpolcheck.hollow.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    NAMESPACES,
    ROLEBINDINGS,
    ROLES,
)
from netpolcheck.hollow.api.store import Store

RBAC = "rbac.authorization.k8s.io"


@pytest.mark.parametrize(
    ("method", "path", "watch", "want"),
    [
        ("GET", "/api/v1/pods", False, ("list", "", "pods", "", "", "")),
        ("GET", "/api/v1/pods", True, ("watch", "", "pods", "", "", "")),
        ("GET", "/api/v1/watch/namespaces/x/pods", False, ("watch", "", "pods", "", "x", "")),
        ("GET", "/api/v1/namespaces/x/pods/p", False, ("get", "", "pods", "", "x", "p")),
        ("POST", "/api/v1/namespaces/x/pods/p/exec", False, ("create", "", "pods", "exec", "x", "p")),
        ("GET", "/api/v1/namespaces/x/pods/p/log", False, ("get", "", "pods", "log", "x", "p")),
        (
            "DELETE",
            "/apis/networking.k8s.io/v1/namespaces/x/networkpolicies",
            False,
            ("deletecollection", "networking.k8s.io", "networkpolicies", "", "x", ""),
        ),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/x/daemonsets/d/status",
            False,
            ("patch", "apps", "daemonsets", "status", "x", "d"),
        ),
        ("GET", "/api/v1/namespaces", False, ("list", "", "namespaces", "", "", "")),
        ("DELETE", "/api/v1/namespaces/x", False, ("delete", "", "namespaces", "", "x", "x")),
        ("PUT", "/api/v1/namespaces/x/finalize", False, ("update", "", "namespaces", "finalize", "x", "x")),
        ("PUT", "/api/v1/namespaces/x/status", False, ("update", "", "namespaces", "status", "x", "x")),
    ],
)
def test_request_attributes_as_kubernetes_reads_them(
    method: str, path: str, watch: bool, want: tuple[str, ...]
) -> None:
    a = attributes(method, path, watch)
    assert a.resource_request
    assert (a.verb, a.api_group, a.resource, a.subresource, a.namespace, a.name) == want


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/openapi/v3"])
def test_discovery_paths_are_non_resource_requests(path: str) -> None:
    assert not attributes("GET", path, False).resource_request


def role(kind: Any, name: str, rules: list[dict[str, Any]], namespace: str | None = None) -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "rules": rules}


def binding(
    ref_kind: str, ref: str, subjects: list[dict[str, Any]], namespace: str | None = None
) -> dict[str, Any]:
    meta = {"name": f"bind-{ref}", **({"namespace": namespace} if namespace else {})}
    return {
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC, "kind": ref_kind, "name": ref},
        "subjects": subjects,
    }


@pytest.fixture
def store() -> Store:
    s = Store()
    s.create(NAMESPACES, {"metadata": {"name": "team"}})
    s.create(
        CLUSTERROLES,
        role(
            "ClusterRole",
            "reader",
            [
                {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["patch"]},
                {"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]},
            ],
        ),
    )
    s.create(
        CLUSTERROLEBINDINGS,
        binding(
            "ClusterRole",
            "reader",
            [
                {"kind": "ServiceAccount", "name": "npc", "namespace": "kube-system"},
                {"kind": "Group", "name": "readers"},
            ],
        ),
    )
    s.create(
        ROLES,
        role(
            "Role",
            "cm",
            [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": ["mine"],
                    "verbs": ["get", "update"],
                },
            ],
            "default",
        ),
    )
    # no namespace in the subject: a RoleBinding's own namespace
    s.create(ROLEBINDINGS, binding("Role", "cm", [{"kind": "ServiceAccount", "name": "app"}], "default"))
    s.create(ROLEBINDINGS, binding("ClusterRole", "reader", [{"kind": "User", "name": "alice"}], "team"))
    return s


def allowed(store: Store, user: Any, method: str, path: str) -> bool:
    return RbacAuthorizer(store).allowed(user, attributes(method, path, False))


def test_cluster_role_binding_grants_its_rules_everywhere_and_nothing_more(store: Store) -> None:
    npc = service_account_user("kube-system", "npc")
    assert allowed(store, npc, "GET", "/api/v1/pods")
    assert allowed(store, npc, "GET", "/api/v1/namespaces/x/pods/p/log")
    assert allowed(store, npc, "PATCH", "/apis/apps/v1/namespaces/x/daemonsets/d/status")  # */status
    assert allowed(store, npc, "GET", "/metrics") and allowed(store, npc, "GET", "/debug/pprof")
    assert not allowed(store, npc, "GET", "/metricsx")
    assert not allowed(store, npc, "DELETE", "/api/v1/namespaces/x/pods/p")
    assert not allowed(store, npc, "GET", "/api/v1/secrets")
    assert not allowed(store, npc, "POST", "/api/v1/namespaces/x/pods/p/exec")
    assert not allowed(store, service_account_user("other", "npc"), "GET", "/api/v1/pods")
    assert allowed(store, User("bob", ("readers",)), "GET", "/api/v1/pods")


def test_role_binding_grants_only_in_its_namespace_and_resource_names(store: Store) -> None:
    app = service_account_user("default", "app")
    assert allowed(store, app, "GET", "/api/v1/namespaces/default/configmaps/mine")
    assert not allowed(store, app, "GET", "/api/v1/namespaces/default/configmaps/other")
    assert not allowed(store, app, "GET", "/api/v1/namespaces/default/configmaps")  # a list has no name
    assert not allowed(store, app, "GET", "/api/v1/namespaces/kube-system/configmaps/mine")
    alice = User("alice", ("system:authenticated",))
    assert allowed(store, alice, "GET", "/api/v1/namespaces/team/pods")  # ClusterRole via RoleBinding
    assert not allowed(store, alice, "GET", "/api/v1/pods")
    assert not allowed(store, alice, "GET", "/api/v1/namespaces/default/pods")


def test_default_account_may_only_discover(store: Store) -> None:
    default = service_account_user("default", "default")
    assert allowed(store, default, "GET", "/apis") and allowed(store, default, "GET", "/api/v1")
    assert not allowed(store, default, "GET", "/api/v1/namespaces/default/pods")
    assert not allowed(
        store, default, "DELETE", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/p"
    )
    assert allowed(store, ADMIN, "DELETE", "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies/p")


def test_forbidden_messages_are_the_real_servers() -> None:
    user = service_account_user("ns", "default")
    listing = forbidden(user, attributes("GET", "/api/v1/pods", False))
    assert listing.code == 403 and listing.reason == "Forbidden"
    assert listing.message == (
        'pods is forbidden: User "system:serviceaccount:ns:default" cannot list resource "pods" in API '
        'group "" at the cluster scope'
    )
    assert listing.details == {"group": "", "kind": "pods"}
    exec_ = forbidden(user, attributes("POST", "/api/v1/namespaces/ns/pods/p/exec", False))
    assert exec_.message == (
        'pods "p" is forbidden: User "system:serviceaccount:ns:default" cannot create resource "pods/exec" '
        'in API group "" in the namespace "ns"'
    )
    path = forbidden(user, Attributes("get", "/metrics", False))
    assert path.message == 'forbidden: User "system:serviceaccount:ns:default" cannot get path "/metrics"'


def test_tokens_one_per_account_and_unknown_tokens_are_401() -> None:
    tokens = Tokens("admin-token")
    a, b = tokens.service_account_token("x", "default"), tokens.service_account_token("y", "default")
    assert a != b and tokens.service_account_token("x", "default") == a
    assert tokens.user(a) == service_account_user("x", "default") and tokens.user("admin-token") == ADMIN
    auth = Auth(tokens, None)
    assert auth.check("", "GET", "/version", False) is None  # public, anonymous
    for header in ("", "Bearer nope", "Basic abc"):
        with pytest.raises(Unauthorized):
            auth.check(header, "GET", "/api/v1/pods", False)
    assert auth.check(f"bearer {a}", "GET", "/api/v1/pods", False) == service_account_user("x", "default")
