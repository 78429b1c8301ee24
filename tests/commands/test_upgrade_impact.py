"""`netpolcheck upgrade-impact`: the exact cells an upgrade changes, grouped by deviation, and its
exit status (0 nothing changes, 1 changes, 2 usage error)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from netpolcheck.model.profiles import PROFILES, weave_profile
from netpolcheck.model.state import parse_state
from netpolcheck.model.upgrade import INTRODUCED, REMOVED, upgrade_impact
from tests.commands.runcli import SEED, legacy_upgrade_impact, netpolcheck

DENY_ALL_CLOSES = {
    ("ns-1/busybox", "ns-1/http-echo", 80, "TCP"),
    ("ns-1/http-echo", "ns-1/busybox", 80, "TCP"),
}


def _seed(name: str) -> Any:
    return parse_state(json.loads((SEED / name).read_text()))


def test_seed_2_0_5_to_2_1_3_closes_every_cell_of_deny_all() -> None:
    impact = upgrade_impact(_seed("1-deny-all.json"), PROFILES["weave-2.0.5"], PROFILES["weave-2.1.3"])
    assert {(c.source, c.destination, c.port, c.protocol) for c in impact.changed} == DENY_ALL_CLOSES
    assert all(c.before and not c.after and c.change == "closes" for c in impact.changed)
    [group] = impact.groups
    assert [(d.id, how) for d, how in group.deviations] == [("legacy-isolation", REMOVED)]
    assert group.policies == ("ns-1/deny-all-by-default",)


def test_seed_allow_unlabelled_closes_only_the_unlabelled_source() -> None:
    impact = upgrade_impact(
        _seed("2-allow-unlabelled.json"), PROFILES["weave-2.0.5"], PROFILES["weave-2.1.3"]
    )
    assert [(c.source, c.destination, c.after) for c in impact.changed] == [
        ("ns-1/busybox", "ns-1/http-echo", False)
    ]
    assert impact.changed[0].policies == ("ns-1/allow",)


def test_downgrade_opens_the_same_cells_by_the_introduced_deviation() -> None:
    impact = upgrade_impact(_seed("1-deny-all.json"), PROFILES["weave-2.1.3"], PROFILES["weave-2.0.5"])
    assert {(c.source, c.destination, c.port, c.protocol) for c in impact.changed} == DENY_ALL_CLOSES
    assert all(c.after for c in impact.changed)
    assert [(d.id, how) for d, how in impact.groups[0].deviations] == [("legacy-isolation", INTRODUCED)]


def test_same_matrix_means_no_change() -> None:
    for name in ("0-none.json", "3-allow-labelled.json"):
        impact = upgrade_impact(_seed(name), PROFILES["weave-2.0.5"], PROFILES["weave-2.1.3"])
        assert impact.changed == ()
        assert impact.cells_compared == 2


def _endport_state() -> Any:
    return parse_state(
        {
            "namespaces": [{"name": "x"}],
            "pods": [
                {"namespace": "x", "name": "a", "ip": "10.32.0.2", "labels": {"app": "a"}},
                {"namespace": "x", "name": "b", "ip": "10.32.0.3", "labels": {"app": "b"}},
            ],
            "policies": [
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": "range", "namespace": "x"},
                    "spec": {
                        "podSelector": {"matchLabels": {"app": "b"}},
                        "ingress": [{"ports": [{"port": 80, "endPort": 90}]}],
                    },
                }
            ],
            "probes": [{"port": 85}],
        }
    )


def test_spec_to_weave_names_the_introduced_deviation_and_the_policy() -> None:
    impact = upgrade_impact(_endport_state(), PROFILES["spec"], PROFILES["weave-2.8.1"])
    assert [(c.source, c.destination, c.port, c.before, c.after) for c in impact.changed] == [
        ("x/a", "x/b", 85, True, False)
    ]
    [group] = impact.groups
    assert [(d.id, how) for d, how in group.deviations] == [("endport-ignored", INTRODUCED)]
    assert group.policies == ("x/range",)


def test_any_release_number_is_a_profile() -> None:
    # egress is enforced from 2.4.0: an egress deny-all changes between 2.3.0 and 2.4.0
    state = parse_state(
        {
            "namespaces": [{"name": "x"}],
            "pods": [
                {"namespace": "x", "name": "a", "ip": "10.32.0.2"},
                {"namespace": "x", "name": "b", "ip": "10.32.0.3", "labels": {"app": "b"}},
            ],
            "policies": [
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": "no-egress", "namespace": "x"},
                    "spec": {"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Egress"]},
                }
            ],
        }
    )
    impact = upgrade_impact(state, weave_profile("2.3.0"), weave_profile("2.4.0"))
    changed = {(c.source, c.destination, c.after) for c in impact.changed}
    # 2.3.0: the egress-only policy isolates b for ingress (a -> b denied), egress ignored (b -> a allowed)
    assert changed == {("x/a", "x/b", True), ("x/b", "x/a", False)}
    ids = {d.id for g in impact.groups for d, _ in g.deviations}
    assert ids == {"egress-ignored", "egress-only-policy-isolates-ingress"}


def test_command_table_names_the_policy_and_exits_1() -> None:
    proc = netpolcheck(
        "upgrade-impact", "--from", "weave-2.0.5", "--to", "weave-2.1.3", str(SEED / "1-deny-all.json")
    )
    assert proc.returncode == 1, proc.stderr
    assert "legacy-isolation (removed by the upgrade" in proc.stdout
    assert "policies: ns-1/deny-all-by-default" in proc.stdout
    assert "closes ns-1/busybox -> ns-1/http-echo TCP/80" in proc.stdout
    assert "closes ns-1/http-echo -> ns-1/busybox TCP/80" in proc.stdout


def test_command_json_lists_the_exact_cells() -> None:
    doc = legacy_upgrade_impact(SEED / "1-deny-all.json")
    assert (doc["from"], doc["to"], doc["changed"], doc["closes"], doc["opens"]) == (
        "weave-2.0.5",
        "weave-2.1.3",
        2,
        2,
        0,
    )
    [group] = doc["groups"]
    assert group["deviations"][0]["id"] == "legacy-isolation"
    assert group["policies"] == ["ns-1/deny-all-by-default"]
    assert {(c["from"], c["to"], c["port"], c["protocol"]) for c in group["cells"]} == DENY_ALL_CLOSES


def test_command_exits_0_when_nothing_changes() -> None:
    proc = netpolcheck(
        "upgrade-impact", "--from", "weave-2.8.1", "--to", "weave-2.9.0", str(SEED / "1-deny-all.json")
    )
    assert proc.returncode == 0, proc.stderr
    assert "0 of 2 cell(s) change" in proc.stdout


def test_command_usage_errors_exit_2_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"pods": [{"name": "a"}]}')
    cases = [
        ("--from", "weave-two", "--to", "weave-2.1.3", str(SEED / "1-deny-all.json")),
        ("--from", "weave-2.0.5", "--to", "weave-2.1.3", str(tmp_path / "missing.json")),
        ("--from", "weave-2.0.5", "--to", "weave-2.1.3", str(bad)),
        ("--from", "weave-2.0.5", "--to", "weave-2.1.3", "--format", "xml", str(SEED / "1-deny-all.json")),
        ("--to", "weave-2.1.3", str(SEED / "1-deny-all.json")),
    ]
    for args in cases:
        proc = netpolcheck("upgrade-impact", *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout == ""


def test_table_shows_at_most_max_cells_per_group() -> None:
    args = ("upgrade-impact", "--from", "weave-2.0.5", "--to", "weave-2.1.3", str(SEED / "1-deny-all.json"))
    one = netpolcheck(*args, "--max-cells", "1")
    assert one.returncode == 1, one.stderr
    assert one.stdout.count("  closes ") == 1
    assert "... and 1 more cell(s)" in one.stdout
    every = netpolcheck(*args, "--max-cells", "0")
    assert every.stdout.count("  closes ") == 2 and "more cell(s)" not in every.stdout
