"""Defaulting and validation the real API server applies, for the objects the suite writes.

`admit(res, obj, old)` fills defaults in place and raises errors.Invalid (422) with the same
`details.causes[].field` paths a real kube-apiserver reports.
"""

from __future__ import annotations

from typing import Any

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import invalid
from netpolcheck.model import apivalidation as v

Causes = v.Causes

# The checks a NetworkPolicy, a label map or a selector share with the model's STATE parser live in
# `netpolcheck.model.apivalidation` (one home for both); this module adds defaulting and the rest.
validate_labels = v.labels
validate_label_selector = v.label_selector

_NAME_RULES = {
    r.NAMESPACES: "label",
    r.PODS: "subdomain",
    r.NETWORKPOLICIES: "subdomain",
    r.DAEMONSETS: "subdomain",
    r.SERVICEACCOUNTS: "subdomain",
    r.CONFIGMAPS: "subdomain",
    r.SECRETS: "subdomain",
    r.NODES: "subdomain",
}


def _validate_meta(causes: Causes, res: r.Resource, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    rule = _NAME_RULES.get(res)
    if rule is not None:
        v.object_meta(causes, meta, rule)
    else:
        v.labels(causes, "metadata.labels", meta.get("labels") if isinstance(meta, dict) else None)


# ---- NetworkPolicy ---------------------------------------------------------------------------


def _default_network_policy(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        return  # validation reports it
    spec.setdefault("podSelector", {})
    for direction in ("ingress", "egress"):
        rules = spec.get(direction)
        for rule in rules if isinstance(rules, list) else []:
            ports = rule.get("ports") if isinstance(rule, dict) else None
            for port in ports if isinstance(ports, list) else []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def validate_network_policy(obj: dict[str, Any]) -> Causes:
    causes: Causes = []
    v.network_policy_spec(causes, "spec", obj.get("spec") or {})
    return causes


# ---- Pods and pod templates --------------------------------------------------------------------


def _default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(container, dict):
            default_container(container)


def default_container(container: dict[str, Any]) -> None:
    """The defaults of one container (app, init or ephemeral)."""
    image = container.get("image") or ""
    tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
    latest = image.endswith(":latest") or not tagged
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def validate_pod_spec(causes: Causes, path: str, spec: Any) -> None:
    if not isinstance(spec, dict):
        v.required(causes, path)
        return
    containers = spec.get("containers")
    if not containers:
        v.required(causes, f"{path}.containers")
        return
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, container in enumerate(v.list_or_none(causes, f"{path}.{group}", spec.get(group))):
            cpath = f"{path}.{group}[{i}]"
            validate_container_identity(causes, cpath, container, seen)
            ports = container.get("ports") if isinstance(container, dict) else None
            for j, port in enumerate(ports if isinstance(ports, list) else []):
                v.container_port(causes, f"{cpath}.ports[{j}]", port)


def validate_container_identity(causes: Causes, cpath: str, container: Any, taken: set[str]) -> None:
    """A container's name (a DNS label, not in `taken`; added to it) and image are given."""
    name = container.get("name") if isinstance(container, dict) else None
    if not name:
        v.required(causes, f"{cpath}.name")
    elif name in taken:
        v.duplicate(causes, f"{cpath}.name", name)
    else:
        v.dns1123_label(causes, f"{cpath}.name", name)
        taken.add(str(name))
    if isinstance(container, dict) and not container.get("image"):
        v.required(causes, f"{cpath}.image")


def _default_pod(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.setdefault("spec", {})
    _default_pod_spec(spec)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    if old is None:
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}


def _validate_no_ephemeral_change(causes: Causes, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Ephemeral containers come only through the `ephemeralcontainers` subresource (ephemeral.py)."""
    new = (obj.get("spec") or {}).get("ephemeralContainers") if isinstance(obj.get("spec"), dict) else None
    before = ((old or {}).get("spec") or {}).get("ephemeralContainers")
    if old is None and new:
        v.forbidden(causes, "spec.ephemeralContainers", "cannot be set on create")
    elif old is not None and (new or None) != (before or None):
        v.forbidden(
            causes,
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`, "
            "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` "
            "(only additions to existing tolerations), `spec.terminationGracePeriodSeconds` "
            "(allow it to be set to 1 if it was previously negative); ephemeral containers are "
            "added through the pods/ephemeralcontainers subresource",
        )


# ---- DaemonSets --------------------------------------------------------------------------------


def _default_daemonset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    template = spec.setdefault("template", {})
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    if not spec.get("selector") and template_labels:
        spec["selector"] = {"matchLabels": dict(template_labels)}
    strategy = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_pod_spec(template.setdefault("spec", {}))


def _validate_daemonset(obj: dict[str, Any], old: dict[str, Any] | None = None) -> Causes:
    from netpolcheck.hollow.api.selectors import match_label_selector_object

    causes: Causes = []
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if not selector:
        v.required(causes, "spec.selector")
    else:
        validate_label_selector(causes, "spec.selector", selector)
    if old is not None and selector and (old.get("spec") or {}).get("selector") not in (None, selector):
        v.invalid(causes, "spec.selector", selector, "field is immutable")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    validate_labels(causes, "spec.template.metadata.labels", labels)
    if selector and not causes and not match_label_selector_object(selector, labels):
        v.invalid(
            causes, "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
        )
    validate_pod_spec(causes, "spec.template.spec", template.get("spec"))
    strategy = (spec.get("updateStrategy") or {}).get("type")
    if strategy not in ("RollingUpdate", "OnDelete"):
        v.unsupported(causes, "spec.updateStrategy.type", strategy, ("OnDelete", "RollingUpdate"))
    return causes


# ---- entry point -------------------------------------------------------------------------------


def _default_namespace(obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def admit(res: r.Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Default then validate `obj` (new or replacing `old`) in place; raise Invalid like the real server."""
    obj.setdefault("metadata", {})
    if res is r.NAMESPACES:
        _default_namespace(obj)
    elif res is r.NETWORKPOLICIES:
        _default_network_policy(obj)
    elif res is r.PODS:
        _default_pod(obj, old)
    elif res is r.DAEMONSETS:
        _default_daemonset(obj)
    elif res is r.SECRETS and not obj.get("type"):
        obj["type"] = "Opaque"
    causes: Causes = []
    _validate_meta(causes, res, obj)
    if res is r.NETWORKPOLICIES:
        causes += validate_network_policy(obj)
    elif res is r.PODS:
        validate_pod_spec(causes, "spec", obj.get("spec"))
        _validate_no_ephemeral_change(causes, obj, old)
    elif res is r.DAEMONSETS:
        causes += _validate_daemonset(obj, old)
    if causes:
        raise invalid(res.kind, obj["metadata"].get("name", ""), res.group, causes)
