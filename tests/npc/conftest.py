"""One 2-node hollow cluster with the semantic world per test module (modules run one after another,
so clusters needing the same fixed IPs never overlap); the tests of a module share it and revert."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.npc.hollowkit import Hollow
from tests.npc.hollowworld import HollowWorld


@pytest.fixture(scope="module")
def hollow_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HollowWorld]:
    cluster = Hollow(Path(tmp_path_factory.mktemp("npcref-hollow-sem")), nodes=2)
    try:
        cluster.up()
        world = HollowWorld(cluster)
        world.create()
        yield world
    finally:
        cluster.down()
