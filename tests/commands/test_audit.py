"""`netpolcheck audit` on the embedded cluster with Weave 2.8.1 installed from its manifests, and a
workload the audit did not create: namespaces, plain pods (an HTTP server, a client) and a policy
applied with kubectl, as a user would (no probe pods of the suite).

With the reference controller as it is, the audit finds nothing wrong; with its `ports-ignored` fault
switch, it finds exactly the cell the fault opens. The audit writes nothing but its ephemeral
containers (every other object keeps its resourceVersion; the audited pods differ only by them),
`--max-pods` refuses before touching anything, and bad input is one line with exit 2.

The clusters: `10.64.0.0/12`, 2 nodes, one per controller variant, removed at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from netpolcheck.commands import audit_agents as agents
from netpolcheck.commands.audit import judge
from netpolcheck.kube.waiting import wait_for
from netpolcheck.probe.engine import Attempt, ProbeState
from netpolcheck.probe.targets import Target as ProbeTarget
from netpolcheck.report.cells import CellKey, ExpectedCell, ObservedCell, Outcome
from netpolcheck.report.certification_schema import validate_report
from tests.commands.runcli import netpolcheck
from tests.kube.embedded import embedded_cluster

POD_CIDR = "10.64.0.0/12"
KUBECTL = Path(sys.executable).parent / "kubectl"
AUDIT_PREFIX = "netpolcheck-audit-"


def _pod(namespace: str, name: str, labels: dict[str, str], container: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [container]},
    }


def _http(ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "http",
        "image": "hashicorp/http-echo:1.0",
        "args": ["-text=hi", "-listen=:8080"],
        "ports": ports,
    }


WORKLOAD: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "shop"}}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other", "labels": {"team": "other"}}},
    _pod(
        "shop",
        "web",
        {"app": "web"},
        _http(
            [  # 8080 serves; 9090 and UDP 5353 are declared, nobody listens (the kernel answers)
                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                {"name": "admin", "containerPort": 9090, "protocol": "TCP"},
                {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
            ]
        ),
    ),
    _pod(
        "shop",
        "client",
        {"app": "client"},
        {"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]},
    ),
    _pod("other", "intruder", {"app": "intruder"}, _http([{"containerPort": 8080, "protocol": "TCP"}])),
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web-from-client", "namespace": "shop"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                    "ports": [{"port": 8080, "protocol": "TCP"}, {"port": 5353, "protocol": "UDP"}],
                }
            ],
        },
    },
]
WORKLOAD_PODS = ("shop/web", "shop/client", "other/intruder")
# what a fault that ignores rule ports opens: the declared, unserved admin port
PORTS_IGNORED_CELL = ("shop/client", "shop/web", 9090, "TCP")


class Live:
    def __init__(self, kubeconfig: Path, fault: str) -> None:
        self.kubeconfig, self.fault = kubeconfig, fault

    def kubectl(self, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=120,
            input=input_text,
            check=False,
        )

    def get(self, *args: str) -> dict[str, Any]:
        result = self.kubectl("get", *args, "-o", "json")
        assert result.returncode == 0, result.stderr
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def audit(self, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return netpolcheck(
            "audit",
            "--kubeconfig",
            str(self.kubeconfig),
            "--namespace",
            "shop",
            "--namespace",
            "other",
            "--report",
            str(tmp_path / "audit.json"),
            *extra,
        )


def _programmed(live: Live) -> None:
    """Bounded wait until every node's weave-npc has put each workload pod into its ipsets (the
    controller logs `adding entry IP to SET`): the policy is in the dataplane before the audit."""
    ips = {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["status"].get("podIP")
        for p in live.get("pods", "-A")["items"]
        if f"{p['metadata']['namespace']}/{p['metadata']['name']}" in WORKLOAD_PODS
    }
    seen: list[str] = [""]

    def done() -> bool:
        logs = live.kubectl(
            "logs", "-n", "kube-system", "-l", "name=weave-net", "-c", "weave-npc", "--tail=-1", "--prefix"
        )
        by_node: dict[str, str] = {}
        for line in logs.stdout.splitlines():
            by_node[line.split("]", 1)[0]] = by_node.get(line.split("]", 1)[0], "") + line + "\n"
        missing = [
            f"{node}: {key}"
            for node, text in by_node.items()
            for key, ip in ips.items()
            if f"adding entry {ip} to" not in text
        ]
        seen[0] = "; ".join(missing) or f"{len(by_node)} node(s)"
        return len(by_node) == 2 and not missing

    wait_for(
        done, "weave-npc on both nodes to add every workload pod", timeout=120, describe_last=lambda: seen[0]
    )


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    fault: str = request.param
    work = tmp_path_factory.mktemp(f"audit-{fault}")
    faults = () if fault == "reference" else (fault,)
    with embedded_cluster(work / "w", POD_CIDR, nodes=2, npc_faults=faults, timeout=600) as (made, _):
        live = Live(made.kubeconfig, fault)
        applied = live.kubectl("apply", "-f", "-", input_text=yaml.safe_dump_all(WORKLOAD))
        assert applied.returncode == 0, applied.stderr
        ready = live.kubectl("wait", "--for=condition=Ready", "pod", "--all", "-n", "shop", "--timeout=120s")
        assert ready.returncode == 0, ready.stderr
        ready = live.kubectl("wait", "--for=condition=Ready", "pod/intruder", "-n", "other", "--timeout=120s")
        assert ready.returncode == 0, ready.stderr
        _programmed(live)
        yield live


def _cells(report: dict[str, Any]) -> list[dict[str, Any]]:
    (case,) = report["cases"]
    (check,) = case["checks"]
    cells: list[dict[str, Any]] = check["cells"]
    return cells


def _state(live: Live) -> dict[tuple[str, str, str], Any]:
    """Every object the audit could have touched, keyed by kind, namespace and name: resourceVersion for
    all but the workload's pods; for those, the pod without status, resourceVersion and its ephemeral
    containers (which the audit adds, and the kubelet's status follows)."""
    out: dict[tuple[str, str, str], Any] = {}
    kinds = "namespaces,pods,networkpolicies,serviceaccounts,configmaps,secrets,roles,rolebindings,daemonsets"
    for kind in (kinds, "clusterroles,clusterrolebindings"):
        for item in live.get(kind, "-A")["items"]:
            meta = item["metadata"]
            key = (item["kind"], meta.get("namespace", ""), meta["name"])
            if item["kind"] == "Pod" and f"{key[1]}/{key[2]}" in WORKLOAD_PODS:
                spec = {k: v for k, v in item["spec"].items() if k != "ephemeralContainers"}
                rest = {k: v for k, v in meta.items() if k not in ("resourceVersion", "generation")}
                out[key] = (rest, spec)
            else:
                out[key] = meta["resourceVersion"]
    return out


def _ephemeral(live: Live) -> dict[str, list[dict[str, Any]]]:
    pods = live.get("pods", "-A")["items"]
    return {
        f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["spec"].get("ephemeralContainers") or []
        for p in pods
    }


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.parametrize("cluster", ["reference"], indirect=True)
def test_audit_finds_nothing_wrong_and_writes_only_ephemeral_containers(
    cluster: Live, tmp_path: Path
) -> None:
    before, containers_before = _state(cluster), _ephemeral(cluster)
    result = cluster.audit(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "audit.json").read_text())
    validate_report(report)
    assert report["result"] == "pass" and report["environment"]["profile"] == "weave-2.8.1"
    cells = _cells(report)
    # 3 sources; web declares 3 ports, intruder 1: 2x3 cells into web, 2x1 into intruder
    assert len(cells) == 8 and all(c["outcome"] == "ok" for c in cells), cells
    by_key = {(c["from"], c["to"], c["port"], c["protocol"]): c for c in cells}
    assert by_key[("shop/client", "shop/web", 8080, "TCP")]["observed"] == "allowed"
    assert by_key[("shop/client", "shop/web", 9090, "TCP")]["observed"] == "dropped"
    assert by_key[("shop/client", "shop/web", 5353, "UDP")]["observed"] == "refused"  # ICMP: reached
    assert by_key[("other/intruder", "shop/web", 8080, "TCP")]["observed"] == "dropped"
    assert by_key[("shop/web", "other/intruder", 8080, "TCP")]["observed"] == "allowed"
    assert "correct: 8" in result.stdout and "expected TCP 8080" in result.stdout  # the truth tables
    rendered = netpolcheck("report", str(tmp_path / "audit.json"), "--html", str(tmp_path / "audit.html"))
    assert rendered.returncode == 0, rendered.stderr
    # nothing else changed; each audited pod gained exactly one ephemeral container, NET_RAW only
    assert _state(cluster) == before
    after = _ephemeral(cluster)
    for pod in WORKLOAD_PODS:
        added = after[pod][len(containers_before[pod]) :]
        assert after[pod][: len(containers_before[pod])] == containers_before[pod]
        assert [c["name"].startswith(AUDIT_PREFIX) for c in added] == [True], added
        assert added[0]["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW"]}
        assert added[0]["image"] == "netpolcheck-probe:0.1.0" and "ports" not in added[0]
    # a second audit while those still run uses them again: nothing more is added
    again = cluster.audit(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _ephemeral(cluster) == after


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.parametrize("cluster", ["ports-ignored"], indirect=True)
def test_audit_finds_the_cell_a_faulty_controller_gets_wrong(cluster: Live, tmp_path: Path) -> None:
    result = cluster.audit(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((tmp_path / "audit.json").read_text())
    validate_report(report)
    assert report["result"] == "fail"
    wrong = [(c["from"], c["to"], c["port"], c["protocol"]) for c in _cells(report) if c["outcome"] != "ok"]
    assert wrong == [PORTS_IGNORED_CELL]
    cell = next(c for c in _cells(report) if c["outcome"] == "wrong")
    assert cell["expected"] is False and cell["observed"] == "refused"  # reached: the port is closed
    assert "shop/client -> shop/web TCP/9090: expected denied, observed refused" in result.stdout
    # `netpolcheck report` reads it as any certification report: failed, the wrong cell shown
    rendered = netpolcheck("report", str(tmp_path / "audit.json"), "--markdown", str(tmp_path / "audit.md"))
    assert rendered.returncode == 1, rendered.stderr
    assert (
        "shop/client" in (tmp_path / "audit.md").read_text() and "9090" in (tmp_path / "audit.md").read_text()
    )


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.parametrize("cluster", ["reference"], indirect=True)
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--max-pods", "2"],
            "3 pods would get an ephemeral container, more than --max-pods 2: narrow the audit with "
            "--namespace or raise --max-pods (no pod was touched)",
        ),
        (["--namespace", "nope"], "--namespace: no such namespace in the cluster: nope"),
    ],
    ids=["max-pods", "unknown-namespace"],
)
def test_a_refusal_is_one_line_before_touching_anything(
    cluster: Live, tmp_path: Path, extra: list[str], message: str
) -> None:
    before = _ephemeral(cluster)
    result = cluster.audit(tmp_path, *extra)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"netpolcheck: error: {message}"]
    assert _ephemeral(cluster) == before and not (tmp_path / "audit.json").exists()


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.parametrize("cluster", ["reference"], indirect=True)
def test_a_namespace_with_nothing_to_probe_is_one_line(cluster: Live, tmp_path: Path) -> None:
    before = _ephemeral(cluster)
    result = netpolcheck(
        "audit",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--namespace",
        "other",
        "--report",
        str(tmp_path / "r"),
    )
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "nothing to probe" in result.stderr
    assert _ephemeral(cluster) == before and not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--kubeconfig", "/nonexistent/kubeconfig"],
            "--kubeconfig: kubeconfig /nonexistent/kubeconfig does not exist",
        ),
        (
            ["--kubeconfig", "k", "--profile", "weave-two"],
            "--profile: 'weave-two' is not spec, weave or weave-X.Y.Z",
        ),
        (["--kubeconfig", "k", "--max-pods", "0"], "--max-pods: must be at least 1, not 0"),
        (
            ["--kubeconfig", "k", "--report", "/nonexistent/dir/r.json"],
            "--report: /nonexistent/dir/r.json is a",
        ),
        ([], "audit: the following arguments are required: --kubeconfig"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = netpolcheck("audit", *args)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


# ---- the audit's own verdict rules, on the probe agent's real result lines ----------------------------


def _agent_silence(protocol: str, foreign_answers: int) -> ObservedCell:
    """The observed cell of a target that drew no answer, from the probe agent's own result line."""
    state = ProbeState(ProbeTarget("1", "10.64.0.9", 5353, protocol), foreign_answers=foreign_answers)
    state.attempts.append(Attempt(0, 40000, 1, 1000.0))
    result = state.result(1001.0, None)
    return ObservedCell(str(result["verdict"]), int(str(result["attempts"])), str(result["evidence"]))


UDP = CellKey("UDP", 5353, "a/x", "a/y")
TCP = CellKey("TCP", 80, "a/x", "a/y")


@pytest.mark.parametrize(
    ("key", "allowed", "observed", "outcome"),
    [
        (UDP, True, _agent_silence("UDP", 0), "inconclusive"),
        (UDP, False, _agent_silence("UDP", 0), Outcome.OK),
        (UDP, False, _agent_silence("UDP", 2), Outcome.WRONG),  # it answered: the datagram arrived
        (UDP, True, _agent_silence("UDP", 2), Outcome.OK),
        (UDP, True, ObservedCell("refused", 1, "ICMP type 3 code 3"), Outcome.OK),
        (UDP, False, ObservedCell("refused", 1, "ICMP type 3 code 3"), Outcome.WRONG),
        (TCP, True, _agent_silence("TCP", 0), Outcome.WRONG),  # TCP silence is a denial
        (TCP, True, ObservedCell("refused", 1, "RST"), Outcome.OK),  # reached, nothing listens
        (TCP, False, ObservedCell("rejected", 1, "ICMP type 3 code 13"), Outcome.WRONG),  # Weave drops
        (TCP, True, ObservedCell("error", 3, "no verdict: stopped"), Outcome.MISSING),
        (TCP, True, ObservedCell("unsupported", 0, "no SCTP"), "inconclusive"),
    ],
)
def test_audit_verdict_rules(key: CellKey, allowed: bool, observed: ObservedCell, outcome: object) -> None:
    verdicts = judge({key: ExpectedCell(allowed)}, {key: observed}, frozenset({"dropped"}), {})
    if outcome == "inconclusive":
        assert verdicts.comparison.cells == () and [c.key for c in verdicts.inconclusive] == [key]
        return
    (cell,) = verdicts.comparison.cells
    assert cell.outcome is outcome, cell.note
    assert verdicts.inconclusive == []
    if outcome is Outcome.MISSING:  # the report's schema has no verdict "error": none, and why
        assert cell.observed is None and "no verdict" in cell.note


def test_a_source_whose_agent_never_ran_has_missing_cells_saying_why() -> None:
    verdicts = judge({TCP: ExpectedCell(True)}, {}, frozenset({"dropped"}), {"a/x": "ErrImagePull"})
    (cell,) = verdicts.comparison.cells
    assert cell.outcome is Outcome.MISSING and cell.note == "not probed: ErrImagePull"
    assert not verdicts.comparison.passed


def _pod_with_agent(name: str, image: str, started: datetime | None, seconds: int = 600) -> dict[str, Any]:
    state = {"running": {"startedAt": started.isoformat()}} if started else {"terminated": {"exitCode": 0}}
    return {
        "spec": {"ephemeralContainers": [{"name": name, "image": image, "command": ["sleep", str(seconds)]}]},
        "status": {"ephemeralContainerStatuses": [{"name": name, "state": state}]},
    }


@pytest.mark.parametrize(
    ("name", "image", "age", "reused"),
    [
        ("netpolcheck-audit-1a2b3c4d", "probe:1", 10, True),
        ("netpolcheck-audit-1a2b3c4d", "probe:1", 590, False),  # ends too soon to finish an audit
        ("netpolcheck-audit-1a2b3c4d", "probe:1", None, False),  # stopped
        ("netpolcheck-audit-1a2b3c4d", "other:1", 10, False),  # another image
        ("debugger", "probe:1", 10, False),  # not the audit's
    ],
)
def test_an_earlier_audits_container_is_reused_only_while_it_has_time_left(
    name: str, image: str, age: int | None, reused: bool
) -> None:
    now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    started = None if age is None else now - timedelta(seconds=age)
    pod = _pod_with_agent(name, image, started)
    assert agents.reusable(pod, "probe:1", 120.0, now) == (name if reused else None)
