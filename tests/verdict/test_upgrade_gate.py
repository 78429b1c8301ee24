"""The upgrade gate a pipeline asks for, run as a user runs it: `pytest suites/test_upgrade.py -k gate
--weave-version 2.0.5 --upgrade-to 2.1.3` (the seed chapter's pair) in a real pytest process on an
embedded cluster of its own. Without `--upgrade-to` the gate is skipped, so the suite's own run never
shows that it works; this does, and that the JUnit XML says which versions were gated."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATE_CIDR = "10.122.0.0/16"  # this test's own pod range (inside 10.112.0.0/12, used by no other test)


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.slow
def test_the_seed_chapters_upgrade_is_gated_end_to_end(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-progress",
            "suites/test_upgrade.py", "-k", "gate", "--cluster", "hollow",
            "--weave-version", "2.0.5", "--upgrade-to", "2.1.3",
            f"--basetemp={tmp_path / 'bt'}", f"--junitxml={junit}",
            f"--report-json={tmp_path / 'report.json'}"]  # fmt: skip
    env = {**os.environ, "NETPOLCHECK_HOLLOW_POD_CIDR": GATE_CIDR}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-4000:] + done.stderr[-2000:]
    (case,) = ET.parse(junit).getroot().iter("testcase")
    assert case.get("name") == "test_upgrade_gate"
    properties = {p.get("name"): p.get("value") or "" for p in case.iter("property")}
    assert properties["weave_versions_checked"] == "2.0.5,2.1.3", properties
    assert (properties["status"], properties["weave_version"]) == ("pass", "2.1.3"), properties
    assert properties["holds"].startswith("hold z-c-to-y-b: tcp: "), properties["holds"]
    assert properties["holds"].endswith("; ended: stopped"), properties["holds"]
    assert "step 5: " in properties["rollouts"] and " 0 leak(s)" in properties["rollouts"], properties
    routes = subprocess.run(["ip", "route", "show", "type", "unreachable"], capture_output=True, text=True)
    assert GATE_CIDR not in routes.stdout
