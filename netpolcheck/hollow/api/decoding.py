"""Request bodies as a real API server reads them: strict JSON, YAML as JSON, Go types.

- JSON: only what RFC 8259 allows (Python's json also takes NaN/Infinity; those are refused here),
  nesting bounded; YAML: the JSON subset of YAML types (no timestamps, binary or non-finite floats).
- `conform(kind, version, obj)`: what decoding into the Go structs does. A value of the wrong JSON
  type is a 400 with Go's message ("cannot unmarshal string into Go struct field NetworkPolicy.spec
  of type v1.NetworkPolicySpec"); `null` leaves the zero value (the field is dropped).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

import yaml

from netpolcheck.hollow.api import schema
from netpolcheck.hollow.api.errors import BadRequest
from netpolcheck.hollow.api.schema import Field

MAX_DEPTH = 100  # Kubernetes objects nest far less; deeper bodies are refused, not recursed into
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_INT_RANGE = {schema.INT32: (-(2**31), 2**31 - 1), schema.INT64: (-(2**63), 2**63 - 1)}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value ({name} is not JSON)")


def loads_json(raw: bytes) -> Any:
    """Strict JSON (no NaN, Infinity, -Infinity), or BadRequest."""
    try:
        value = json.loads(raw or b"null", parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body of the request was in an unknown format: {_short(exc)}") from exc
    _check_depth(value)
    return value


class _JsonishLoader(yaml.SafeLoader):
    """YAML without the types JSON cannot hold: timestamps stay strings, as sigs.k8s.io/yaml does."""


_JsonishLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def loads_yaml(raw: bytes) -> Any:
    """YAML converted to JSON values, or BadRequest (non-finite numbers and non-JSON types refused)."""
    try:
        value = yaml.load(raw or b"null", Loader=_JsonishLoader)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise BadRequest(f"error converting YAML to JSON: {_short(exc)}") from exc
    # Aliases let a small document stand for a huge one ("billion laughs"); expanded, a document
    # has at most about as many values as it has bytes, so more means excessive aliasing.
    return _jsonish(value, 0, [len(raw) + 1000])


def _jsonish(value: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise BadRequest("error converting YAML to JSON: yaml: document contains excessive aliasing")
    if depth > MAX_DEPTH:
        raise BadRequest(f"the body of the request nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {_yaml_key(k): _jsonish(v, depth + 1, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonish(v, depth + 1, budget) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest(f"error converting YAML to JSON: {value} is not a JSON number")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise BadRequest(f"error converting YAML to JSON: unsupported value of type {type(value).__name__}")


def _yaml_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, str | int | float):
        return str(key)
    raise BadRequest(f"error converting YAML to JSON: unsupported map key of type {type(key).__name__}")


def _check_depth(value: Any) -> None:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"the body of the request nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


# ---- Go types ----------------------------------------------------------------------------------


class _TypeError(Exception):
    def __init__(self, value: Any, struct: str, path: str, go_type: str, detail: str = "") -> None:
        super().__init__(
            detail
            or f"json: cannot unmarshal {_json_type(value, go_type)} into Go struct field {struct}.{path} "
            f"of type {go_type}"
        )


def conform(kind: str, version: str, obj: dict[str, Any]) -> None:
    """Check `obj` against the Go struct of `kind` in place (nulls of known fields removed);
    BadRequest as the real server's decoder answers."""
    fields = schema.message(kind)
    try:
        for key in ("apiVersion", "kind"):
            if key in obj and not isinstance(obj[key], str):
                raise _TypeError(obj[key], kind, key, "string")
        _message(obj, fields, kind, "")
    except _TypeError as exc:
        raise BadRequest(f'{kind} in version "{version}" cannot be handled as a {kind}: {exc}') from exc


def _message(obj: dict[str, Any], fields: dict[str, Field], struct: str, prefix: str) -> None:
    for key in list(obj):
        field = fields.get(key)
        if field is None:
            continue
        value = obj[key]
        if value is None:
            del obj[key]
            continue
        path = f"{prefix}{key}"
        if field.repeated:
            if not isinstance(value, list):
                raise _TypeError(value, struct, path, "[]" + _go_type(field.type))
            obj[key] = [_value(v, field.type, struct, path) for v in value]
        elif field.map:
            if not isinstance(value, dict):
                raise _TypeError(value, struct, path, f"map[string]{_go_type(field.type)}")
            obj[key] = {k: _value(v, field.type, struct, path) for k, v in value.items()}
        else:
            obj[key] = _value(value, field.type, struct, path)


def _value(value: Any, type_: str, struct: str, path: str) -> Any:
    if value is None:
        return _zero(type_)
    if type_ not in schema.SCALARS:
        if not isinstance(value, dict):
            raise _TypeError(value, struct, path, _go_type(type_))
        _message(value, schema.MESSAGES[type_], type_, path + ".")
        return value
    ok = {
        schema.STRING: isinstance(value, str),
        schema.BOOL: isinstance(value, bool),
        schema.OBJECT: isinstance(value, dict),
        schema.QUANTITY: isinstance(value, str | int | float) and not isinstance(value, bool),
        schema.INTSTR: isinstance(value, str) or _is_int(value, schema.INT32),
        schema.INT32: _is_int(value, schema.INT32),
        schema.INT64: _is_int(value, schema.INT64),
        schema.BYTES: isinstance(value, str),
        schema.TIME: isinstance(value, str),
    }[type_]
    if not ok:
        raise _TypeError(value, struct, path, _go_type(type_))
    if type_ == schema.TIME and not _RFC3339.match(value):
        raise _TypeError(
            value, struct, path, "", f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse'
        )
    if type_ == schema.BYTES:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _TypeError(value, struct, path, "", f"illegal base64 data in {struct}.{path}") from exc
    return value


def _is_int(value: Any, type_: str) -> bool:
    low, high = _INT_RANGE[type_]
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _zero(type_: str) -> Any:
    return {
        schema.STRING: "",
        schema.BOOL: False,
        schema.INT32: 0,
        schema.INT64: 0,
        schema.BYTES: "",
        schema.INTSTR: 0,
        schema.QUANTITY: "0",
        schema.TIME: None,
    }.get(type_, {})


def _json_type(value: Any, go_type: str) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}" if go_type.startswith("int") else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _go_type(type_: str) -> str:
    return {
        schema.STRING: "string",
        schema.BOOL: "bool",
        schema.INT32: "int32",
        schema.INT64: "int64",
        schema.BYTES: "[]uint8",
        schema.TIME: "v1.Time",
        schema.INTSTR: "intstr.IntOrString",
        schema.QUANTITY: "resource.Quantity",
        schema.OBJECT: "map[string]interface {}",
    }.get(type_, f"v1.{type_}")
