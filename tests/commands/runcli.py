"""Run `netpolcheck` as a real command (a subprocess of this interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
SEED = DATA / "seed"
WORKSHOP = DATA / "seed-workshop"


def netpolcheck(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netpolcheck.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
