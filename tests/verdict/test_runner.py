"""The runner's bookkeeping with a scripted driver: steps in order, a check after each, names unique
per case, the failure report, expected failures, negative control, and clean-up after a failure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.deviations import Status
from netpolcheck.verdict.results import HoldReport
from netpolcheck.verdict.runner import CaseRunner, RunOptions, negative_control_verdict
from netpolcheck.verdict.weavehome import WeaveHome
from tests.verdict.double import Cell, FakeClock, FakeDriver

DENY_B: dict[str, Any] = {
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-b"},
    "spec": {"podSelector": {"matchLabels": {"pod": "b"}}},
}
CASE = c.Case(
    "deny-b",
    (c.NamespaceDef("x", {"ns": "x"}),),
    (c.PodDef("x", "a", {"pod": "a"}, node=0), c.PodDef("x", "b", {"pod": "b"}, node=1)),
    (c.ApplyPolicy("x", DENY_B), c.DeletePolicy("x", "deny-b")),
    probes=(c.ProbeDef(80, "TCP"),),
)


def isolating_dataplane(delay: float) -> Any:
    """Scripted: traffic to a pod labelled pod=b is dropped `delay` s after any policy exists."""
    since: dict[str, float] = {}

    def dataplane(d: FakeDriver, cell: Cell, now: float) -> str:
        if not d.policies:
            since.clear()
            return "allowed"
        start = since.setdefault("t", now)
        dst = next(p for p in d.pods.values() if p["ip"] == cell[1])
        return "dropped" if dst["labels"].get("pod") == "b" and now - start >= delay else "allowed"

    return dataplane


def _runner(driver: FakeDriver, clock: FakeClock, **options: Any) -> CaseRunner:
    defaults: dict[str, Any] = {"profile": "weave", "deadline": 3.0, "probe_workers": 1}
    opts = RunOptions(**(defaults | options))
    return CaseRunner(driver, opts, clock.clock(), progress=lambda _: None, prefix=lambda case_id: "np-test")


def test_each_step_is_followed_by_a_check_and_everything_is_removed() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, isolating_dataplane(0.25))
    result = _runner(driver, clock).run(CASE)
    assert result.status is Status.PASS, [ch.report for ch in result.checks]
    assert [ch.step for ch in result.checks] == [
        "initial state",
        "apply policy x/deny-b",
        "delete policy x/deny-b",
    ]
    assert driver.calls[:4] == [
        "create namespace np-test-x",
        "create pod np-test-x/a on node1",
        "create pod np-test-x/b on node2",
        "apply policy np-test-x/deny-b",
    ]
    assert driver.calls[-1] == "delete namespace np-test-x" and not driver.namespaces
    applied = result.checks[1].convergence
    assert applied.converged and applied.ms is not None and applied.lower_ms <= 250 <= applied.ms
    assert result.checks[1].expectation.profile == "weave-2.8.1"
    # the table keys are the case's logical names, not the cluster's
    assert {k.destination for k in result.checks[1].expectation.cells} == {"x/a", "x/b"}


def test_a_wrong_cell_fails_with_tables_and_per_cell_forensics() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, lambda d, cell, now: "allowed")  # never enforces
    driver.journals["np-test-x/b"] = [
        {"event": "syn", "proto": "tcp", "port": 80, "peer": "10.32.0.11:40000"}
    ]
    stamp = "node2: WARN: 2026/11/30 10:00:00.000000"
    driver.blocked = [
        f"{stamp} TCP connection from 10.32.0.99:1 to 10.32.0.12:80 blocked by Weave NPC.",  # another source
        f"{stamp} TCP connection from 10.32.0.11:5 to 10.32.0.12:80 blocked by Weave NPC.",
    ]
    result = _runner(driver, clock).run(CASE)
    assert result.status is Status.FAIL
    (failed,) = result.failures()
    assert failed.step == "apply policy x/deny-b" and not failed.convergence.converged
    text = failed.report
    for part in ("expected TCP 80:", "observed TCP 80:", "difference TCP 80:", "wrong: 1"):
        assert part in text
    assert "x/a -> x/b TCP/80: expected denied, observed allowed" in text
    assert "evidence (1 attempt(s)): SYN-ACK from 10.32.0.12:80" in text
    assert "journal: reached the destination (1 journal record(s): syn)" in text
    assert f"blocked: {stamp} TCP connection from 10.32.0.11:5" in text
    assert "10.32.0.99" not in text
    assert "model:" in text and "deny-b" in text and "isolated by" in text
    assert "not converged after" in text
    assert not driver.namespaces  # cleaned up after the failure too


def test_a_documented_deviation_under_spec_is_an_expected_failure() -> None:
    """On Weave 2.1.3 an egress-only policy isolates ingress too: spec says otherwise."""
    egress_only = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "egress-only"},
        "spec": {"podSelector": {"matchLabels": {"pod": "b"}}, "policyTypes": ["Egress"], "egress": [{}]},
    }
    case = c.Case("egress-only", CASE.namespaces, CASE.pods, (c.ApplyPolicy("x", egress_only),), CASE.probes)
    clock = FakeClock()
    driver = FakeDriver(clock, isolating_dataplane(0.0), weave_version="2.1.3")
    result = _runner(driver, clock, profile="spec").run(case)
    check = result.checks[1]
    assert check.status is Status.XFAIL, check.report
    assert "egress-only-policy-isolates-ingress" in check.status_note
    assert check.prediction is not None and check.prediction.deviations[0].provenance in check.status_note
    assert check.deviations_shown == ("egress-only-policy-isolates-ingress",)
    assert check.convergence.converged  # converged on the implementation's expectation, not the deadline
    assert result.status is Status.XFAIL
    # under the implementation's own profile the same run passes
    clock = FakeClock()
    driver = FakeDriver(clock, isolating_dataplane(0.0), weave_version="2.1.3")
    assert _runner(driver, clock, profile="weave").run(case).status is Status.PASS


def test_negative_control_does_not_apply_policies_and_must_fail() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, isolating_dataplane(0.0))
    result = _runner(driver, clock, negative_control=True, deadline=0.5).run(CASE)
    assert not any(call.startswith(("apply policy", "delete policy")) for call in driver.calls)
    assert result.checks[1].status is Status.FAIL
    assert negative_control_verdict(result) == (
        True,
        "check 1 (apply policy x/deny-b) failed as it must: 1 wrong cell(s)",
    )


def test_negative_control_of_a_case_whose_policy_changes_nothing_cannot_prove_anything() -> None:
    allow_all = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow"},
        "spec": {"podSelector": {}, "ingress": [{}]},
    }
    case = c.Case("allow-all", CASE.namespaces, CASE.pods, (c.ApplyPolicy("x", allow_all),), CASE.probes)
    clock = FakeClock()
    result = _runner(FakeDriver(clock), clock, negative_control=True).run(case)
    proved, why = negative_control_verdict(result)
    assert not proved and "cannot fail" in why


def test_a_step_that_raises_still_removes_the_namespaces() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock)

    def broken(namespace: str, manifest: Mapping[str, Any]) -> None:
        raise RuntimeError("API server went away")

    driver.apply_policy = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="went away"):
        _runner(driver, clock).run(CASE)
    assert not driver.namespaces


def test_policy_placeholders_name_the_cluster_namespace() -> None:
    by_name = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "from-x"},
        "spec": {
            "podSelector": {},
            "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "{ns:x}"}}}]}
            ],
        },
    }
    case = c.Case("by-name", CASE.namespaces, CASE.pods, (c.ApplyPolicy("x", by_name),), CASE.probes)
    clock = FakeClock()
    driver = FakeDriver(clock)
    assert _runner(driver, clock).run(case).status is Status.PASS
    assert driver.calls[3] == "apply policy np-test-x/from-x"


def test_a_case_that_moves_weave_puts_the_cluster_back() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, weave_version="2.8.1")
    case = c.Case(
        "upgrade", CASE.namespaces, CASE.pods, (c.UpgradeWeave("2.1.3"),), CASE.probes, weave_version="2.0.5"
    )
    result = _runner(driver, clock).run(case)
    assert [call for call in driver.calls if call.startswith("upgrade")] == [
        "upgrade weave 2.0.5",
        "upgrade weave 2.1.3",
        "upgrade weave 2.8.1",
    ]
    assert [ch.expectation.profile for ch in result.checks] == ["weave-2.0.5", "weave-2.1.3"]
    assert driver.weave_version == "2.8.1" and result.status is Status.PASS


def test_with_a_weave_home_the_next_case_on_the_sessions_version_puts_weave_back_first() -> None:
    """weavehome.py: the rollback is paid by the next case that needs it, not by the case that moved."""
    clock = FakeClock()
    driver = FakeDriver(clock, isolating_dataplane(0.0), weave_version="2.8.1")
    home = WeaveHome("2.8.1")
    said: list[str] = []
    runner = CaseRunner(
        driver,
        RunOptions(profile="weave", deadline=3.0, probe_workers=1),
        clock.clock(),
        progress=said.append,
        prefix=lambda case_id: "np-test",
        home=home,
    )
    upgrade = c.Case("upgrade", CASE.namespaces, CASE.pods, (c.UpgradeWeave("2.9.0"),), CASE.probes)
    assert runner.run(upgrade).status is Status.PASS
    assert driver.weave_version == "2.9.0" and home.moved(driver) == "2.9.0"  # left where the case put it

    assert runner.run(CASE).status is Status.PASS
    assert [call for call in driver.calls if call.startswith("upgrade")] == [
        "upgrade weave 2.9.0",
        "upgrade weave 2.8.1",
    ]
    assert "putting Weave back from 2.9.0 to 2.8.1 (deny-b runs on the session's version)" in said
    # the case ran on the session's version: its first call after the rollback made its namespace
    first_after = driver.calls.index("upgrade weave 2.8.1") + 1
    assert driver.calls[first_after].startswith("create namespace")
    assert home.moved(driver) is None and not home.bring_back(driver, said.append, "nothing to do")


def test_ip_placeholders_take_the_pod_ips_of_the_case() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock)
    seen: list[dict[str, Any]] = []
    apply = driver.apply_policy

    def recorded(namespace: str, manifest: Mapping[str, Any]) -> None:
        seen.append(dict(manifest))
        apply(namespace, manifest)

    driver.apply_policy = recorded  # type: ignore[method-assign]
    block = c.ApplyPolicy(
        "x",
        {
            "kind": "NetworkPolicy",
            "metadata": {"name": "not-from-a"},
            "spec": {
                "podSelector": {},
                "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["{ip:x/a}/32"]}}]}],
            },
        },
    )
    case = c.Case("ipblock", CASE.namespaces, CASE.pods, (block,), CASE.probes)
    _runner(driver, clock, deadline=0.2).run(case)
    assert seen[0]["spec"]["ingress"][0]["from"][0]["ipBlock"]["except"] == ["10.32.0.11/32"]


def test_held_connections_are_reported_and_released_even_when_the_case_forgets() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock)
    steps = (
        c.Hold("ab", "x", "a", "x", "b"),
        c.ApplyPolicy("x", DENY_B),
        c.Release("ab"),
        c.Hold("ba", "x", "b", "x", "a", port=81, udp_port=None),
    )
    case = c.Case("holds", CASE.namespaces, CASE.pods, steps, CASE.probes)
    driver.hold_gaps = [{"start": 1.0, "end": 2.0, "lost": 3}]
    result = _runner(driver, clock, deadline=0.2).run(case)
    assert "hold ab from np-test-x/a to 10.32.0.12:80" in driver.calls
    assert "hold ba from np-test-x/b to 10.32.0.11:81" in driver.calls
    assert driver.calls.index("release ba") < driver.calls.index("delete namespace np-test-x")
    ab = result.holds["ab"]
    assert ab.survived and not ab.gapless and ab.longest_gap_ms() == 1000.0
    assert ab.summary() == "hold ab: tcp: 1 gap(s), udp: 0 gap(s) (longest 1000 ms); ended: stopped"
    assert not driver.holds


@pytest.mark.parametrize(
    ("flows", "ended", "survived", "gapless", "summary"),
    [
        ({"tcp": {"gaps": []}, "udp": {"gaps": []}}, "stopped", True, True, "udp: 0 gap(s); ended"),
        (
            {"tcp": {"gaps": []}, "udp": {"gaps": [{"start": 5.0, "end": 5.2}, {"start": 7.0, "end": 7.05}]}},
            "stopped",
            True,
            False,
            "udp: 2 gap(s) (longest 200 ms); ended",
        ),
        (
            {"tcp": {"gaps": [{"start": 5.0, "end": None}], "in_gap": True}},
            "stopped",
            False,
            False,
            "(one unended); ended",
        ),
        ({"tcp": {"gaps": []}}, "TCP connection reset", False, False, "ended: TCP connection reset"),
        ({}, "stopped", False, False, "hold h: ; ended: stopped"),
    ],
)
def test_a_held_connection_survives_pauses_but_not_an_unended_gap_or_a_reset(
    flows: dict[str, Any], ended: str, survived: bool, gapless: bool, summary: str
) -> None:
    hold = HoldReport("h", {"flows": flows, "ended": {"how": ended}})
    assert (hold.survived, hold.gapless) == (survived, gapless)
    assert summary in hold.summary()


def test_a_controller_restart_is_watched_against_the_same_expectation() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, isolating_dataplane(0.0))
    case = c.Case(
        "restart",
        CASE.namespaces,
        CASE.pods,
        (c.ApplyPolicy("x", DENY_B), c.RestartController()),
        CASE.probes,
    )
    result = _runner(driver, clock).run(case)
    assert "restart controller" in driver.calls
    assert set(result.watches) == {2}
    watch = result.watches[2]
    assert watch.rounds >= 1 and not watch.leaks and not watch.outages
    assert result.status is Status.PASS
