"""The suites' order (fixtures/cluster.py): `fresh_cluster` tests first, before the session's cluster is
made; `cluster_wide` ones last and those that move Weave at the very end, so a Weave version they move
is put back once at most, and not at all when the session deletes its cluster (weave_home)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def collected(*args: str) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "suites",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_fresh_cluster_tests_come_first_and_cluster_wide_ones_last() -> None:
    order = collected()
    fresh = set(collected("-m", "fresh_cluster"))
    wide = set(collected("-m", "cluster_wide and not fresh_cluster"))
    moving = set(collected("-m", "cluster_wide and upgrade and not fresh_cluster"))
    assert fresh and wide and moving and wide > moving and len(order) > len(fresh) + len(wide)
    assert set(order[: len(fresh)]) == fresh
    assert set(order[len(order) - len(wide) :]) == wide
    assert set(order[len(order) - len(moving) :]) == moving
