"""Upgrade gating: the matrix holds before, every round while the weave-net DaemonSet rolls node by
node shows the old version's verdict or the new one's (anything else is a leak or an outage above the
bound), held connections survive, and afterwards every cell shows the new version's verdict.

`--weave-version A --upgrade-to B` gates the pair a pipeline asks about; 2.8.1 -> 2.9.0 always runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy, ports
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, xyz_case

pytestmark = [pytest.mark.upgrade, pytest.mark.cluster_wide]

# policies whose meaning differs between Weave versions (egress, ipBlock, AND peers, named ports)
POLICIES = (
    apply(
        "x",
        policy(
            "from-y-c",
            labels(pod="a"),
            ingress=[{"from": [{"namespaceSelector": labels(ns="y"), "podSelector": labels(pod="c")}]}],
        ),
    ),
    apply(
        "x",
        policy(
            "egress-b-udp", labels(pod="b"), policyTypes=["Egress"], egress=[{"ports": ports((None, "UDP"))}]
        ),
    ),
    apply(
        "y",
        policy(
            "not-from-z-a",
            labels(pod="a"),
            ingress=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["{ip:z/a}/32"]}}]}],
        ),
    ),
    apply("z", policy("named-81-tcp", labels(pod="b"), ingress=[{"ports": ports(("serve-81-tcp", "TCP"))}])),
)


def upgrade_case(case_id: str, start: str, to: str) -> c.Case:
    return xyz_case(
        case_id,
        *POLICIES,
        c.Hold("z-c-to-y-b", "z", "c", "y", "b"),
        c.UpgradeWeave(to),
        c.Release("z-c-to-y-b"),
        weave_version=start,
    )


FIXED = upgrade_case("upgrade-2-8-1-to-2-9-0-keeps-every-cell-legitimate", "2.8.1", "2.9.0")


def _judge(result: CaseResult) -> None:
    (watch,) = result.watches.values()
    assert watch.rounds >= 2  # at least one round while it rolled and one after
    if result.profile != "spec":
        cut = [h.summary() for h in result.holds.values() if not h.survived]
        assert not cut, f"held connections cut by the upgrade: {cut}"


def test_upgrade_2_8_1_to_2_9_0(verdict: Callable[[c.Case], CaseResult]) -> None:
    _judge(verdict(FIXED))


def test_upgrade_gate(verdict: Callable[[c.Case], CaseResult], cluster_options: Any) -> None:
    """The pipeline's pair: from --weave-version (or what runs) to --upgrade-to."""
    if cluster_options.upgrade_to is None:
        pytest.skip("no --upgrade-to given: nothing to gate")
    start = cluster_options.weave_version or "2.8.1"
    _judge(
        verdict(
            upgrade_case(
                f"upgrade-gate-{start}-to-{cluster_options.upgrade_to}".replace(".", "-"),
                start,
                cluster_options.upgrade_to,
            )
        )
    )
