"""The Kubernetes API server's validation of the fields STATE shares with real objects.

One home for these rules: the model's STATE parser and the embedded API server's admission
(`netpolcheck/hollow/api/admission.py`) both call them. Each check appends causes
`(field path, reason type, message)` worded as kube-apiserver words them (`Invalid value: "x": ...`)
and never raises, whatever type it is given, so a wrong-typed body is a cause, not a crash. Values
from the input are quoted with every control, format or non-ASCII character escaped, so a message is
always one printable line. Pure: standard library only, nothing else of ours.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from typing import Any

Cause = tuple[str, str, str]  # (field path, reason type, message)
Causes = list[Cause]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
MAX_ANNOTATIONS_BYTES = 256 * 1024
_QUOTE_LIMIT = 80

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_IANA_SVC_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
QUALIFIED_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
PORT_NAME_MSG = (
    "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), must contain at least "
    "one letter (a-z), must not contain consecutive hyphens, must start and end with an alpha-numeric "
    "character, and at most 15 characters"
)
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


# ---- messages ----------------------------------------------------------------------------------


def printable(text: str) -> str:
    """`text` with every character that is not printable ASCII escaped (\\n, \\x1b, \\u202e, ...)."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for char in text:
        if char.isascii() and char.isprintable():
            out.append(char)
        else:
            out.append(json.dumps(char)[1:-1] if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return "".join(out)


def quote(value: Any) -> str:
    """A value as a message shows it: strings double-quoted and escaped (long ones cut), containers
    by their type, so no input can add a line or a control character to a message."""
    if isinstance(value, str):
        cut = value if len(value) <= _QUOTE_LIMIT else value[:_QUOTE_LIMIT] + "..."
        return '"' + printable(cut).replace('"', '\\"') + '"'
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() <= 64 else "(a number too large)"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "(an object)"
    if isinstance(value, list):
        return "(a list)"
    return f"({type(value).__name__})"


def invalid(causes: Causes, field: str, value: Any, message: str) -> None:
    causes.append((field, "FieldValueInvalid", f"Invalid value: {quote(value)}: {message}"))


def wrong_type(causes: Causes, field: str, value: Any, expected: str) -> None:
    causes.append((field, "FieldValueTypeInvalid", f"Invalid value: {quote(value)}: must be {expected}"))


def required(causes: Causes, field: str, message: str = "") -> None:
    causes.append((field, "FieldValueRequired", "Required value" + (f": {message}" if message else "")))


def forbidden(causes: Causes, field: str, message: str) -> None:
    causes.append((field, "FieldValueForbidden", f"Forbidden: {message}"))


def unsupported(causes: Causes, field: str, value: Any, supported: Sequence[str]) -> None:
    listed = ", ".join(f'"{s}"' for s in sorted(supported))
    causes.append(
        (field, "FieldValueNotSupported", f"Unsupported value: {quote(value)}: supported values: {listed}")
    )


def duplicate(causes: Causes, field: str, value: Any) -> None:
    causes.append((field, "FieldValueDuplicate", f"Duplicate value: {quote(value)}"))


# ---- types -------------------------------------------------------------------------------------


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def object_or_none(causes: Causes, field: str, value: Any, what: str = "an object") -> dict[str, Any]:
    """`value` when it is an object, {} when absent (null); a cause (it should be `what`) otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        wrong_type(causes, field, value, what)
        return {}
    return value


def list_or_none(causes: Causes, field: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        wrong_type(causes, field, value, "a list")
        return []
    return value


def optional_string(causes: Causes, field: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        wrong_type(causes, field, value, "a string")


# ---- names and labels --------------------------------------------------------------------------


def _syntax_problem(
    text: str, limit: int, pattern: re.Pattern[str], message: str, part: str = ""
) -> str | None:
    """What is wrong with one name (or the `part` of a qualified name), or None: empty (parts only),
    longer than `limit`, or not matching `pattern` (then `message`)."""
    if part and not text:
        return f"{part} must be non-empty"
    if len(text) > limit:
        return f"{part} must be no more than {limit} characters".lstrip()
    if not pattern.fullmatch(text):
        return message
    return None


def _string_of_syntax(
    causes: Causes, field: str, value: Any, limit: int, pattern: re.Pattern[str], message: str
) -> None:
    if not isinstance(value, str):
        wrong_type(causes, field, value, "a string")
    elif (problem := _syntax_problem(value, limit, pattern, message)) is not None:
        invalid(causes, field, value, problem)


def dns1123_label(causes: Causes, field: str, value: Any) -> None:
    _string_of_syntax(causes, field, value, 63, _DNS1123_LABEL, LABEL_MSG)


def dns1123_subdomain(causes: Causes, field: str, value: Any) -> None:
    _string_of_syntax(causes, field, value, 253, _DNS1123_SUBDOMAIN, SUBDOMAIN_MSG)


def qualified_name(causes: Causes, field: str, key: Any) -> None:
    """A label or annotation key: an optional DNS-subdomain prefix and '/', then a <=63-character name."""
    if not isinstance(key, str) or not key:
        invalid(causes, field, key, "name part must be non-empty")
        return
    parts = key.split("/")
    if len(parts) > 2:
        invalid(
            causes,
            field,
            key,
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character, with an optional DNS subdomain prefix and '/'",
        )
        return
    problems = [_syntax_problem(parts[-1], 63, _QUALIFIED_NAME, QUALIFIED_NAME_MSG, "name part")]
    if len(parts) == 2:
        prefix_message = "prefix part " + SUBDOMAIN_MSG
        problems.insert(0, _syntax_problem(parts[0], 253, _DNS1123_SUBDOMAIN, prefix_message, "prefix part"))
    for problem in problems:
        if problem is not None:
            invalid(causes, field, key, problem)


def label_value(causes: Causes, field: str, value: Any) -> None:
    _string_of_syntax(causes, field, value, 63, _LABEL_VALUE, LABEL_VALUE_MSG)


def labels(causes: Causes, field: str, value: Any) -> None:
    """A label map: qualified-name keys, label-syntax string values (the field names the map)."""
    for key, val in object_or_none(causes, field, value, "an object of label keys to string values").items():
        qualified_name(causes, field, key)
        label_value(causes, field, val)


def annotation_map(causes: Causes, field: str, value: Any) -> None:
    """Annotation keys are qualified names (compared in lower case); values any strings, 256 KiB in all."""
    annotations = object_or_none(causes, field, value, "an object of annotation keys to string values")
    size = 0
    for key, val in annotations.items():
        qualified_name(causes, field, key.lower() if isinstance(key, str) else key)
        if not isinstance(val, str):
            wrong_type(causes, f"{field}.{printable(str(key))}", val, "a string")
            continue
        size += len(key.encode("utf-8", "surrogatepass")) + len(val.encode("utf-8", "surrogatepass"))
    if size > MAX_ANNOTATIONS_BYTES:
        invalid(causes, field, "", f"must have at most {MAX_ANNOTATIONS_BYTES} bytes")


def label_selector(causes: Causes, field: str, selector: Any) -> None:
    """A LabelSelector: matchLabels as labels, matchExpressions with a valid operator and values."""
    if selector is None:
        return
    if not isinstance(selector, dict):
        wrong_type(causes, field, selector, "a label selector object")
        return
    labels(causes, f"{field}.matchLabels", selector.get("matchLabels"))
    for i, expr in enumerate(
        list_or_none(causes, f"{field}.matchExpressions", selector.get("matchExpressions"))
    ):
        path = f"{field}.matchExpressions[{i}]"
        if not isinstance(expr, dict):
            wrong_type(causes, path, expr, "an object with key, operator and values")
            continue
        op = expr.get("operator")
        values = list_or_none(causes, f"{path}.values", expr.get("values"))
        if op in ("In", "NotIn"):
            if not values:
                required(causes, f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist"):
            if values:
                forbidden(
                    causes,
                    f"{path}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
        else:
            invalid(causes, f"{path}.operator", op, "not a valid selector operator")
        qualified_name(causes, f"{path}.key", expr.get("key"))
        for j, value in enumerate(values):
            label_value(causes, f"{path}.values[{j}]", value)


# ---- addresses ---------------------------------------------------------------------------------


def ip_address(
    causes: Causes, field: str, value: Any
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address given as a string (never a number: `167772161` is not an address here)."""
    if not isinstance(value, str):
        wrong_type(causes, field, value, "an IP address string")
        return None
    try:
        if "%" in value:
            raise ValueError(value)
        return ipaddress.ip_address(value)
    except ValueError:
        invalid(causes, field, value, IP_MSG)
        return None


def cidr(causes: Causes, field: str, value: Any) -> IPNetwork | None:
    if not isinstance(value, str) or "/" not in value or "%" in value:
        invalid(causes, field, value, CIDR_MSG)
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        invalid(causes, field, value, CIDR_MSG)
        return None


def ip_block(causes: Causes, field: str, value: Any) -> None:
    block = object_or_none(causes, field, value)
    if not isinstance(value, dict):
        return
    if not block.get("cidr"):
        required(causes, f"{field}.cidr")
        return
    net = cidr(causes, f"{field}.cidr", block.get("cidr"))
    for k, exc in enumerate(list_or_none(causes, f"{field}.except", block.get("except"))):
        exc_path = f"{field}.except[{k}]"
        exc_net = cidr(causes, exc_path, exc)
        if net is None or exc_net is None:
            continue
        if exc_net.version != net.version or not exc_net.subnet_of(net) or exc_net == net:  # type: ignore[arg-type]
            invalid(causes, exc_path, exc, "must be a strict subset of `cidr`")


# ---- ports -------------------------------------------------------------------------------------


def port_name_ok(name: str) -> bool:
    return (
        len(name) <= 15
        and _IANA_SVC_NAME.fullmatch(name) is not None
        and "--" not in name
        and re.search("[a-z]", name) is not None
    )


def port_number(causes: Causes, field: str, value: Any) -> None:
    if not is_int(value):
        wrong_type(causes, field, value, "a port number")
    elif not 1 <= value <= 65535:
        invalid(causes, field, value, "must be between 1 and 65535, inclusive")


def port_name(causes: Causes, field: str, value: Any) -> None:
    if not isinstance(value, str):
        wrong_type(causes, field, value, "a port name")
    elif not port_name_ok(value):
        invalid(causes, field, value, PORT_NAME_MSG)


def port_number_or_name(causes: Causes, field: str, value: Any) -> None:
    if isinstance(value, str):
        port_name(causes, field, value)
    elif is_int(value):
        port_number(causes, field, value)
    else:
        wrong_type(causes, field, value, "a port number or name")


def protocol(causes: Causes, field: str, value: Any) -> None:
    """An optional protocol (absent means TCP)."""
    if value is not None and value not in PROTOCOLS:
        unsupported(causes, field, value, PROTOCOLS)


def container_port(causes: Causes, field: str, value: Any) -> None:
    if not isinstance(value, dict):
        wrong_type(causes, field, value, "a container port object")
        return
    port_number(causes, f"{field}.containerPort", value.get("containerPort"))
    protocol(causes, f"{field}.protocol", value.get("protocol"))
    if value.get("name") is not None:
        port_name(causes, f"{field}.name", value.get("name"))


def container_ports(causes: Causes, field: str, value: Any) -> None:
    """A container's ports: each valid, names unique (the named-port lookup needs one answer)."""
    seen: set[str] = set()
    for i, port in enumerate(list_or_none(causes, field, value)):
        container_port(causes, f"{field}[{i}]", port)
        name = port.get("name") if isinstance(port, dict) else None
        if isinstance(name, str):
            if name in seen:
                duplicate(causes, f"{field}[{i}].name", name)
            seen.add(name)


def network_policy_port(causes: Causes, field: str, value: Any) -> None:
    if not isinstance(value, dict):
        wrong_type(causes, field, value, "a port object")
        return
    protocol(causes, f"{field}.protocol", value.get("protocol"))
    number, end = value.get("port"), value.get("endPort")
    if number is not None:
        port_number_or_name(causes, f"{field}.port", number)
    if end is None:
        return
    if number is None:
        required(causes, f"{field}.port", "must be specified when `endPort` is specified")
    elif isinstance(number, str):
        invalid(causes, f"{field}.endPort", end, "may not be specified when `port` is non-numeric")
    elif not is_int(end):
        wrong_type(causes, f"{field}.endPort", end, "a port number")
    elif not 1 <= end <= 65535:
        invalid(causes, f"{field}.endPort", end, "must be between 1 and 65535, inclusive")
    elif is_int(number) and end < number:
        invalid(causes, f"{field}.endPort", end, "must be greater than or equal to `port`")


# ---- NetworkPolicy -----------------------------------------------------------------------------


def network_policy_peer(causes: Causes, field: str, peer: Any) -> None:
    if not isinstance(peer, dict):
        wrong_type(causes, field, peer, "a peer object")
        return
    kinds = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None]
    if not kinds:
        required(causes, field, "must specify a peer")
    elif "ipBlock" in kinds and len(kinds) > 1:
        forbidden(causes, field, "may not specify more than 1 peer type")
    label_selector(causes, f"{field}.podSelector", peer.get("podSelector"))
    label_selector(causes, f"{field}.namespaceSelector", peer.get("namespaceSelector"))
    if peer.get("ipBlock") is not None:
        ip_block(causes, f"{field}.ipBlock", peer.get("ipBlock"))


def network_policy_spec(causes: Causes, field: str, spec: Any) -> None:
    """`spec` of a NetworkPolicy: selectors, rules, peers, ports and policyTypes."""
    if not isinstance(spec, dict):
        wrong_type(causes, field, spec, "an object")
        return
    label_selector(causes, f"{field}.podSelector", spec.get("podSelector"))
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(list_or_none(causes, f"{field}.{direction}", spec.get(direction))):
            path = f"{field}.{direction}[{i}]"
            if not isinstance(rule, dict):
                wrong_type(causes, path, rule, "a rule object")
                continue
            for j, port in enumerate(list_or_none(causes, f"{path}.ports", rule.get("ports"))):
                network_policy_port(causes, f"{path}.ports[{j}]", port)
            for j, peer in enumerate(list_or_none(causes, f"{path}.{peers_key}", rule.get(peers_key))):
                network_policy_peer(causes, f"{path}.{peers_key}[{j}]", peer)
    types = list_or_none(causes, f"{field}.policyTypes", spec.get("policyTypes"))
    for i, kind in enumerate(types):
        if kind not in POLICY_TYPES:
            unsupported(causes, f"{field}.policyTypes[{i}]", kind, POLICY_TYPES)
    if len(types) > len(POLICY_TYPES):
        invalid(causes, f"{field}.policyTypes", types, "may not specify more than two policyTypes")


def object_meta(causes: Causes, meta: Any, name_rule: str) -> None:
    """metadata.name (`name_rule`: "label" or "subdomain"), metadata.labels and metadata.annotations."""
    if not isinstance(meta, dict):
        wrong_type(causes, "metadata", meta, "an object")
        return
    name = meta.get("name")
    if name in (None, ""):
        required(causes, "metadata.name", "name or generateName is required")
    elif name_rule == "label":
        dns1123_label(causes, "metadata.name", name)
    else:
        dns1123_subdomain(causes, "metadata.name", name)
    labels(causes, "metadata.labels", meta.get("labels"))
    annotation_map(causes, "metadata.annotations", meta.get("annotations"))
