"""Who is asking (bearer tokens) and may they (RBAC), as a real API server decides it.

Tokens: one admin token (the kubeconfig's user, group `system:masters`: everything, as on a real
cluster) and one token per service account, made on first use (`Tokens.service_account_token`), which
the kubelet mounts into that account's pods. Tokens live only in the daemon's memory and in the
root-only state dir; the store never sees them.

Authorization evaluates the RBAC objects stored in the API (ClusterRole, Role, ClusterRoleBinding,
RoleBinding) the way Kubernetes' RBAC authorizer does, plus the two bootstrap grants every real
cluster has for authenticated users (`system:discovery`, `system:public-info-viewer`: the discovery
and version paths). Nothing else is built in: an account no binding names may do nothing (403 with the
real server's Status body), so a pod's default token cannot delete the policy that isolates it.
Aggregated ClusterRoles (`aggregationRule`) and the bootstrap roles `view`/`edit`/`admin` are not
provided.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from netpolcheck.hollow.api.errors import ApiError, Unauthorized
from netpolcheck.hollow.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    ROLEBINDINGS,
    ROLES,
    Resource,
)

# Like a real cluster with default RBAC, these answer anonymous requests (a wrong token still gets 401).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/version"})
# system:discovery and system:public-info-viewer, bound to system:authenticated on every real cluster.
DISCOVERY_URLS = ("/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/")
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


ADMIN = User("kubernetes-admin", (MASTERS, AUTHENTICATED))


def service_account_user(namespace: str, name: str) -> User:
    return User(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Tokens:
    """Bearer token -> user. Kept as digests; lookups compare in constant time."""

    def __init__(self, admin_token: str) -> None:
        self._lock = threading.Lock()
        self._users: dict[bytes, User] = {_digest(admin_token): ADMIN}
        self._accounts: dict[tuple[str, str], str] = {}

    def service_account_token(self, namespace: str, name: str) -> str:
        """The token of one service account (made on first use, the same afterwards)."""
        with self._lock:
            token = self._accounts.get((namespace, name))
            if token is None:
                token = secrets.token_urlsafe(32)
                self._accounts[(namespace, name)] = token
                self._users[_digest(token)] = service_account_user(namespace, name)
            return token

    def user(self, token: str) -> User | None:
        wanted = _digest(token)
        with self._lock:
            found = None
            for digest, user in self._users.items():  # every entry compared: no early exit to time
                if hmac.compare_digest(digest, wanted):
                    found = user
            return found


@dataclass(frozen=True)
class Attributes:
    """What a request asks for, as Kubernetes' RequestInfo describes it."""

    verb: str
    path: str
    resource_request: bool
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def attributes(method: str, path: str, watch: bool) -> Attributes:
    """Kubernetes' request info for `method path`: a resource request under /api/v1 or /apis/G/V with at
    least a resource, anything else (discovery, /version) a non-resource request."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return Attributes(verb=_VERBS.get(method, "get"), path=path, resource_request=False)
    if rest[0] == "watch":  # the legacy /api/v1/watch/... form
        watch, rest = True, rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) >= 2:
        namespace = rest[1]  # a namespace object (and its status, finalize) is in its own namespace
        if len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    if not rest:
        return Attributes(verb=_VERBS.get(method, "get"), path=path, resource_request=False)
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if method in ("GET", "HEAD"):
        verb = "watch" if watch else ("get" if name else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _VERBS.get(method, method.lower())
    return Attributes(verb, path, True, group, resource, subresource, namespace, name)


class _Lister(Protocol):
    def list(self, res: Resource, namespace: str | None = None) -> tuple[list[dict[str, Any]], int]: ...


def _subject_matches(subject: dict[str, Any], user: User, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    """One PolicyRule against one request (Kubernetes' rbac RuleAllows)."""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        return any(
            url == "*" or url == attrs.path or (url.endswith("*") and attrs.path.startswith(url[:-1]))
            for url in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.api_group not in groups:
        return False
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resources = rule.get("resources") or []
    if not any(
        r in ("*", combined) or (attrs.subresource and r == f"*/{attrs.subresource}") for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


class RbacAuthorizer:
    """Evaluates the RBAC objects in the store for every request (they may change at any time)."""

    def __init__(self, store: _Lister) -> None:
        self.store = store

    def allowed(self, user: User, attrs: Attributes) -> bool:
        if MASTERS in user.groups:
            return True
        discovery = {"verbs": ["get"], "nonResourceURLs": list(DISCOVERY_URLS)}
        if not attrs.resource_request and AUTHENTICATED in user.groups and rule_allows(discovery, attrs):
            return True
        return any(rule_allows(rule, attrs) for rule in self._rules(user, attrs.namespace))

    def _rules(self, user: User, namespace: str) -> Iterable[dict[str, Any]]:
        bindings, _ = self.store.list(CLUSTERROLEBINDINGS)
        for binding in bindings:
            if any(_subject_matches(s, user, "") for s in binding.get("subjects") or []):
                yield from self._role_rules(binding.get("roleRef") or {}, None)
        if not namespace:
            return
        bindings, _ = self.store.list(ROLEBINDINGS, namespace)
        for binding in bindings:
            if any(_subject_matches(s, user, namespace) for s in binding.get("subjects") or []):
                yield from self._role_rules(binding.get("roleRef") or {}, namespace)

    def _role_rules(self, ref: dict[str, Any], namespace: str | None) -> list[dict[str, Any]]:
        kind, name = ref.get("kind"), ref.get("name")
        if kind == "ClusterRole":
            roles, _ = self.store.list(CLUSTERROLES)
        elif kind == "Role" and namespace:
            roles, _ = self.store.list(ROLES, namespace)
        else:
            return []
        for role in roles:
            if (role.get("metadata") or {}).get("name") == name:
                return [r for r in role.get("rules") or [] if isinstance(r, dict)]
        return []


def forbidden(user: User, attrs: Attributes) -> Forbidden:
    """403 with the message and details a real API server sends."""
    if not attrs.resource_request:
        return Forbidden(f'forbidden: User "{user.name}" cannot {attrs.verb} path "{attrs.path}"', {})
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    details: dict[str, Any] = {"group": attrs.api_group, "kind": attrs.resource}
    if attrs.name:
        details = {"name": attrs.name, **details}
    return Forbidden(
        f'{subject} is forbidden: User "{user.name}" cannot {attrs.verb} resource "{resource}" '
        f'in API group "{attrs.api_group}" {scope}',
        details,
    )


class Auth:
    """The API server's gate: authenticate the bearer token, then authorize the request."""

    def __init__(self, tokens: Tokens, authorizer: RbacAuthorizer | None) -> None:
        self.tokens = tokens
        self.authorizer = authorizer  # None: every authenticated user may do everything

    def check(self, authorization: str, method: str, path: str, watch: bool) -> User | None:
        """The user making the request (None: anonymous on a public path); raises 401 or 403."""
        scheme, _, credentials = authorization.partition(" ")
        # RFC 7235: the scheme is case-insensitive; the Python client's in-cluster config sends "bearer".
        if scheme.lower() != "bearer":
            if authorization or path not in PUBLIC_PATHS:
                raise Unauthorized("Unauthorized")
            return None
        user = self.tokens.user(credentials.strip())
        if user is None:
            raise Unauthorized("Unauthorized")
        if path in PUBLIC_PATHS or self.authorizer is None:
            return user
        attrs = attributes(method, path, watch)
        if not self.authorizer.allowed(user, attrs):
            raise forbidden(user, attrs)
        return user
