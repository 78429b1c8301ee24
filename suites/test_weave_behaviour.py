"""How Weave denies: silently (dropped, never rejected) and with a "blocked by Weave NPC" line per
denied connection attempt, on the destination's node; multicast passes whatever the policies say; the
policies hold across a restart of the policy controller."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from netpolcheck.kube.connection import KubeApi
from netpolcheck.model.profiles import MULTICAST_ALLOWED
from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import policy, probes, two_namespaces_three_pods
from netpolcheck.verdict.deviations import Status
from netpolcheck.verdict.driver import Driver, PodSpec
from netpolcheck.verdict.forensics import blocked_for
from netpolcheck.verdict.naming import Naming, run_prefix
from netpolcheck.verdict.profile import run_profile
from netpolcheck.verdict.results import CaseResult
from netpolcheck.verdict.runner import RunOptions
from suites.catalog import needs_isolation_by_policy
from suites.multicast import GROUP, PORT, Member, round_trip

pytestmark = [pytest.mark.weave]

DENY = c.Case(
    "deny-all-drops-and-logs",
    *two_namespaces_three_pods(),
    (c.ApplyPolicy("x", policy("deny-all", ingress=[])),),
    probes((80,), ("TCP", "UDP")),
    check_first=False,
)


def test_denied_connections_are_dropped_not_rejected_and_logged(
    verdict: Callable[[c.Case], CaseResult], verdict_driver: Driver
) -> None:
    needs_isolation_by_policy(verdict_driver)
    since = time.time()
    result = verdict(DENY)
    check = result.checks[-1]
    denied = sorted(k for k, cell in check.expectation.cells.items() if not cell.allowed)
    assert len(denied) == 8  # to x/a and x/b from each of the two others, TCP and UDP
    assert {check.observed[k].verdict for k in denied} == {"dropped"}
    lines = verdict_driver.blocked_lines(since)
    unlogged = [k for k in denied if not blocked_for(lines, check.expectation.targets[k])]
    assert not unlogged, f"denied without a 'blocked by Weave NPC' line: {unlogged}"


RESTART = c.Case(
    "policies-hold-across-a-policy-controller-restart",
    *two_namespaces_three_pods(),
    (
        c.ApplyPolicy(
            "x", policy("from-b", ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}])
        ),
        c.RestartController(),
    ),
    probes((80,), ("TCP",)),
    check_first=False,
)


@pytest.mark.cluster_wide
def test_policies_hold_across_a_policy_controller_restart(verdict: Callable[[c.Case], CaseResult]) -> None:
    """weave-npc's pods are deleted and the DaemonSet starts new ones; after the restart the matrix is
    the same (its convergence time is the outage bound of the restart, a JUnit property)."""
    result = verdict(RESTART)
    assert [ch.step for ch in result.checks] == ["apply policy x/from-b", "restart the policy controller"]


MULTICAST_POLICY = policy("deny-all-both-ways", policyTypes=["Ingress", "Egress"])


@pytest.mark.multicast
def test_multicast_is_allowed_through_deny_all(
    verdict_driver: Driver, kube_api: KubeApi, verdict_options: RunOptions, certify: Callable[..., None]
) -> None:
    """A receiver in a namespace with deny-all both ways hears multicast from a pod of its own node
    and from one on another node, while unicast to it is dropped (docs/weave-facts.md
    #multicast-always-allowed). Under a profile without the deviation (spec) the delivery is the
    documented deviation: an expected failure, strict (it fails if the multicast does not get through).
    Under negative control it is skipped: multicast passes with or without enforcement, so switching
    enforcement off cannot make it fail."""
    if verdict_options.negative_control:
        pytest.skip("negative control: multicast is allowed with or without policies; this case cannot fail")
    needs_isolation_by_policy(verdict_driver)  # the receiver must be shown unreachable by unicast
    case_id = "multicast-is-allowed-through-deny-all"
    naming = Naming(case_id, run_prefix(case_id))
    x, y = naming.namespace("x"), naming.namespace("y")
    nodes = verdict_driver.info().nodes
    created: list[str] = []
    try:
        for name, logical in ((x, "x"), (y, "y")):
            verdict_driver.create_namespace(name, naming.namespace_labels(logical, {"ns": logical}))
            created.append(name)
        verdict_driver.create_pods(
            [
                PodSpec(x, "a", {"pod": "a"}, nodes[0]),
                PodSpec(y, "a", {"pod": "a"}, nodes[0]),  # the receiver's node
                PodSpec(y, "b", {"pod": "b"}, nodes[1 % len(nodes)]),  # another node, when there is one
            ]
        )
        ips = {f"{p['namespace']}/{p['name']}": str(p["ip"]) for p in verdict_driver.snapshot([x, y])["pods"]}
        verdict_driver.apply_policy(x, MULTICAST_POLICY)
        receiver = Member(x, "a", ips[f"{x}/a"])
        _wait_unicast_dropped(verdict_driver, y, receiver)
        senders = [Member(y, "a", ips[f"{y}/a"]), Member(y, "b", ips[f"{y}/b"])]
        heard = round_trip(kube_api, receiver, senders)
    finally:
        for name in reversed(created):
            verdict_driver.delete_namespace(name)
    short = {y: "y", x: "x"}
    missing = sorted(f"{short[s.namespace]}/{s.pod}" for s in senders if heard.get(s.ip) != s.pod)
    where = {"y/a": "the receiver's node", "y/b": str(nodes[1 % len(nodes)])}
    seen = [
        f"x/a, under deny-all both ways (unicast TCP 80 to it dropped), listened on {GROUP}:{PORT}",
        *(f"{name} ({where[name]}): {'not heard' if name in missing else 'heard'}" for name in sorted(where)),
    ]
    profile = run_profile(verdict_options.profile, verdict_driver.info().weave_version)
    if profile.has(MULTICAST_ALLOWED):
        certify(Status.FAIL if missing else Status.PASS, seen, case_id=case_id)
        assert not missing, (
            f"multicast to {GROUP}:{PORT} through deny-all not heard from {missing}; heard {heard}"
        )
        return
    if missing:
        certify(Status.XPASS, seen, f"the documented deviation {MULTICAST_ALLOWED} did not show", case_id)
        pytest.fail(
            f"[XPASS(strict)] the documented deviation {MULTICAST_ALLOWED} did not show: multicast from "
            f"{missing} was not heard through deny-all (heard {heard})",
            pytrace=False,
        )
    certify(Status.XFAIL, seen, case_id=case_id)
    pytest.xfail(f"documented deviation {MULTICAST_ALLOWED} (docs/weave-facts.md#{MULTICAST_ALLOWED})")


def _wait_unicast_dropped(
    driver: Driver, source_namespace: str, receiver: Member, bound: float = 30.0
) -> None:
    """Until y/a's TCP 80 to the receiver is dropped: the deny-all is in force before multicast is sent."""
    target = {"id": "unicast", "ip": receiver.ip, "port": 80, "protocol": "TCP"}
    end = time.monotonic() + bound
    last: list[dict[str, object]] = []
    while time.monotonic() < end:
        last = driver.probe(source_namespace, "a", [target], 0.5)
        if last and last[0].get("verdict") == "dropped":
            return
    pytest.fail(
        f"waited {bound:g} s for deny-all to drop unicast TCP 80 to {receiver.ip}; last probe: {last}"
    )
