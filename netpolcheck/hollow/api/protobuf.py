"""Protobuf request bodies, for the kinds kubectl sends that way.

kubectl's typed clients (`kubectl create namespace|configmap|secret|serviceaccount`) send
`Content-Type: application/vnd.kubernetes.protobuf` and do not retry as JSON, so a server must read
it. The body is the `k8s\\x00` magic followed by a `runtime.Unknown` message (typeMeta = 1 with
apiVersion = 1 and kind = 2; raw = 2: the object's own message). The object's messages are described
in `schema.MESSAGES` with their generated.proto field numbers. Zero scalars of non-pointer fields are
dropped, as the Go object would omit them in JSON. Responses stay JSON (clients accept it: they send
`Accept: application/vnd.kubernetes.protobuf,application/json`).
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterator
from typing import Any

from netpolcheck.hollow.api import schema
from netpolcheck.hollow.api.errors import BadRequest

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
# Kinds whose every message in schema.MESSAGES carries field numbers.
KINDS = frozenset({"Namespace", "ConfigMap", "Secret", "ServiceAccount"})
OPTIONS = frozenset({"DeleteOptions"})  # the body of a typed client's DELETE
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class _Truncated(Exception):
    pass


def decode(data: bytes, kinds: frozenset[str] = KINDS) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object of one of `kinds`, or BadRequest."""
    if not data.startswith(MAGIC):
        raise BadRequest("provided object is not protobuf-encoded: the k8s\\x00 prefix is missing")
    try:
        unknown = _collect(data[len(MAGIC) :])
        type_meta = _collect(_last_bytes(unknown, 1))
        api_version = _last_bytes(type_meta, 1).decode()
        kind = _last_bytes(type_meta, 2).decode()
        if kind not in kinds:
            raise BadRequest(f"kind {kind!r} is not accepted as protobuf by this server; send JSON")
        obj = _message(_last_bytes(unknown, 2), kind)
    except (_Truncated, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise BadRequest(f"unable to decode the protobuf body: {exc or type(exc).__name__}") from exc
    return {"apiVersion": api_version, "kind": kind, **obj}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Truncated("bad varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) for every field of one message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _Truncated("length past the end")
            value, pos = data[pos : pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise _Truncated("fixed field past the end")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        else:
            raise _Truncated(f"unsupported wire type {wire}")
        yield number, wire, value


def _collect(data: bytes) -> dict[int, list[int | bytes]]:
    found: dict[int, list[int | bytes]] = {}
    for number, _, value in _fields(data):
        found.setdefault(number, []).append(value)
    return found


def _last_bytes(found: dict[int, list[int | bytes]], number: int) -> bytes:
    value = found.get(number, [b""])[-1]
    if not isinstance(value, bytes):
        raise _Truncated(f"field {number} is not length-delimited")
    return value


def _message(data: bytes, name: str) -> dict[str, Any]:
    fields = schema.MESSAGES[name]
    by_number = {field.number: (key, field) for key, field in fields.items() if field.number}
    obj: dict[str, Any] = {}
    for number, _, raw in _fields(data):
        if number not in by_number:
            continue  # unknown fields are skipped, as the generated Go code does
        key, field = by_number[number]
        if field.map:
            entry = _collect(_need_bytes(raw))
            map_key = _last_bytes(entry, 1).decode()
            obj.setdefault(key, {})[map_key] = _scalar_or_message(entry.get(2, [b""])[-1], field.type)
        elif field.repeated:
            obj.setdefault(key, []).append(_scalar_or_message(raw, field.type))
        else:
            obj[key] = _scalar_or_message(raw, field.type)
    return {k: v for k, v in obj.items() if fields[k].ptr or not _is_zero(v)}


def _need_bytes(raw: int | bytes) -> bytes:
    if not isinstance(raw, bytes):
        raise _Truncated("expected a length-delimited field")
    return raw


def _signed(value: int, bits: int = 64) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _scalar_or_message(raw: int | bytes, type_: str) -> Any:
    if type_ in (schema.INT32, schema.INT64):
        if not isinstance(raw, int):
            raise _Truncated("expected a varint")
        return _signed(raw)
    if type_ == schema.BOOL:
        return bool(raw)
    data = _need_bytes(raw)
    if type_ == schema.STRING:
        return data.decode()
    if type_ == schema.BYTES:
        return base64.b64encode(data).decode()
    if type_ == schema.TIME:
        return _time(data)
    if type_ == "FieldsV1":
        return json.loads(_last_bytes(_collect(data), 1) or b"{}")
    if type_ not in schema.MESSAGES:
        raise _Truncated(f"type {type_} cannot be read from protobuf")
    return _message(data, type_)


def _time(data: bytes) -> str | None:
    found = _collect(data)
    if not found:
        return None  # the zero time: Go encodes it as an empty message, JSON as null
    seconds = found.get(1, [0])[-1]
    if not isinstance(seconds, int):
        raise _Truncated("bad time")
    moment = _EPOCH + datetime.timedelta(seconds=_signed(seconds))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_zero(value: Any) -> bool:
    return value is None or value in ("", 0, False) or value == {} or value == []
