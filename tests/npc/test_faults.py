"""Every fault switch makes at least one semantic check fail; the fault x failing-check table is printed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from netpolcheck.npc.faults import FAULTS
from tests.npc.semantics import CHECKS, run_check, world
from tests.npc.topology import Topology


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    with Topology(world()) as topology:
        yield topology


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_caught(topo: Topology, fault: str, record_property: Callable[[str, object], None]) -> None:
    failing = {}
    for check in CHECKS:
        wrong = run_check(topo, check, frozenset({fault}))
        if wrong:
            failing[check.name] = wrong
    summary = ", ".join(f"{name} ({len(cells)} cell(s))" for name, cells in failing.items())
    print(f"\nFAULT {fault}: {summary or 'NOT CAUGHT'}")
    record_property("failing_checks", summary)
    assert failing, f"fault {fault} was not caught by any semantic check"
