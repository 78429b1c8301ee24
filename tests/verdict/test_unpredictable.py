"""A case the run's profile cannot judge (a named port before Weave 2.6.3) is named before it runs."""

from __future__ import annotations

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy, ports
from netpolcheck.verdict.unpredictable import named_ports, unpredictable, weave_versions
from suites.catalog import apply, xyz_case
from suites.test_upgrade import FIXED, upgrade_case

NAMED = apply("x", policy("named", labels(pod="a"), ingress=[{"ports": ports(("serve-81-tcp", "TCP"))}]))
NUMBERED = apply("x", policy("numbered", labels(pod="a"), ingress=[{"ports": ports((81, "TCP"))}]))


def never_asked() -> str | None:
    raise AssertionError("the running version was asked for a case without named ports")


def test_named_ports_are_read_from_ingress_and_egress_rules_only_as_names() -> None:
    manifest = policy(
        "p",
        labels(pod="a"),
        policyTypes=["Ingress", "Egress"],
        ingress=[{"ports": [{"port": "http"}, {"port": 80}, {"port": "81"}, {"protocol": "UDP"}]}, {}],
        egress=[{"ports": [{"port": "dns", "protocol": "UDP"}]}],
    )
    assert named_ports(manifest) == ["http", "dns"]


@pytest.mark.parametrize(
    ("profile", "running", "judged"),
    [
        ("weave", "2.1.3", False),
        ("weave", "2.6.2", False),
        ("weave", "2.6.3", True),
        ("weave", "2.8.1", True),
        ("weave-2.0.5", "2.8.1", False),  # an explicit profile wins over what runs
        ("spec", "2.1.3", True),  # the spec knows what a named port means
        ("weave", None, True),  # no Weave: the case's own check reports that
    ],
)
def test_a_named_port_is_judged_only_where_the_profile_predicts_it(
    profile: str, running: str | None, judged: bool
) -> None:
    why = unpredictable(xyz_case("named", NAMED), profile, lambda: running)
    if judged:
        assert why is None
    else:
        assert why is not None
        assert "cannot predict a named port (serve-81-tcp)" in why
        assert "docs/weave-facts.md#named-port-unpredictable" in why


def test_a_case_without_named_ports_never_asks_what_runs() -> None:
    assert unpredictable(xyz_case("numbered", NUMBERED), "weave", never_asked) is None


def test_every_version_a_case_runs_on_counts() -> None:
    moving = xyz_case("moving", NAMED, c.UpgradeWeave("2.1.3"), weave_version="2.8.1")
    assert weave_versions(moving, never_asked) == ["2.8.1", "2.1.3"]
    why = unpredictable(moving, "weave", never_asked)
    assert why is not None and why.startswith("the weave-2.1.3 profile")


def test_the_upgrade_gate_leaves_out_the_named_port_only_where_it_cannot_be_predicted() -> None:
    assert unpredictable(FIXED, "weave", never_asked) is None
    assert "named-81-tcp" in {s.name for s in FIXED.steps if isinstance(s, c.ApplyPolicy)}
    old = upgrade_case("old", "2.0.5", "2.1.3")
    assert unpredictable(old, "weave", never_asked) is None
    applied = {s.name for s in old.steps if isinstance(s, c.ApplyPolicy)}
    assert applied == {"from-y-c", "egress-b-udp", "not-from-z-a"}
