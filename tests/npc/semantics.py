"""Semantic checks, one per area, run on the hollow cluster (tests/npc/hollowworld.py) and checked
against the model (test_checks_vs_model.py).

One small world: namespaces x (team=red) and y (team=blue); pods x/a, y/a on node1 and x/b, y/b on node2
(y/b has role=client). Each check applies policies and steps as watch events and compares a few witness
cells with what Kubernetes NetworkPolicy (and weave-npc 2.8.1, which agrees on these) gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netpolcheck.npc.kubewatch import Event
from netpolcheck.npc.world import World


def _ns(name: str, team: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"ns-{name}",
            "labels": {"kubernetes.io/metadata.name": name, "team": team},
        }
    }


def _pod(ns: str, name: str, node: str, ip: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": ns,
            "name": name,
            "uid": f"pod-{ns}-{name}",
            "labels": {"pod": name, **labels},
        },
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "podIP": ip},
    }


def _pol(name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name, "uid": f"np-{ns}-{name}"}, "spec": spec}


NAMESPACES = [_ns("x", "red"), _ns("y", "blue")]
PODS = [
    _pod("x", "a", "node1", "10.32.1.20"),
    _pod("x", "b", "node2", "10.32.1.21"),
    _pod("y", "a", "node1", "10.32.1.22"),
    _pod("y", "b", "node2", "10.32.1.23", role="client"),
]
POD_A = {"matchLabels": {"pod": "a"}}
DENY_X = _pol("deny", "x", {"podSelector": {}, "policyTypes": ["Ingress"]})

Cell = tuple[str, str, int, str]  # from, to, port, protocol
Step = tuple[str, str, dict[str, Any]]  # (kind, ADDED|MODIFIED|DELETED, object)


@dataclass
class Check:
    name: str
    policies: list[dict[str, Any]]
    expect: dict[Cell, str]  # verdicts after the steps
    steps: list[Step] = field(default_factory=list)
    hold: Cell | None = None  # a connection opened before the steps, that must survive them


def _tcp(src: str, dst: str, port: int = 80) -> Cell:
    return (src, dst, port, "TCP")


CHECKS: list[Check] = [
    Check(
        "pod-selector",
        [
            _pol(
                "p",
                "x",
                {
                    "podSelector": POD_A,
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
                },
            )
        ],
        {_tcp("x/b", "x/a"): "allowed", _tcp("y/b", "x/a"): "dropped", _tcp("y/a", "x/a"): "dropped"},
    ),
    Check(
        "namespace-selector",
        [
            _pol(
                "p",
                "x",
                {
                    "podSelector": POD_A,
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}],
                },
            )
        ],
        {_tcp("y/a", "x/a"): "allowed", _tcp("y/b", "x/a"): "allowed", _tcp("x/b", "x/a"): "dropped"},
    ),
    Check(
        "namespace-and-pod-selector",
        [
            _pol(
                "p",
                "x",
                {
                    "podSelector": POD_A,
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {"matchLabels": {"team": "blue"}},
                                    "podSelector": {"matchLabels": {"role": "client"}},
                                }
                            ]
                        }
                    ],
                },
            )
        ],
        {_tcp("y/b", "x/a"): "allowed", _tcp("y/a", "x/a"): "dropped", _tcp("x/b", "x/a"): "dropped"},
    ),
    Check(
        "match-expressions",
        [
            _pol(
                "p",
                "x",
                {
                    "podSelector": {
                        "matchExpressions": [{"key": "pod", "operator": "NotIn", "values": ["b"]}]
                    },
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "podSelector": {
                                        "matchExpressions": [
                                            {"key": "pod", "operator": "In", "values": ["b"]}
                                        ]
                                    }
                                }
                            ]
                        }
                    ],
                },
            )
        ],
        {_tcp("x/b", "x/a"): "allowed", _tcp("y/a", "x/a"): "dropped", _tcp("y/a", "x/b"): "allowed"},
    ),
    Check(
        "ipblock-except",
        [
            _pol(
                "p",
                "x",
                {
                    "podSelector": POD_A,
                    "policyTypes": ["Egress"],
                    "egress": [{"to": [{"ipBlock": {"cidr": "10.32.1.0/24", "except": ["10.32.1.22/32"]}}]}],
                },
            )
        ],
        {_tcp("x/a", "x/b"): "allowed", _tcp("x/a", "y/a"): "dropped", _tcp("x/a", "y/b"): "allowed"},
    ),
    Check(
        "ports",
        [
            _pol(
                "p",
                "x",
                {"podSelector": POD_A, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": 80}]}]},
            )
        ],
        {
            _tcp("y/a", "x/a", 80): "allowed",
            _tcp("y/a", "x/a", 81): "dropped",
            ("y/a", "x/a", 80, "UDP"): "dropped",
        },
    ),
    Check(
        "protocols",
        [
            _pol(
                "p",
                "x",
                {
                    "podSelector": POD_A,
                    "policyTypes": ["Ingress"],
                    "ingress": [{"ports": [{"port": 81, "protocol": "UDP"}]}],
                },
            )
        ],
        {
            ("y/a", "x/a", 81, "UDP"): "allowed",
            _tcp("y/a", "x/a", 81): "dropped",
            ("y/a", "x/a", 80, "UDP"): "dropped",
        },
    ),
    Check(
        "egress",
        [
            _pol(
                "p",
                "x",
                {
                    "podSelector": POD_A,
                    "policyTypes": ["Egress"],
                    "egress": [{"to": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}],
                },
            )
        ],
        {
            _tcp("x/a", "x/b"): "allowed",
            _tcp("x/a", "y/a"): "dropped",
            _tcp("x/a", "y/b"): "dropped",
            _tcp("y/a", "x/a"): "allowed",
        },
    ),
    Check(
        "drop-not-reject",
        [DENY_X],
        {_tcp("y/a", "x/a"): "dropped", ("y/a", "x/a", 80, "UDP"): "dropped", _tcp("y/a", "y/b"): "allowed"},
    ),
    Check(
        "policy-update",
        [DENY_X],
        {_tcp("y/a", "x/a"): "allowed", _tcp("x/b", "x/a"): "dropped"},
        steps=[
            (
                "NetworkPolicy",
                "MODIFIED",
                _pol(
                    "deny",
                    "x",
                    {
                        "podSelector": {},
                        "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}],
                    },
                ),
            )
        ],
    ),
    Check(
        "policy-delete",
        [DENY_X],
        {_tcp("y/a", "x/a"): "allowed", _tcp("x/b", "x/a"): "allowed"},
        steps=[("NetworkPolicy", "DELETED", DENY_X)],
    ),
    Check(
        "pod-label-change",
        [
            _pol(
                "p",
                "x",
                {
                    "podSelector": POD_A,
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}
                            ]
                        }
                    ],
                },
            )
        ],
        {_tcp("y/a", "x/a"): "allowed", _tcp("y/b", "x/a"): "dropped"},
        steps=[
            ("Pod", "MODIFIED", _pod("y", "a", "node1", "10.32.1.22", role="client")),
            ("Pod", "MODIFIED", _pod("y", "b", "node2", "10.32.1.23")),
        ],
    ),
    Check(
        "namespace-label-change",
        [
            _pol(
                "p",
                "x",
                {
                    "podSelector": POD_A,
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}],
                },
            )
        ],
        {_tcp("y/a", "x/a"): "dropped", _tcp("x/b", "x/a"): "allowed"},
        steps=[("Namespace", "MODIFIED", _ns("y", "red")), ("Namespace", "MODIFIED", _ns("x", "blue"))],
    ),
    Check(
        "pod-delete-ip-reuse",
        [
            _pol(
                "p",
                "x",
                {
                    "podSelector": POD_A,
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}
                            ]
                        }
                    ],
                },
            )
        ],
        # y/b is deleted; a new pod y/c, not a client, gets its IP (it is probed from the same namespace)
        {_tcp("y/b", "x/a"): "dropped"},
        steps=[("Pod", "DELETED", PODS[3]), ("Pod", "ADDED", _pod("y", "c", "node2", "10.32.1.23"))],
    ),
    Check(
        "established-survives-deny",
        [],
        {_tcp("y/a", "x/a"): "dropped"},
        steps=[("NetworkPolicy", "ADDED", DENY_X)],
        hold=_tcp("y/a", "x/a"),
    ),
    Check(
        "host-to-local-pod", [DENY_X], {("node1", "x/a", 80, "TCP"): "allowed", _tcp("y/a", "x/a"): "dropped"}
    ),
]


def world() -> World:
    return World.from_state({"namespaces": NAMESPACES, "pods": PODS, "policies": []})


def initial_events(policies: list[dict[str, Any]]) -> list[Event]:
    return [
        Event("Namespace", "SYNC", tuple(NAMESPACES)),
        Event("Pod", "SYNC", tuple(PODS)),
        Event("NetworkPolicy", "SYNC", tuple(policies)),
    ]
