"""Defaulting and validation the real API server applies, for the objects the suite writes.

`admit(res, obj, old)` fills defaults in place and raises errors.Invalid (422) with the same
`details.causes[].field` paths a real kube-apiserver reports.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import invalid

Causes = list[tuple[str, str, str]]  # (field path, reason type, message)

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _bad(causes: Causes, field: str, value: Any, message: str) -> None:
    causes.append((field, "FieldValueInvalid", f"Invalid value: {_quote(value)}: {message}"))


def _required(causes: Causes, field: str, message: str = "") -> None:
    causes.append((field, "FieldValueRequired", "Required value" + (f": {message}" if message else "")))


def _forbidden(causes: Causes, field: str, message: str) -> None:
    causes.append((field, "FieldValueForbidden", f"Forbidden: {message}"))


def _unsupported(causes: Causes, field: str, value: Any, supported: list[str]) -> None:
    listed = ", ".join(f'"{s}"' for s in supported)
    causes.append(
        (field, "FieldValueNotSupported", f"Unsupported value: {_quote(value)}: supported values: {listed}")
    )


# ---- metadata --------------------------------------------------------------------------------


def _validate_qualified_name(causes: Causes, field: str, key: Any) -> None:
    if not isinstance(key, str) or not key:
        _bad(causes, field, key, "name part must be non-empty")
        return
    prefix, _, name = key.rpartition("/")
    if key.count("/") > 1:
        _bad(
            causes,
            field,
            key,
            "a qualified name must consist of alphanumeric characters, '-', '_' or "
            "'.', and must start and end with an alphanumeric character, with an optional DNS "
            "subdomain prefix and '/'",
        )
        return
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        _bad(causes, field, key, "prefix part " + _SUBDOMAIN_MSG)
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        _bad(
            causes,
            field,
            key,
            "name part must consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        )


def validate_labels(causes: Causes, field: str, labels: Any) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        _bad(causes, field, labels, "must be a map of strings")
        return
    for key, value in labels.items():
        _validate_qualified_name(causes, field, key)
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            _bad(causes, field, value, _LABEL_VALUE_MSG)


def _validate_meta(causes: Causes, res: r.Resource, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    name = meta.get("name", "")
    if res is r.NAMESPACES:
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            _bad(causes, "metadata.name", name, _LABEL_MSG)
    elif res in (
        r.PODS,
        r.NETWORKPOLICIES,
        r.DAEMONSETS,
        r.SERVICEACCOUNTS,
        r.CONFIGMAPS,
        r.SECRETS,
        r.NODES,
    ) and (len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name)):
        _bad(causes, "metadata.name", name, _SUBDOMAIN_MSG)
    validate_labels(causes, "metadata.labels", meta.get("labels"))


# ---- label selectors -------------------------------------------------------------------------


def validate_label_selector(causes: Causes, field: str, selector: Any) -> None:
    if selector is None:
        return
    if not isinstance(selector, dict):
        _bad(causes, field, selector, "must be a label selector object")
        return
    validate_labels(causes, f"{field}.matchLabels", selector.get("matchLabels"))
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        path = f"{field}.matchExpressions[{i}]"
        op = expr.get("operator")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                _required(causes, f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist"):
            if values:
                _forbidden(
                    causes,
                    f"{path}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
        else:
            _bad(causes, f"{path}.operator", op, "not a valid selector operator")
        _validate_qualified_name(causes, f"{path}.key", expr.get("key"))
        for j, value in enumerate(values):
            if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
                _bad(causes, f"{path}.values[{j}]", value, _LABEL_VALUE_MSG)


# ---- NetworkPolicy ---------------------------------------------------------------------------


def _default_network_policy(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("podSelector", {})
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _validate_cidr(
    causes: Causes, field: str, value: Any
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError(value)
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        _bad(causes, field, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")
        return None


def _validate_peer(causes: Causes, path: str, peer: Any) -> None:
    if not isinstance(peer, dict):
        _bad(causes, path, peer, "must be a peer object")
        return
    kinds = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None]
    if not kinds:
        _required(causes, path, "must specify a peer")
    elif "ipBlock" in kinds and len(kinds) > 1:
        _forbidden(causes, path, "may not specify more than 1 peer type")
    validate_label_selector(causes, f"{path}.podSelector", peer.get("podSelector"))
    validate_label_selector(causes, f"{path}.namespaceSelector", peer.get("namespaceSelector"))
    block = peer.get("ipBlock")
    if block is not None:
        cidr_path = f"{path}.ipBlock.cidr"
        if not block.get("cidr"):
            _required(causes, cidr_path)
            return
        cidr = _validate_cidr(causes, cidr_path, block.get("cidr"))
        for k, exc in enumerate(block.get("except") or []):
            exc_path = f"{path}.ipBlock.except[{k}]"
            exc_net = _validate_cidr(causes, exc_path, exc)
            if cidr is None or exc_net is None:
                continue
            if exc_net.version != cidr.version or not exc_net.subnet_of(cidr) or exc_net == cidr:  # type: ignore[arg-type]
                _bad(causes, exc_path, exc, "must be a strict subset of `cidr`")


def _validate_port(causes: Causes, path: str, port: Any) -> None:
    if not isinstance(port, dict):
        _bad(causes, path, port, "must be a port object")
        return
    protocol = port.get("protocol", "TCP")
    if protocol not in ("TCP", "UDP", "SCTP"):
        _unsupported(causes, f"{path}.protocol", protocol, ["SCTP", "TCP", "UDP"])
    number = port.get("port")
    end = port.get("endPort")
    if isinstance(number, bool) or (number is not None and not isinstance(number, int | str)):
        _bad(causes, f"{path}.port", number, "must be an integer or a port name")
    elif isinstance(number, int):
        if not 1 <= number <= 65535:
            _bad(causes, f"{path}.port", number, "must be between 1 and 65535, inclusive")
    elif isinstance(number, str) and (
        len(number) > 15
        or not _IANA_SVC_NAME.match(number)
        or "--" in number
        or not re.search("[a-z]", number)
    ):
        _bad(
            causes,
            f"{path}.port",
            number,
            "must contain only alpha-numeric characters (a-z, 0-9), and "
            "hyphens (-), must contain at least one letter (a-z), must not contain consecutive "
            "hyphens, must start and end with an alpha-numeric character, and at most 15 characters",
        )
    if end is None:
        return
    if number is None:
        _required(causes, f"{path}.port", "must be specified when endPort is specified")
    elif isinstance(number, str):
        _bad(causes, f"{path}.endPort", end, "may not be specified when `port` is non-numeric")
    elif not isinstance(end, int) or isinstance(end, bool) or not 1 <= end <= 65535:
        _bad(causes, f"{path}.endPort", end, "must be between 1 and 65535, inclusive")
    elif isinstance(number, int) and end < number:
        _bad(causes, f"{path}.endPort", end, "must be greater than or equal to `port`")


def validate_network_policy(obj: dict[str, Any]) -> Causes:
    causes: Causes = []
    spec = obj.get("spec") or {}
    validate_label_selector(causes, "spec.podSelector", spec.get("podSelector"))
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            path = f"spec.{direction}[{i}]"
            for j, port in enumerate(rule.get("ports") or []):
                _validate_port(causes, f"{path}.ports[{j}]", port)
            for j, peer in enumerate(rule.get(peers_key) or []):
                _validate_peer(causes, f"{path}.{peers_key}[{j}]", peer)
    types = spec.get("policyTypes") or []
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            _unsupported(causes, f"spec.policyTypes[{i}]", t, ["Ingress", "Egress"])
    if len(types) > 2:
        _bad(causes, "spec.policyTypes", types, "may not specify more than two policyTypes")
    return causes


# ---- Pods and pod templates --------------------------------------------------------------------


def _default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
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
        _required(causes, path)
        return
    containers = spec.get("containers")
    if not containers:
        _required(causes, f"{path}.containers")
        return
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            cpath = f"{path}.{group}[{i}]"
            name = container.get("name") if isinstance(container, dict) else None
            if not name:
                _required(causes, f"{cpath}.name")
            elif not _DNS1123_LABEL.match(name) or len(name) > 63:
                _bad(causes, f"{cpath}.name", name, _LABEL_MSG)
            elif name in seen:
                causes.append((f"{cpath}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
            else:
                seen.add(name)
            if isinstance(container, dict) and not container.get("image"):
                _required(causes, f"{cpath}.image")
            for j, port in enumerate((container or {}).get("ports") or []):
                number = port.get("containerPort")
                if not isinstance(number, int) or not 1 <= number <= 65535:
                    _bad(
                        causes,
                        f"{cpath}.ports[{j}].containerPort",
                        number,
                        "must be between 1 and 65535, inclusive",
                    )
                if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
                    _unsupported(
                        causes, f"{cpath}.ports[{j}].protocol", port.get("protocol"), ["SCTP", "TCP", "UDP"]
                    )


def _default_pod(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.setdefault("spec", {})
    _default_pod_spec(spec)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    if old is None:
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}


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
        _required(causes, "spec.selector")
    else:
        validate_label_selector(causes, "spec.selector", selector)
    if old is not None and selector and (old.get("spec") or {}).get("selector") not in (None, selector):
        _bad(causes, "spec.selector", selector, "field is immutable")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    validate_labels(causes, "spec.template.metadata.labels", labels)
    if selector and not causes and not match_label_selector_object(selector, labels):
        _bad(causes, "spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    validate_pod_spec(causes, "spec.template.spec", template.get("spec"))
    strategy = (spec.get("updateStrategy") or {}).get("type")
    if strategy not in ("RollingUpdate", "OnDelete"):
        _unsupported(causes, "spec.updateStrategy.type", strategy, ["OnDelete", "RollingUpdate"])
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
    elif res is r.DAEMONSETS:
        causes += _validate_daemonset(obj, old)
    if causes:
        raise invalid(res.kind, obj["metadata"].get("name", ""), res.group, causes)
