"""Per semantic area, packets through the controller's real dataplane match Kubernetes semantics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.npc.semantics import CHECKS, Check, run_check, world
from tests.npc.topology import Topology


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    with Topology(world()) as topology:
        yield topology


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_semantic_area(topo: Topology, check: Check) -> None:
    assert run_check(topo, check, frozenset()) == {}
