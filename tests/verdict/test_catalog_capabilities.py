"""The catalog's cluster-dependent parts with the driver double: SCTP detection both ways (the suites
skip their SCTP cases with the reason when it is missing), and hostNetwork pods through the engine."""

from __future__ import annotations

from typing import Any

import pytest

from netpolcheck.verdict.capabilities import SCTP_DETECTION, sctp_missing
from netpolcheck.verdict.deviations import Status
from netpolcheck.verdict.runner import CaseRunner, RunOptions
from suites.test_host_network import CASES as HOST_CASES
from tests.verdict.double import Cell, FakeClock, FakeDriver

OPTIONS = RunOptions(profile="weave", deadline=3.0, probe_workers=1)


def _sctp(answers: dict[str, str]) -> Any:
    """A dataplane whose SCTP answer depends on the source pod's node (its kernel)."""

    def dataplane(driver: FakeDriver, cell: Cell, now: float) -> str:
        if cell[3] != "SCTP":
            return "allowed"
        return answers[driver.pods[cell[0]]["node"]]

    return dataplane


def test_sctp_is_missing_when_every_probe_pod_reports_it_unsupported() -> None:
    driver = FakeDriver(FakeClock(), _sctp({"node1": "unsupported", "node2": "unsupported"}))
    assert sctp_missing(driver, OPTIONS) == "this pod's kernel has no SCTP (the double's dataplane says so)"
    assert not driver.namespaces and not driver.pods  # the detection case removed what it made


@pytest.mark.parametrize("answer", ["refused", "allowed"])
def test_sctp_is_there_when_the_probe_pods_send_it(answer: str) -> None:
    """Nothing serves SCTP: an INIT answered by an ABORT (`refused`) proves the kernel sent it."""
    driver = FakeDriver(FakeClock(), _sctp({"node1": answer, "node2": answer}))
    assert sctp_missing(driver, OPTIONS) is None
    assert any("create pod" in call for call in driver.calls) and not driver.namespaces


def test_sctp_counts_as_there_when_one_node_has_it() -> None:
    """Mixed kernels: the cases run, and the cells of the node without it are noted as not probed."""
    driver = FakeDriver(FakeClock(), _sctp({"node1": "unsupported", "node2": "refused"}))
    assert sctp_missing(driver, OPTIONS) is None


def test_the_detection_probes_sctp_between_two_nodes() -> None:
    assert {p.protocol for p in SCTP_DETECTION.probes} == {"SCTP"}
    assert len({p.node for p in SCTP_DETECTION.pods}) == 2 and not SCTP_DETECTION.steps


def weave_host_dataplane(driver: FakeDriver, cell: Cell, now: float) -> str:
    """Scripted as Weave behaves under a deny-all ingress in x: traffic to x's pods is dropped, except
    from a hostNetwork pod to a pod of its own node (host-to-local-pod-allowed)."""
    source = driver.pods[cell[0]]
    destination = next(p for p in driver.pods.values() if p["ip"] == cell[1])
    if not driver.policies or destination["hostNetwork"] or not destination["namespace"].endswith("-x"):
        return "allowed"
    local = source["hostNetwork"] and source["node"] == destination["node"]
    return "allowed" if local else "dropped"


@pytest.mark.parametrize("profile", ["weave", "spec"])
def test_a_hostnetwork_pod_reaches_its_own_nodes_pods_under_deny_all(profile: str) -> None:
    """The host pod is created in the node's network (the driver is told so), and the expected matrix
    has its local cells allowed by the documented deviation: passing under weave, an expected failure
    under spec (the deviation shows)."""
    case = next(c for c in HOST_CASES if c.id.startswith("deny-all-ingress"))
    clock = FakeClock()
    driver = FakeDriver(clock, weave_host_dataplane)
    runner = CaseRunner(
        driver, RunOptions(profile=profile, deadline=3.0, probe_workers=1), clock.clock(), lambda _: None
    )
    result = runner.run(case)
    check = result.checks[-1]
    # the driver was asked for a hostNetwork pod: the snapshot it gave the model says so
    assert [p.name for p in check.expectation.state.pods if p.host_network] == ["host"]
    assert result.status is (Status.PASS if profile == "weave" else Status.XFAIL), check.report
    local = {k: cell for k, cell in check.expectation.cells.items() if k.source == "h/host"}
    assert local, "the hostNetwork pod was not probed from"
    if profile == "weave":
        allowed_to = {
            k.destination for k, cell in local.items() if cell.allowed and k.destination.startswith("x/")
        }
        assert allowed_to == {"x/a"}  # x/a is on node 0 with the host pod; x/b and x/c are not
        assert all(
            "host-to-local-pod-allowed" in local[k].deviations for k in local if k.destination == "x/a"
        )
