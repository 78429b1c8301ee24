"""Every case the suites define is valid data, has a unique id, and its ipset-name-clash exposure is known."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

from netpolcheck.verdict.case import Case
from netpolcheck.verdict.validation import validate

SUITES = Path(__file__).resolve().parents[2] / "suites"


def _cases() -> list[Case]:
    found: list[Case] = []
    for module in pkgutil.iter_modules([str(SUITES)]):
        if not module.name.startswith("test_"):
            continue
        mod = importlib.import_module(f"suites.{module.name}")
        for value in vars(mod).values():
            items = value if isinstance(value, list) else [value]
            found += [item for item in items if isinstance(item, Case)]
    return list({id(case): case for case in found}.values())


CASES = _cases()


def test_the_suites_define_cases_with_unique_ids() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) >= 30
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_suite_case_is_valid(case: Case) -> None:
    assert validate(case) is case


def test_only_tutorial_restart_and_upgrade_change_the_whole_cluster() -> None:
    wide = {case.id for case in CASES if case.cluster_wide}
    assert wide == {
        "seed-walkthrough",
        "policies-hold-across-a-policy-controller-restart",
        "upgrade-2-8-1-to-2-9-0-keeps-every-cell-legitimate",
    }


def test_every_case_that_must_run_alone_is_marked_so() -> None:
    """The `verdict` fixture fails a case whose test lacks the marker `alone_marker` names; here every
    suite case that needs one is checked against the markers of the module that defines it."""
    from fixtures.verdict import alone_marker

    needing = {case.id: marker for case in CASES if (marker := alone_marker(case)) is not None}
    assert "policies-hold-across-a-policy-controller-restart" in needing
    assert (
        needing.get("deny-all-ingress-blocks-a-hostnetwork-pod-except-to-its-own-nodes-pods") == "node_ports"
    )
    for module in pkgutil.iter_modules([str(SUITES)]):
        if not module.name.startswith("test_"):
            continue
        mod = importlib.import_module(f"suites.{module.name}")
        marked = {m.name for m in getattr(mod, "pytestmark", [])}
        for name, value in vars(mod).items():
            items = value if isinstance(value, list) else [value]
            for case in (i for i in items if isinstance(i, Case) and i.id in needing):
                tests = [
                    f
                    for f in vars(mod).values()
                    if callable(f) and getattr(f, "__name__", "").startswith("test_")
                ]
                own = {m.name for t in tests for m in getattr(t, "pytestmark", [])}
                assert needing[case.id] in marked | own, f"{module.name}.{name}: {case.id} is not marked"
