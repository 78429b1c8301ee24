"""Bodies a real API server refuses, sent over HTTPS to the real server: non-JSON numbers, values of
the wrong Go type, YAML that is not JSON, oversized bodies, and plain HTTP on the TLS port."""

from __future__ import annotations

import itertools
import json
import socket
import ssl
from typing import Any

import pytest

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api import schema
from netpolcheck.hollow.api.server import MAX_BODY_BYTES
from tests.hollow.api.apikit import Cluster, pod_body, raw

NETPOLS = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"


def policy(spec: Any, name: str = "p", metadata: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name} if metadata is None else metadata,
        "spec": spec,
    }


def stored_policies(cluster: Cluster) -> list[str]:
    items, _ = cluster.store.list(r.NETWORKPOLICIES, "default")
    return [i["metadata"]["name"] for i in items]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_are_400_and_nothing_is_stored(cluster: Cluster, constant: str) -> None:
    body = b'{"metadata":{"name":"p"},"spec":{"podSelector":{},"ingress":[{"ports":[{"port":'
    body += constant.encode() + b"}]}]}}"
    status, answer = raw(cluster, "POST", NETPOLS, body)
    assert status == 400 and answer["reason"] == "BadRequest", answer
    assert stored_policies(cluster) == []
    # kubectl keeps working (a stored NaN made `kubectl get netpol -A` fail before)
    result = cluster.kubectl("get", "netpol", "-A")
    assert result.returncode == 0, result.stderr


def test_non_json_numbers_in_a_patch_are_400(cluster: Cluster) -> None:
    assert raw(cluster, "POST", NETPOLS, policy({"podSelector": {}}))[0] == 201
    status, answer = raw(
        cluster,
        "PATCH",
        f"{NETPOLS}/p",
        b'{"metadata":{"labels":{"a":NaN}}}',
        content_type="application/merge-patch+json",
    )
    assert status == 400 and answer["reason"] == "BadRequest"
    assert "labels" not in cluster.store.get(r.NETWORKPOLICIES, "default", "p")["metadata"]


@pytest.mark.parametrize(
    ("spec", "metadata", "message"),
    [
        (
            "x",
            None,
            "json: cannot unmarshal string into Go struct field NetworkPolicy.spec of type "
            "v1.NetworkPolicySpec",
        ),
        (
            {"podSelector": {}, "ingress": [5]},
            None,
            "json: cannot unmarshal number into Go struct field NetworkPolicySpec.spec.ingress of type "
            "v1.NetworkPolicyIngressRule",
        ),
        (
            {"podSelector": {}},
            [],
            "json: cannot unmarshal array into Go struct field NetworkPolicy.metadata of type v1.ObjectMeta",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": True}]}]},
            None,
            "json: cannot unmarshal bool into Go struct field NetworkPolicyPort.spec.ingress.ports.port of "
            "type intstr.IntOrString",
        ),
        (
            {"podSelector": {"matchLabels": {"app": 5}}},
            None,
            "json: cannot unmarshal number into Go struct field LabelSelector.spec.podSelector.matchLabels "
            "of type string",
        ),
    ],
)
def test_wrong_go_types_are_400_bad_request_not_500(
    cluster: Cluster, spec: Any, metadata: Any, message: str
) -> None:
    status, answer = raw(cluster, "POST", NETPOLS, policy(spec, metadata=metadata))
    assert (status, answer["reason"]) == (400, "BadRequest"), answer
    assert answer["message"] == (
        f'NetworkPolicy in version "v1" cannot be handled as a NetworkPolicy: {message}'
    )
    assert stored_policies(cluster) == []


def test_policy_types_as_a_string_is_one_error_not_one_per_character(cluster: Cluster) -> None:
    status, answer = raw(cluster, "POST", NETPOLS, policy({"podSelector": {}, "policyTypes": "Ingress"}))
    assert status == 400, answer
    assert answer["message"].count("cannot unmarshal") == 1
    assert "NetworkPolicySpec.spec.policyTypes of type []string" in answer["message"]


def test_wrong_types_in_pods_daemonsets_status_and_numbers_out_of_range(cluster: Cluster) -> None:
    pod = pod_body("box")
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 2**40}]
    status, answer = raw(cluster, "POST", "/api/v1/namespaces/default/pods", pod)
    assert status == 400 and "number 1099511627776" in answer["message"] and "int32" in answer["message"]
    assert raw(cluster, "POST", "/api/v1/namespaces/default/pods", pod_body("box"))[0] == 201
    status, answer = raw(
        cluster,
        "PATCH",
        "/api/v1/namespaces/default/pods/box/status",
        {"status": {"containerStatuses": "x"}},
        content_type="application/merge-patch+json",
    )
    assert status == 400 and "PodStatus.status.containerStatuses" in answer["message"], answer
    daemonset = {
        "metadata": {"name": "ds"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": 7}},
    }
    status, answer = raw(cluster, "POST", "/apis/apps/v1/namespaces/default/daemonsets", daemonset)
    assert status == 400 and "PodTemplateSpec.spec.template.metadata" in answer["message"], answer


def test_null_fields_are_dropped_as_go_leaves_them_zero(cluster: Cluster) -> None:
    status, answer = raw(cluster, "POST", NETPOLS, policy({"podSelector": {}, "ingress": None}))
    assert status == 201, answer
    assert "ingress" not in answer["spec"] and answer["spec"]["policyTypes"] == ["Ingress"]


def test_deep_nesting_and_huge_numbers_are_400(cluster: Cluster) -> None:
    deep = b'{"metadata":{"name":"p","annotations":' + b'{"a":' * 5000 + b"1" + b"}" * 5001 + b"}"
    status, answer = raw(cluster, "POST", NETPOLS, deep)
    assert status == 400 and answer["reason"] == "BadRequest"
    huge = b'{"metadata":{"name":"p"},"spec":{"podSelector":{},"ingress":[{"ports":[{"port":' + b"9" * 5000
    status, answer = raw(cluster, "POST", NETPOLS, huge + b"}]}]}}")
    assert status == 400 and answer["reason"] == "BadRequest"
    assert stored_policies(cluster) == []


def test_server_side_apply_yaml_is_read_as_json(cluster: Cluster) -> None:
    """YAML `.nan` is refused; a date-like annotation stays a string (no 500 from a datetime)."""
    path = f"{NETPOLS}/y?fieldManager=test"
    bad = b"metadata: {name: y}\nspec: {podSelector: {}, ingress: [{ports: [{port: .nan}]}]}\n"
    status, answer = raw(cluster, "PATCH", path, bad, content_type="application/apply-patch+yaml")
    assert status == 400 and answer["reason"] == "BadRequest", answer
    good = b"metadata: {name: y, annotations: {since: 2024-01-01}}\nspec: {podSelector: {}}\n"
    status, answer = raw(cluster, "PATCH", path, good, content_type="application/apply-patch+yaml")
    assert status == 201 and answer["metadata"]["annotations"] == {"since": "2024-01-01"}, answer


def test_yaml_alias_bomb_is_400_without_expanding_it(cluster: Cluster) -> None:
    lines = ["metadata: {name: bomb}", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]  # 9**10 values
    status, answer = raw(
        cluster,
        "PATCH",
        f"{NETPOLS}/bomb?fieldManager=test",
        "\n".join(lines).encode(),
        content_type="application/apply-patch+yaml",
    )
    assert (status, answer["reason"]) == (400, "BadRequest") and "excessive aliasing" in answer["message"]


def test_unknown_body_media_type_is_415(cluster: Cluster) -> None:
    status, answer = raw(cluster, "POST", NETPOLS, b"<policy/>", content_type="application/xml")
    assert (status, answer["reason"]) == (415, "UnsupportedMediaType")
    assert "application/json, application/yaml" in answer["message"]


def _tls(cluster: Cluster) -> ssl.SSLSocket:
    host, port = cluster.url.removeprefix("https://").split(":")
    ctx = ssl.create_default_context(cadata=cluster.ca_pem.decode())
    return ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)


def _response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return int(head.split()[1]), rest


def test_body_over_3_mib_is_413_before_it_is_read(cluster: Cluster) -> None:
    """Only the headers are sent: the answer comes without the server waiting for the 4 MiB."""
    with _tls(cluster) as sock:
        sock.sendall(
            f"POST {NETPOLS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {cluster.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {4 * 1024 * 1024}\r\n\r\n".encode()
        )
        code, body = _response(sock)
    answer = json.loads(body)
    assert (code, answer["reason"]) == (413, "RequestEntityTooLarge")
    assert answer["message"] == f"Request entity too large: limit is {MAX_BODY_BYTES}"


def test_expect_100_continue_with_too_big_a_body_gets_413_not_100(cluster: Cluster) -> None:
    with _tls(cluster) as sock:
        sock.sendall(
            f"POST {NETPOLS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {cluster.token}\r\n"
            f"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )
        code, body = _response(sock)
    assert (code, json.loads(body)["reason"]) == (413, "RequestEntityTooLarge")


def test_yaml_bodies_create_like_json(cluster: Cluster) -> None:
    body = b"metadata: {name: from-yaml}\ndata: {when: 2024-01-01, n: '1'}\n"
    status, answer = raw(
        cluster, "POST", "/api/v1/namespaces/default/configmaps", body, content_type="application/yaml"
    )
    assert status == 201 and answer["data"] == {"when": "2024-01-01", "n": "1"}, answer


def test_chunked_body_over_3_mib_is_413(cluster: Cluster) -> None:
    chunk = b"x" * (1024 * 1024)
    with _tls(cluster) as sock:
        sock.sendall(
            f"POST {NETPOLS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {cluster.token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        for _ in range(4):
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                break  # the server answered and closed: it does not read the rest
        code, body = _response(sock)
    assert (code, json.loads(body)["reason"]) == (413, "RequestEntityTooLarge")


def test_body_just_under_the_limit_is_read(cluster: Cluster) -> None:
    value = "v" * (MAX_BODY_BYTES - 1024)
    body = {"metadata": {"name": "big"}, "data": {"k": value}}
    status, answer = raw(cluster, "POST", "/api/v1/namespaces/default/configmaps", body)
    assert status == 201, answer


def test_plain_http_to_the_tls_port_gets_the_go_servers_answer(cluster: Cluster) -> None:
    host, port = cluster.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data == b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:  # not HTTP, not TLS: closed
        sock.sendall(b"\x00\x01garbage\r\n")
        assert sock.recv(4096) == b""
    assert raw(cluster, "GET", "/version")[0] == 200


def _wrong_values(field: schema.Field) -> list[Any]:
    """Values of a JSON type the Go field cannot take."""
    if field.repeated or field.map:
        return ["x", 5]
    wrong: dict[str, list[Any]] = {
        schema.STRING: [5, True, {}],
        schema.BOOL: ["true", 1],
        schema.INT32: ["1", 1.5, 2**31],
        schema.INT64: ["1", 1.5, 2**63],
        schema.INTSTR: [True, 1.5, {}],
        schema.TIME: [5, "yesterday"],
        schema.BYTES: [5, "not base64!"],
        schema.QUANTITY: [True, {}],
        schema.OBJECT: ["x", []],
    }
    return wrong.get(field.type, ["x", [], 5])


def _mutations(message: str, depth: int = 0) -> Any:
    """(path, wrong value) for every field reachable from `message`, down to depth 5."""
    for key, field in schema.MESSAGES[message].items():
        for value in _wrong_values(field):
            yield [key], value
        if depth < 5 and field.type in schema.MESSAGES and not field.map:
            step: list[Any] = [key, 0] if field.repeated else [key]
            for path, value in _mutations(field.type, depth + 1):
                yield step + path, value


def _with(obj: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    obj = json.loads(json.dumps(obj))
    node: Any = obj
    for here, following in itertools.pairwise(path):
        if isinstance(here, int):
            while len(node) <= here:
                node.append({})
            node = node[here]
            continue
        if not isinstance(node.get(here), list | dict) or (isinstance(following, int)) != isinstance(
            node.get(here), list
        ):
            node[here] = [] if isinstance(following, int) else {}
        node = node[here]
    node[path[-1]] = value
    return obj


BASES = {
    "NetworkPolicy": (NETPOLS, policy({"podSelector": {}})),
    "Pod": ("/api/v1/namespaces/default/pods", {"kind": "Pod", **pod_body("box")}),
    "DaemonSet": (
        "/apis/apps/v1/namespaces/default/daemonsets",
        {
            "kind": "DaemonSet",
            "metadata": {"name": "ds"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": pod_body("x")["spec"]},
            },
        },
    ),
}


@pytest.mark.parametrize("kind", sorted(BASES))
def test_every_wrong_typed_field_is_refused_never_500(cluster: Cluster, kind: str) -> None:
    """Each field the server knows, given a value of the wrong JSON type: 400 (or 422), never 500,
    and nothing stored."""
    path, base = BASES[kind]
    tried = 0
    for field_path, value in _mutations(kind):
        if field_path[0] == "metadata" and field_path[-1] in ("name", "namespace"):
            continue  # the URL decides these
        status, answer = raw(cluster, "POST", path, _with(base, field_path, value))
        assert status in (400, 422), f"{kind} {field_path} = {value!r}: {status} {answer}"
        tried += 1
    assert tried > 100
    assert cluster.store.list(r.NETWORKPOLICIES)[0] == [] and cluster.store.list(r.DAEMONSETS)[0] == []
