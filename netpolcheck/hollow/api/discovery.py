"""Discovery documents: /version, /api, /apis and each group version's resource list."""

from __future__ import annotations

from typing import Any

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.version import KUBERNETES_VERSION, MAJOR, MINOR

VERSION_INFO = {
    "major": MAJOR,
    "minor": MINOR,
    "gitVersion": KUBERNETES_VERSION,
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-11-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_STATUS_VERBS = ["get", "patch", "update"]


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in r.GROUP_VERSIONS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g) for g in r.GROUP_VERSIONS]}


def api_group(name: str) -> dict[str, Any] | None:
    if name not in r.GROUP_VERSIONS:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def resource_list(group_version: str) -> dict[str, Any] | None:
    served = r.SERVED.get(group_version)
    if served is None:
        return None
    items: list[dict[str, Any]] = []
    for res in served:
        canonical = group_version.split("/")[0] == res.group or (res.group == "" and group_version == "v1")
        items.append(
            {
                "name": res.plural,
                "singularName": res.kind.lower(),
                "namespaced": res.namespaced,
                "kind": res.kind,
                "verbs": list(r.ALL_VERBS),
                # Short names only where the group is the resource's own (as on a real server, where the
                # old extensions group no longer exists), so `kubectl get netpol` stays unambiguous.
                **({"shortNames": list(res.short_names)} if res.short_names and canonical else {}),
                **(
                    {"categories": ["all"]}
                    if canonical and res.plural in ("pods", "daemonsets", "services")
                    else {}
                ),
            }
        )
        subresources = set(r.SUBRESOURCES.get(res.key, ()))
        if res.has_status:
            subresources.add("status")
        for sub in sorted(subresources):
            verbs = {
                "status": _STATUS_VERBS,
                "exec": ["create", "get"],
                "log": ["get"],
                "ephemeralcontainers": ["get", "patch", "update"],
            }[sub]
            kind = {"exec": "PodExecOptions", "log": "Pod"}.get(sub, res.kind)
            items.append(
                {
                    "name": f"{res.plural}/{sub}",
                    "singularName": "",
                    "namespaced": res.namespaced,
                    "kind": kind,
                    "verbs": verbs,
                }
            )
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": items}
