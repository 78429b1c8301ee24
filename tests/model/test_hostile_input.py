"""`netpolcheck expect` on hostile input: every case through the real command, exit 2, one line.

Each input is one a real API server rejects (or JSON a strict reader refuses); none may crash the
command, be accepted, or put a control character or a line break from the input into the message.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.model.builders import netpol, one_policy_world, sel, set_at

Mutation = Callable[[dict[str, Any]], None]


def _run(path: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netpolcheck.cli", "expect", path, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="strict",
        timeout=120,
        check=False,
        env=env,
    )


def _base() -> dict[str, Any]:
    return one_policy_world(externals=[{"name": "world", "ip": "203.0.113.7"}])


def _set(*path: Any) -> Callable[[Any], Mutation]:
    return lambda value: set_at(path, value)


POD = ("pods", 0)
NS = ("namespaces", 0)
POLICY = ("policies", 0)
SPEC = (*POLICY, "spec")
RULE = (*SPEC, "ingress", 0)
PEER = (*RULE, "from", 0)
BLOCK = (*RULE, "from")
PORT = (*RULE, "ports", 0)


def _duplicate_ip(doc: dict[str, Any]) -> None:
    doc["pods"][1]["ip"] = doc["pods"][0]["ip"]


def _external_on_pod_ip(doc: dict[str, Any]) -> None:
    doc["externals"][0]["ip"] = doc["pods"][4]["ip"]


def _host_pods_on_two_nodes_share_ip(doc: dict[str, Any]) -> None:
    for i, node in ((0, "n1"), (1, "n2")):
        doc["pods"][i].update(hostNetwork=True, node=node, ip="192.168.0.1")


# (id, mutation, fragment of the one error line)
CASES: list[tuple[str, Mutation, str]] = [
    # names
    (
        "namespace name uppercase",
        _set(*NS, "name")("X"),
        'namespace X: name: Invalid value: "X": a lowercase RFC 1123 label',
    ),
    ("namespace name 64 chars", _set(*NS, "name")("n" * 64), "must be no more than 63 characters"),
    (
        "pod name with underscore",
        _set(*POD, "name")("a_b"),
        'pod x/a_b: name: Invalid value: "a_b": a lowercase RFC 1123 subdomain',
    ),
    ("pod name 254 chars", _set(*POD, "name")("a" * 254), 'name: Invalid value: "aaaa'),
    ("pod namespace syntax", _set(*POD, "namespace")("X.y"), 'namespace: Invalid value: "X.y"'),
    ("node name syntax", _set(*POD, "node")("Node_1"), 'pod x/a: node: Invalid value: "Node_1"'),
    (
        "policy name syntax",
        _set(*POLICY, "metadata", "name")("P!"),
        'policy x/P!: metadata.name: Invalid value: "P!"',
    ),
    (
        "policy name with newline",
        _set(*POLICY, "metadata", "name")("p\nq"),
        'policy x/p\\nq: metadata.name: Invalid value: "p\\nq"',
    ),
    (
        "policy namespace syntax",
        _set(*POLICY, "metadata", "namespace")("x_y"),
        'metadata.namespace: Invalid value: "x_y"',
    ),
    (
        "external name with escape",
        _set("externals", 0, "name")("w\x1b[31m"),
        'invalid external name "w\\u001b[31m"',
    ),
    # labels and annotations
    (
        "label key with space",
        _set(*POD, "labels")({"bad key": "v"}),
        'pod x/a: labels: Invalid value: "bad key": name part must consist',
    ),
    ("label key two slashes", _set(*POD, "labels")({"a/b/c": "v"}), "a qualified name must consist"),
    ("label key empty prefix", _set(*POD, "labels")({"/app": "v"}), "prefix part must be non-empty"),
    (
        "label key prefix uppercase",
        _set(*POD, "labels")({"Example.com/app": "v"}),
        "prefix part a lowercase RFC 1123 subdomain",
    ),
    (
        "label key prefix 254 chars",
        _set(*POD, "labels")({"a" * 254 + "/app": "v"}),
        "prefix part must be no more than 253 characters",
    ),
    (
        "label key name 64 chars",
        _set(*POD, "labels")({"k" * 64: "v"}),
        "name part must be no more than 63 characters",
    ),
    ("label value 64 chars", _set(*POD, "labels")({"k": "v" * 64}), 'labels: Invalid value: "vvvv'),
    (
        "label value syntax",
        _set(*NS, "labels")({"k": "bad value!"}),
        'namespace x: labels: Invalid value: "bad value!": a valid label',
    ),
    ("label value control char", _set(*NS, "labels")({"k": "v\x07"}), '"v\\u0007"'),
    ("label value bidi override", _set(*NS, "labels")({"k": "\u202egnp.exe"}), '"\\u202egnp.exe"'),
    (
        "label value not a string",
        _set(*POD, "labels")({"k": 1}),
        "labels: Invalid value: 1: must be a string",
    ),
    (
        "labels not an object",
        _set(*POD, "labels")(["k"]),
        "labels: Invalid value: (a list): must be an object",
    ),
    (
        "annotation key syntax",
        _set(*NS, "annotations")({"bad key": "v"}),
        'annotations: Invalid value: "bad key"',
    ),
    (
        "annotation value not a string",
        _set(*NS, "annotations")({"k": {"a": 1}}),
        "annotations.k: Invalid value: (an object): must be a string",
    ),
    (
        "annotations over 256 KiB",
        _set(*NS, "annotations")({"k": "v" * 262_200}),
        "must have at most 262144 bytes",
    ),
    # addresses
    (
        "pod IP integer",
        _set(*POD, "ip")(167772161),
        "pod x/a: ip: Invalid value: 167772161: must be an IP address string",
    ),
    (
        "pod IP boolean",
        _set(*POD, "ip")(True),
        "pod x/a: ip: Invalid value: true: must be an IP address string",
    ),
    (
        "pod IP with zone",
        _set(*POD, "ip")("fe80::1%eth0"),
        'ip: Invalid value: "fe80::1%eth0": must be a valid IP address',
    ),
    ("pod IP leading zeros", _set(*POD, "ip")("010.0.1.1"), 'ip: Invalid value: "010.0.1.1"'),
    ("pod IP missing", _set(*POD, "ip")(None), "pod x/a: ip: Invalid value: null"),
    (
        "external IP integer",
        _set("externals", 0, "ip")(3405803783),
        "external world: ip: Invalid value: 3405803783",
    ),
    ("duplicate pod IPs", _duplicate_ip, "pod x/b: ip: 10.0.1.1 is already the address of pod x/a"),
    (
        "external on a pod IP",
        _external_on_pod_ip,
        "external world: ip: 10.0.2.2 is already the address of pod y/b",
    ),
    (
        "host pods of two nodes share an IP",
        _host_pods_on_two_nodes_share_ip,
        "pod x/b: ip: 192.168.0.1 is already",
    ),
    (
        "cidr not a string",
        _set(*BLOCK)([{"ipBlock": {"cidr": 167772160}}]),
        "ipBlock.cidr: Invalid value: 167772160: must be a valid CIDR",
    ),
    ("cidr without prefix", _set(*BLOCK)([{"ipBlock": {"cidr": "10.0.0.0"}}]), "must be a valid CIDR"),
    ("cidr missing", _set(*BLOCK)([{"ipBlock": {"except": ["10.0.0.0/8"]}}]), "ipBlock.cidr: Required value"),
    (
        "except a number",
        _set(*BLOCK)([{"ipBlock": {"cidr": "10.0.0.0/8", "except": 5}}]),
        "ipBlock.except: Invalid value: 5: must be a list",
    ),
    (
        "except an object",
        _set(*BLOCK)([{"ipBlock": {"cidr": "10.0.0.0/8", "except": {"a": "10.1.0.0/16"}}}]),
        "ipBlock.except: Invalid value: (an object): must be a list",
    ),
    (
        "except equal to cidr",
        _set(*BLOCK)([{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]),
        "must be a strict subset of `cidr`",
    ),
    (
        "except other family",
        _set(*BLOCK)([{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["::/1"]}}]),
        "must be a strict subset of `cidr`",
    ),
    # ports and protocols
    (
        "policy port 0",
        _set(*PORT)({"port": 0}),
        "ports[0].port: Invalid value: 0: must be between 1 and 65535",
    ),
    ("policy port 65536", _set(*PORT)({"port": 65536}), "must be between 1 and 65535"),
    (
        "policy port boolean",
        _set(*PORT)({"port": True}),
        "ports[0].port: Invalid value: true: must be a port number or name",
    ),
    ("policy port float", _set(*PORT)({"port": 80.5}), "ports[0].port: Invalid value: 80.5"),
    ("port name with double hyphen", _set(*PORT)({"port": "a--b"}), "must not contain consecutive hyphens"),
    (
        "endPort below port",
        _set(*PORT)({"port": 90, "endPort": 80}),
        "endPort: Invalid value: 80: must be greater than or equal to `port`",
    ),
    (
        "endPort with a named port",
        _set(*PORT)({"port": "http", "endPort": 90}),
        "may not be specified when `port` is non-numeric",
    ),
    ("endPort without port", _set(*PORT)({"endPort": 90}), "ports[0].port: Required value"),
    ("endPort out of range", _set(*PORT)({"port": 80, "endPort": 70000}), "endPort: Invalid value: 70000"),
    (
        "protocol lower case",
        _set(*PORT)({"port": 80, "protocol": "tcp"}),
        'protocol: Unsupported value: "tcp"',
    ),
    (
        "protocol ICMP",
        _set(*PORT)({"port": 80, "protocol": "ICMP"}),
        'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
    ),
    (
        "container port name uppercase",
        _set(*POD, "ports")([{"name": "HTTP", "containerPort": 80}]),
        'ports[0].name: Invalid value: "HTTP"',
    ),
    (
        "container port names repeat",
        _set(*POD, "ports")([{"name": "h", "containerPort": 80}, {"name": "h", "containerPort": 81}]),
        'ports[1].name: Duplicate value: "h"',
    ),
    (
        "container port a string",
        _set(*POD, "ports")([{"containerPort": "80"}]),
        'ports[0].containerPort: Invalid value: "80": must be a port number',
    ),
    ("probe port boolean", _set("probes")([{"port": False}]), "probes[0]: port: Invalid value: false"),
    # policy shape
    ("spec a string", _set(*SPEC)("x"), 'policy x/p: spec: Invalid value: "x": must be an object'),
    (
        "ingress rule a number",
        _set(*SPEC, "ingress")([5]),
        "spec.ingress[0]: Invalid value: 5: must be a rule object",
    ),
    ("ingress a string", _set(*SPEC, "ingress")("all"), 'spec.ingress: Invalid value: "all": must be a list'),
    (
        "peer a string",
        _set(*BLOCK)(["everyone"]),
        'from[0]: Invalid value: "everyone": must be a peer object',
    ),
    ("empty peer", _set(*BLOCK)([{}]), "from[0]: Required value: must specify a peer"),
    (
        "policyTypes a string",
        _set(*SPEC, "policyTypes")("Ingress"),
        'spec.policyTypes: Invalid value: "Ingress": must be a list',
    ),
    (
        "policyTypes unknown",
        _set(*SPEC, "policyTypes")(["Sideways"]),
        'spec.policyTypes[0]: Unsupported value: "Sideways"',
    ),
    (
        "policyTypes three",
        _set(*SPEC, "policyTypes")(["Ingress", "Egress", "Ingress"]),
        "may not specify more than two policyTypes",
    ),
    (
        "selector operator",
        _set(*PEER, "podSelector")({"matchExpressions": [{"key": "a", "operator": "Near", "values": ["b"]}]}),
        'operator: Invalid value: "Near": not a valid selector operator',
    ),
    (
        "selector key syntax",
        _set(*PEER, "podSelector")({"matchExpressions": [{"key": "a b", "operator": "Exists"}]}),
        'matchExpressions[0].key: Invalid value: "a b"',
    ),
    (
        "selector value syntax",
        _set(*PEER, "podSelector")({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b c"]}]}),
        'values[0]: Invalid value: "b c"',
    ),
    (
        "Exists with values",
        _set(*PEER, "podSelector")(
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]}
        ),
        "values: Forbidden: may not be specified when `operator` is 'Exists'",
    ),
    (
        "matchLabels key syntax",
        _set(*SPEC, "podSelector")({"matchLabels": {"a/b/c": "x"}}),
        'spec.podSelector.matchLabels: Invalid value: "a/b/c"',
    ),
    (
        "hostNetwork a string",
        _set(*POD, "hostNetwork")("yes"),
        'pod x/a: hostNetwork: Invalid value: "yes": must be true or false',
    ),
    (
        "unknown field",
        _set(*POD, "image")("nginx"),
        "pod x/a: image: unknown field; allowed here: hostNetwork, ip, labels, name, namespace, node, ports",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_state_is_refused_in_one_line(tmp_path: Path, mutate: Mutation, message: str) -> None:
    doc = _base()
    mutate(doc)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    _assert_refused(_run(str(path)), message)


def _assert_refused(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, proc.stdout[:500] + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("netpolcheck: error: ")
    assert line.isascii() and line.isprintable(), line  # no control character from the input
    assert message in line


RAW_CASES = [
    ("deep nesting", "[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    (
        "deep nesting inside a field",
        '{"namespaces": ' + "[" * 50_000 + "]" * 50_000 + "}",
        "nested too deeply",
    ),
    ("huge number", '{"probes": [{"port": ' + "9" * 5000 + "}]}", "invalid JSON number: Exceeds the limit"),
    ("NaN", '{"probes": [{"port": NaN}]}', "invalid JSON number: NaN is not a JSON number"),
    ("Infinity", '{"probes": [{"port": -Infinity}]}', "-Infinity is not a JSON number"),
    ("top level a list", "[]", "STATE: (top level): must be a JSON object"),
    (
        "namespaces an object",
        '{"namespaces": {"x": {}}}',
        "STATE: namespaces: must be a list, got (an object)",
    ),
]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES])
def test_hostile_json_is_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "state.json"
    path.write_text(text)
    _assert_refused(_run(str(path)), message)


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b'{"namespaces": [{"name": "\xff\xfe"}]}')
    _assert_refused(_run(str(path)), "not UTF-8 text (byte 26)")


def test_an_integer_ip_no_longer_matches_an_ipblock(tmp_path: Path) -> None:
    """`ip: 1` used to become 0.0.0.1 and match 0.0.0.0/8: a wrong verdict, now a refusal."""
    doc = _base()
    doc["policies"] = [
        netpol(
            "x/p", {"podSelector": sel(pod="a"), "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/8"}}]}]}
        )
    ]
    doc["pods"][1]["ip"] = 1
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    _assert_refused(_run(str(path)), "pod x/b: ip: Invalid value: 1: must be an IP address string")


def test_host_network_pods_of_one_node_may_share_the_node_ip(tmp_path: Path) -> None:
    doc = _base()
    for i in (0, 1):
        doc["pods"][i].update(hostNetwork=True, node="n1", ip="192.168.0.1")
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    proc = _run(str(path))
    assert proc.returncode == 0, proc.stderr


def test_the_base_state_is_valid(tmp_path: Path) -> None:
    """Every hostile case above differs from this accepted state by its mutation alone."""
    path = tmp_path / "state.json"
    path.write_text(json.dumps(copy.deepcopy(_base())))
    assert _run(str(path)).returncode == 0


@pytest.mark.parametrize(
    "env",
    [
        {"PYTHONIOENCODING": "ascii"},
        {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0", "PYTHONIOENCODING": ""},
    ],
    ids=["PYTHONIOENCODING=ascii", "LANG=C"],
)
def test_output_to_a_stdout_that_is_not_utf8(tmp_path: Path, env: dict[str, str]) -> None:
    """The table, the JSON and an explanation (whose provenance has a non-ASCII '§') all get written."""
    doc = _base()
    named = {
        "podSelector": {},
        "ingress": [{"from": [{"podSelector": sel(pod="c")}], "ports": [{"port": "http"}]}],
    }
    doc["policies"].append(netpol("y/named", named))
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    child_env = {**os.environ, **env}
    for args in (
        ["--format", "table", "--profile", "weave-2.8.1"],
        ["--profile", "weave-2.8.1"],
        ["--profile", "weave-2.8.1", "--explain", "x/b", "y/a"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "netpolcheck.cli", "expect", str(path), *args],
            capture_output=True,
            timeout=120,
            check=False,
            env=child_env,
        )
        assert proc.returncode == 0, (args, proc.stderr.decode("utf-8", "replace"))
        assert proc.stderr == b""
        assert proc.stdout.isascii()
    assert b"docs/weave-facts.md#" in proc.stdout  # the explanation, with its provenance, was written
