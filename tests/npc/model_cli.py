"""What the model says about a STATE, asked through the real `netpolcheck expect` command.

The controller never imports the model; the tests compare the two, and ask the model the way a user
would, in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

Cell = tuple[str, str, int, str]  # from, to, port, protocol


def expected_allowed(state: dict[str, Any], profile: str = "weave-2.8.1") -> dict[Cell, bool]:
    proc = subprocess.run(
        [sys.executable, "-m", "netpolcheck.cli", "expect", "/dev/stdin", "--profile", profile],
        input=json.dumps(state),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    return {(r["from"], r["to"], r["port"], r["protocol"]): r["allowed"] for r in results}
