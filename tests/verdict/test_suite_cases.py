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
