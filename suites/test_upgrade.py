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
from netpolcheck.verdict.runner import RunOptions
from netpolcheck.verdict.unpredictable import unpredictable
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
)
NAMED_PORT = apply(
    "z", policy("named-81-tcp", labels(pod="b"), ingress=[{"ports": ports(("serve-81-tcp", "TCP"))}])
)


def upgrade_case(case_id: str, start: str, to: str) -> c.Case:
    """The policies, a held connection across the upgrade; the named-port policy only where both
    versions' own profiles can predict it (`verdict.unpredictable`: 2.6.3+), so `--weave-version 2.0.5
    --upgrade-to 2.1.3` gates everything else instead of being skipped as a whole."""

    def with_policies(*policies: c.ApplyPolicy) -> c.Case:
        return xyz_case(
            case_id,
            *policies,
            c.Hold("z-c-to-y-b", "z", "c", "y", "b"),
            c.UpgradeWeave(to),
            c.Release("z-c-to-y-b"),
            weave_version=start,
        )

    full = with_policies(*POLICIES, NAMED_PORT)
    return full if unpredictable(full, "weave", lambda: start) is None else with_policies(*POLICIES)


FIXED = upgrade_case("upgrade-2-8-1-to-2-9-0-keeps-every-cell-legitimate", "2.8.1", "2.9.0")


def _judge(result: CaseResult, outage_bound_s: float) -> None:
    """Held connections must outlive the upgrade. A pause is legitimate: each node's new weave-npc
    flushes its chains at start, and until it has rebuilt them Weave's FORWARD DROP drops traffic
    toward pods, established too (docs/weave-facts.md#restart-and-errors); it is bounded like an outage."""
    (watch,) = result.watches.values()
    assert watch.rounds >= 2  # at least one round while it rolled and one after
    if result.profile != "spec":
        cut = [h.summary() for h in result.holds.values() if not h.survived]
        assert not cut, f"held connections cut by the upgrade: {cut}"
        bound_ms = outage_bound_s * 1000
        long = [h.summary() for h in result.holds.values() if h.longest_gap_ms() > bound_ms]
        assert not long, f"held connections paused longer than {bound_ms:.0f} ms by the upgrade: {long}"


def test_upgrade_gate(
    verdict: Callable[[c.Case], CaseResult], cluster_options: Any, verdict_options: RunOptions
) -> None:
    """The pipeline's pair: from --weave-version (or what runs) to --upgrade-to. Defined before the fixed
    pair, so it runs first, on the version the session installed: from an older start (2.0.5) the fixed
    pair's move to 2.8.1 is then an upgrade, never a downgrade across 2.4.0 (`weave.downgrade_problem`)."""
    if cluster_options.upgrade_to is None:
        pytest.skip("no --upgrade-to given: nothing to gate")
    start = cluster_options.install_version()
    _judge(
        verdict(
            upgrade_case(
                f"upgrade-gate-{start}-to-{cluster_options.upgrade_to}".replace(".", "-"),
                start,
                cluster_options.upgrade_to,
            )
        ),
        verdict_options.outage_bound,
    )


def test_upgrade_2_8_1_to_2_9_0(verdict: Callable[[c.Case], CaseResult], verdict_options: RunOptions) -> None:
    _judge(verdict(FIXED), verdict_options.outage_bound)
