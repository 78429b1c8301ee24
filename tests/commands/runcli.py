"""Run `netpolcheck` as a real command (a subprocess of this interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def legacy_upgrade_impact(source: Path) -> dict[str, Any]:
    """`upgrade-impact --format json` from weave-2.0.5 to weave-2.1.3 (the end of the legacy isolation) on
    `source`; the document, after checking the command said that cells change (exit 1)."""
    proc = netpolcheck(
        "upgrade-impact", "--from", "weave-2.0.5", "--to", "weave-2.1.3", "--format", "json", str(source)
    )
    assert proc.returncode == 1, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc
