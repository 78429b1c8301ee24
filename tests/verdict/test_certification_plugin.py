"""The suite's plugin writes the certification report: a real pytest run (a subprocess) of cases on
the driver double, through fixtures/verdict.py, then the document checked against the shipped schema
and rendered by `netpolcheck report`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from netpolcheck.report.certification_schema import schema_errors

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = """
from types import SimpleNamespace

import pytest

from fixtures.options import OPTIONS_KEY
from tests.verdict.double import FakeClock, FakeDriver

pytest_plugins = ["fixtures.options", "fixtures.verdict"]


@pytest.fixture(scope="session")
def cluster():
    return SimpleNamespace(kind="fake", outlives_session=False)


@pytest.fixture(scope="session")
def cluster_options(pytestconfig):
    return pytestconfig.stash[OPTIONS_KEY]


@pytest.fixture(scope="session")
def cluster_nodes():
    return [{"name": "node1", "kernel": "6.1.0-test", "osImage": "Debian", "kubeletVersion": "v1.30.0"}]


@pytest.fixture(scope="session")
def verdict_driver():
    return FakeDriver(FakeClock())
"""

CASES = """
import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.deviations import Status

PODS = (c.PodDef("x", "a", {"pod": "a"}, node=0), c.PodDef("x", "b", {"pod": "b"}, node=1))
DENY_B = {"kind": "NetworkPolicy", "metadata": {"name": "deny-b"},
          "spec": {"podSelector": {"matchLabels": {"pod": "b"}}}}


def case(name, steps=()):
    return c.Case(name, (c.NamespaceDef("x", {"ns": "x"}),), PODS, steps, probes=(c.ProbeDef(80, "TCP"),))


@pytest.mark.ingress
def test_open(verdict):
    verdict(case("open"))


@pytest.mark.ingress
@pytest.mark.selectors
def test_deny_not_enforced(verdict):
    verdict(case("deny-b", (c.ApplyPolicy("x", DENY_B),)))


@pytest.mark.egress
def test_skipped(verdict):
    pytest.skip("not on this cluster")


@pytest.mark.egress
def test_own_assertion_after_a_pass(verdict):
    verdict(case("open-then-assert"))
    assert False, "the test's own check"


@pytest.mark.multicast
def test_heard(certify):
    certify(Status.PASS, ["x/a listened on 239.255.80.1", "y/a (the receiver's node): heard"])


@pytest.mark.multicast
def test_not_heard_while_expected_to_be(certify):
    certify(Status.XFAIL, ["y/b (node2): heard"])
    pytest.xfail("documented deviation")


@pytest.mark.multicast
def test_certify_skipped(certify):
    pytest.skip("negative control: cannot fail")
"""


def run_suite(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_cases.py").write_text(CASES)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:pytest-kind-ng", "-q"]
    command += ["--rootdir", str(tmp_path)]
    command += ["--convergence-deadline", "0.5", *args, str(tmp_path / "test_cases.py")]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_run_writes_a_valid_private_report_that_renders(tmp_path: Path) -> None:
    done = run_suite(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr  # two tests fail
    path = tmp_path / "reports" / "certification.json"
    assert f"certification report (fail): {path}" in done.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    document = json.loads(path.read_text())
    assert schema_errors(document) == []

    env = document["environment"]
    assert (env["clusterKind"], env["kubernetesVersion"], env["kernel"]) == ("fake", "1.30.0", "6.1.0-test")
    assert env["cni"] == {"name": "weave-net", "version": "2.8.1"}
    assert env["profile"] == "weave" and env["options"]["convergenceDeadline"] == 0.5
    assert env["nodes"][0]["name"] == "node1"

    cases = {c["id"]: c for c in document["cases"]}
    assert set(cases) == {
        "open",
        "deny-b",
        "test_skipped",
        "open-then-assert",
        "test_heard",
        "test_not_heard_while_expected_to_be",
        "test_certify_skipped",
    }
    heard = cases["test_heard"]
    assert (heard["status"], heard["features"], heard["checks"]) == ("pass", ["multicast"], [])
    assert heard["observations"] == ["x/a listened on 239.255.80.1", "y/a (the receiver's node): heard"]
    assert cases["test_not_heard_while_expected_to_be"]["status"] == "expected failure"
    assert cases["test_certify_skipped"]["status"] == "skipped"
    assert "cannot fail" in cases["test_certify_skipped"]["skipReason"]
    assert cases["open"]["status"] == "pass" and cases["open"]["features"] == ["ingress"]
    assert cases["test_skipped"]["status"] == "skipped" and cases["test_skipped"]["checks"] == []
    assert cases["open-then-assert"]["status"] == "fail"
    assert "the test's own check" in cases["open-then-assert"]["error"]
    denied = cases["deny-b"]
    assert denied["status"] == "fail" and denied["features"] == ["ingress", "selectors"]
    wrong = [cell for check in denied["checks"] for cell in check["cells"] if cell["outcome"] == "wrong"]
    assert {(w["from"], w["to"], w["expected"], w["observed"]) for w in wrong} == {
        ("x/a", "x/b", False, "allowed")
    }
    assert document["result"] == "fail"
    features = {f["feature"]: f for f in document["summary"]["features"]}
    assert features["selectors"]["holds"] is False and features["selectors"]["failedCases"] == ["deny-b"]

    html, markdown = tmp_path / "out.html", tmp_path / "out.md"
    rendered = subprocess.run(
        [
            sys.executable,
            "-m",
            "netpolcheck",
            "report",
            str(path),
            "--html",
            str(html),
            "--markdown",
            str(markdown),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rendered.returncode == 1, rendered.stderr  # the run failed; the pages are written
    parser = _Text()
    parser.feed(html.read_text())
    text = " ".join(parser.text)
    assert "deny-b" in text and "open-then-assert" in text
    assert "Observations (2)" in text and "y/a (the receiver's node): heard" in text
    assert "script" not in parser.tags
    assert "deny-b" in markdown.read_text() and "## Observations (2)" in markdown.read_text()


def test_report_json_option_and_nothing_written_without_cases(tmp_path: Path) -> None:
    target = tmp_path / "out" / "mine.json"
    done = run_suite(tmp_path, "--report-json", str(target), "-k", "open and not assert")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(target.read_text())
    assert schema_errors(document) == [] and document["result"] == "pass"
    assert [c["id"] for c in document["cases"]] == ["open"]
    assert not (tmp_path / "reports").exists()

    nothing = run_suite(tmp_path, "--report-json", str(tmp_path / "none.json"), "-k", "no_such_test")
    assert nothing.returncode == 5  # no tests collected
    assert not (tmp_path / "none.json").exists()


def test_the_committed_example_is_a_valid_report_of_a_real_embedded_cluster_run() -> None:
    """docs/examples/: the report of `pytest suites --cluster hollow`, and its rendering."""
    examples = ROOT / "docs" / "examples"
    document = json.loads((examples / "certification.json").read_text())
    assert schema_errors(document) == []
    env = document["environment"]
    assert env["clusterKind"] == "hollow" and env["cni"]["name"] == "weave-net"
    assert len(document["cases"]) > 40 and all(
        c["checks"] or c["status"] == "skipped" or c.get("observations") for c in document["cases"]
    )
    parser = _Text()
    parser.feed((examples / "certification.html").read_text())
    text = " ".join(parser.text)
    failed = [c["id"] for c in document["cases"] if c["status"] == "fail"]
    assert "Summary" in text and all(case_id in text for case_id in failed)
    assert "script" not in parser.tags
