"""`netpolcheck audit --kubeconfig K [--namespace N]...`: probe a live cluster's own workloads against
what its own NetworkPolicies should allow (docs/audit.md).

The scenario is the cluster as it is (namespaces, pods, policies: `netpolcheck.kube.snapshot`); the
expected matrix is the model's under a profile (default: the running Weave version's); the probes run
from an ephemeral container in each audited pod (audit_agents.py) to the container ports the pods
declare. Nothing but those ephemeral containers is written. Exit status: 0 every cell matches, 1 a
cell is wrong (or could not be probed), 2 bad input (one line; nothing added to any pod).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netpolcheck import __version__
from netpolcheck.commands import audit_agents as agents
from netpolcheck.commands.cluster import REACH_TIMEOUT, add_cluster_arguments, cluster_error, connect
from netpolcheck.commands.report import write_all
from netpolcheck.errors import UsageError
from netpolcheck.model.apivalidation import printable
from netpolcheck.model.manifests import declared_probes
from netpolcheck.report.cells import CellKey, ExpectedCell, ObservedCell, Outcome
from netpolcheck.report.certification import build_report, case_entry, check_entry, environment_entry
from netpolcheck.report.compare import CellComparison, Comparison, compare
from netpolcheck.report.truthtable import comparison_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from netpolcheck.kube.connection import KubeApi
    from netpolcheck.model import Profile

EXIT_MATCHES = 0
EXIT_WRONG = 1
DEFAULT_MAX_PODS = 20
DEFAULT_IDLE = 600
DEFAULT_START_TIMEOUT = 120.0
DEFAULT_REPORT = "netpolcheck-audit.json"
WORKERS = 8
REUSE_MARGIN = 120.0  # an earlier audit's container is used again only with this many seconds left
FOREIGN_UDP = re.compile(r"\d+ UDP answers did not echo")  # the probe agent's evidence (docs/probe.md)
REPORTABLE = frozenset({Outcome.OK, Outcome.WRONG, Outcome.DEVIATION, Outcome.MISSING})


@dataclass
class Scope:
    """What the audit looks at: the STATE of the cluster, the pods it probes from, the cells it probes."""

    document: dict[str, Any]
    pods: dict[str, dict[str, Any]]  # audited pods, "ns/name" -> the Pod object
    skipped: list[str] = field(default_factory=list)  # why other pods are not audited


def _audited(pod: Mapping[str, Any]) -> str | None:
    """Why `pod` is not audited, or None when it is."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "being deleted"
    if spec.get("hostNetwork"):
        return "hostNetwork (its traffic is the node's)"
    if status.get("phase") != "Running" or not status.get("podIP"):
        return f"not running with an address (phase {status.get('phase')})"
    return None


def read_scope(api: KubeApi, namespaces: Sequence[str] | None) -> Scope:
    """Namespaces, pods and policies (read-only); the pods that will be audited."""
    from netpolcheck.kube import fetching
    from netpolcheck.kube.snapshot import POLICY_API, state_of

    wanted = set(namespaces) if namespaces else None
    nss = [
        n
        for n in fetching.list_objects(api, "v1", "Namespace")
        if wanted is None or n["metadata"]["name"] in wanted
    ]
    names = sorted(n["metadata"]["name"] for n in nss)
    missing = sorted((wanted or set()) - set(names))
    if missing:
        raise UsageError(f"--namespace: no such namespace in the cluster: {printable(', '.join(missing))}")
    pods: list[dict[str, Any]] = []
    policies: list[dict[str, Any]] = []
    for name in names:
        pods += fetching.list_objects(api, "v1", "Pod", name)
        policies += fetching.list_objects(api, POLICY_API, "NetworkPolicy", name)
    document = state_of(nss, pods, policies)
    document["probes"] = declared_probes(document["pods"])
    scope = Scope(document, {})
    for pod in pods:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        why = _audited(pod)
        if why is None:
            scope.pods[key] = pod
        else:
            scope.skipped.append(f"{key}: {why}")
    return scope


def declared(document: Mapping[str, Any]) -> dict[str, set[tuple[int, str]]]:
    """Per pod ("ns/name"), the (containerPort, protocol) pairs it declares."""
    return {
        f"{p['namespace']}/{p['name']}": {(int(x["containerPort"]), str(x["protocol"])) for x in p["ports"]}
        for p in document["pods"]
    }


def audit_udp(expected: ExpectedCell, observed: ObservedCell) -> tuple[Outcome, str] | None:
    """UDP cells the probe verdict alone would misjudge (docs/audit.md, "UDP"): silence toward a port
    the policy allows is inconclusive (a service that does not echo the probe stays silent too), and
    answers that did not echo the nonce prove the datagram arrived. None: judge it as any cell."""
    if observed.verdict != "dropped":
        return None
    if FOREIGN_UDP.search(observed.evidence):
        if expected.allowed:
            return Outcome.OK, "reached: the destination answered (not the probe's echo)"
        return Outcome.WRONG, "expected denied, but the destination answered: the datagram arrived"
    if expected.allowed:  # UNSUPPORTED: listed as inconclusive, neither passed nor failed
        return Outcome.UNSUPPORTED, "inconclusive: UDP silence (a service that does not answer looks alike)"
    return None


@dataclass
class Verdicts:
    comparison: Comparison  # the cells that count, in the report's outcomes
    inconclusive: list[CellComparison]  # probed, but the verdict proves nothing (listed, not counted)


def judge(
    expected: Mapping[CellKey, ExpectedCell],
    observed: Mapping[CellKey, ObservedCell],
    denied: frozenset[str],
    unprobed: Mapping[str, str],
) -> Verdicts:
    """Compare, with the audit's rules on top: UDP (audit_udp); `unsupported` (SCTP where the source's
    kernel has none) is inconclusive too; a probe without a verdict, or a source whose agent never ran
    (`unprobed`: source -> why), is `missing` with the reason, as the report's schema has it."""
    cells: list[CellComparison] = []
    inconclusive: list[CellComparison] = []
    for cell in compare(expected, observed, denied).cells:
        obs = cell.observed
        special = audit_udp(cell.expected, obs) if obs is not None and cell.key.protocol == "UDP" else None
        if special is not None:
            cell = replace(cell, outcome=special[0], note=special[1])
        if cell.outcome is Outcome.UNSUPPORTED:
            inconclusive.append(cell)
            continue
        if cell.outcome not in REPORTABLE:
            cell = replace(cell, observed=None, outcome=Outcome.MISSING, note=f"no verdict: {cell.note}")
        elif cell.outcome is Outcome.MISSING and cell.key.source in unprobed:
            cell = replace(cell, note=f"not probed: {unprobed[cell.key.source]}")
        cells.append(cell)
    return Verdicts(Comparison(tuple(cells)), inconclusive)


def _probe_all(
    kubeconfig: str,
    context: str | None,
    containers: Mapping[str, str],
    targets: Mapping[str, list[tuple[CellKey, dict[str, Any]]]],
    timeout: float,
) -> tuple[dict[CellKey, ObservedCell], dict[str, str]]:
    """One exec of the probe agent per source pod (in its ephemeral container), several at once."""
    from netpolcheck.kube import execing
    from netpolcheck.kube.connection import KubeApi

    def one(source: str) -> list[dict[str, Any]]:
        api = KubeApi.from_kubeconfig(kubeconfig, context)  # a client per thread (see kubedriver.py)
        try:
            request = [dict(t, id=str(i)) for i, (_, t) in enumerate(targets[source])]
            return execing.probe(api, source, request, timeout=timeout, container=containers[source])
        finally:
            api.close()

    observed: dict[CellKey, ObservedCell] = {}
    failed: dict[str, str] = {}
    sources = [s for s in sorted(targets) if s in containers and targets[s]]
    with ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(sources)))) as pool:
        futures = {s: pool.submit(one, s) for s in sources}
        for source, future in futures.items():
            try:
                results = future.result()
            except Exception as exc:  # one pod's failure is its cells' (missing), not the audit's
                failed[source] = f"probe agent in {containers[source]}: {printable(str(exc))[:300]}"
                continue
            for (key, _), result in zip(targets[source], results, strict=True):
                observed[key] = ObservedCell(
                    str(result["verdict"]), int(result.get("attempts", 1)), str(result.get("evidence", ""))
                )
    return observed, failed


def _nodes(api: KubeApi) -> list[dict[str, str]]:
    out = []
    for item in (api.request("GET", "/api/v1/nodes") or {}).get("items", []):
        info = (item.get("status") or {}).get("nodeInfo") or {}
        node = {"name": str(item["metadata"]["name"])}
        for key in ("kernelVersion", "osImage", "kubeletVersion"):
            if info.get(key):
                node[key.removesuffix("Version") if key == "kernelVersion" else key] = str(info[key])
        out.append(node)
    return out


def _checked_options(args: argparse.Namespace) -> None:
    from netpolcheck.verdict.profile import check_profile_option

    check_profile_option(args.profile)
    if args.max_pods < 1:
        raise UsageError(f"--max-pods: must be at least 1, not {args.max_pods}")
    if not 0 < args.timeout <= 30:
        raise UsageError(f"--timeout: seconds between 0 and 30, not {args.timeout}")
    if args.idle_timeout < 60:
        raise UsageError(f"--idle-timeout: at least 60 seconds, not {args.idle_timeout}")
    if args.start_timeout <= 0:
        raise UsageError(f"--start-timeout: must be positive, not {args.start_timeout}")
    report = Path(args.report)
    if report.is_dir() or not report.parent.is_dir():
        raise UsageError(f"--report: {printable(args.report)} is a directory or its directory does not exist")


@dataclass
class Plan:
    profile: Profile
    weave_version: str | None
    expected: dict[CellKey, ExpectedCell]
    targets: dict[str, list[tuple[CellKey, dict[str, Any]]]]  # source -> (cell, agent target)
    explain: Callable[[CellKey], str]


def plan(api: KubeApi, args: argparse.Namespace, scope: Scope) -> Plan:
    """The expected matrix restricted to what the audit probes: audited sources to declared ports of
    audited destinations."""
    from netpolcheck.kube import weave
    from netpolcheck.verdict.expected import expect
    from netpolcheck.verdict.profile import run_profile

    weave_version = weave.installed_version(api)
    try:
        profile = run_profile(args.profile, weave_version)
    except UsageError as exc:
        raise UsageError(f"{exc}; give --profile spec or weave-X.Y.Z") from None
    if not scope.pods:
        raise UsageError("no running pod with an address in the audited namespaces: nothing to audit")
    ports = declared(scope.document)
    if not any(ports.get(p) for p in scope.pods):
        raise UsageError("no audited pod declares a container port: audit probes only declared ports")
    expectation = expect(scope.document, profile)
    expected: dict[CellKey, ExpectedCell] = {}
    targets: dict[str, list[tuple[CellKey, dict[str, Any]]]] = {}
    for key, cell in expectation.cells.items():
        target = expectation.targets[key]
        if target.source not in scope.pods or target.destination not in scope.pods:
            continue
        if (target.port, target.protocol) not in ports.get(target.destination, set()):
            continue
        expected[key] = cell
        targets.setdefault(target.source, []).append(
            (key, {"ip": target.ip, "port": target.port, "protocol": target.protocol})
        )
    if not targets:
        raise UsageError(
            "nothing to probe: no audited pod can reach another audited pod's declared port "
            "(a pod is never probed from itself)"
        )
    if len(targets) > args.max_pods:  # the pods that would probe: each gets an ephemeral container
        raise UsageError(
            f"{len(targets)} pods would get an ephemeral container, more than --max-pods {args.max_pods}: "
            "narrow the audit with --namespace or raise --max-pods (no pod was touched)"
        )
    return Plan(profile, weave_version, expected, targets, expectation.explain)


def _install_agents(
    api: KubeApi, args: argparse.Namespace, scope: Scope, sources: Iterable[str], server: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Each audited pod's agent container ("ns/pod" -> name): an earlier audit's still running, or a new
    one (the only write); and the pods that refused one ("ns/pod" -> why). A refusal before any pod
    was changed is bad input (exit 2): nothing was added anywhere."""
    name = agents.new_name()
    spec = agents.container(name, args.probe_image, args.idle_timeout)
    wanted: dict[str, str] = {}
    refused: dict[str, str] = {}
    for key in sorted(sources):
        earlier = agents.reusable(scope.pods[key], args.probe_image, REUSE_MARGIN)
        if earlier is not None:
            wanted[key] = earlier
            continue
        namespace, _, pod_name = key.partition("/")
        try:
            agents.add(api, namespace, pod_name, spec)
        except Exception as exc:
            error = cluster_error(server, f"adding an ephemeral container to {key}", exc)
            if error is None:
                raise
            if not wanted and not refused:
                raise error from None
            refused[key] = str(error)
            continue
        wanted[key] = name
    return wanted, refused


def run(args: argparse.Namespace) -> int:
    _checked_options(args)
    try:
        api, server = connect(args.kubeconfig, args.context)
    except Exception as exc:
        raise UsageError(f"--kubeconfig: {printable(str(exc)) or type(exc).__name__}") from None
    try:
        doing = "asking for its version"
        try:
            from netpolcheck.kube.fetching import server_version

            version = server_version(api, timeout=REACH_TIMEOUT)
            doing = "reading namespaces, pods and NetworkPolicies"
            scope = read_scope(api, list(dict.fromkeys(args.namespaces)) if args.namespaces else None)
            the_plan = plan(api, args, scope)
            nodes = _nodes(api)
        except UsageError:
            raise
        except Exception as exc:
            error = cluster_error(server, doing, exc)
            if error is None:
                raise
            raise error from None
        installed, refused = _install_agents(api, args, scope, the_plan.targets, server)
        started = agents.wait_running(api, installed, args.start_timeout)
    finally:
        api.close()
    observed, probe_failures = _probe_all(
        args.kubeconfig, args.context, started.container, the_plan.targets, args.timeout
    )
    unprobed = refused | started.failed | probe_failures
    verdicts = judge(the_plan.expected, observed, the_plan.profile.denied_verdicts, unprobed)
    _print(args, scope, the_plan, observed, verdicts, started, unprobed)
    document = _report(args, version, nodes, the_plan, verdicts, started, scope)
    write_all({Path(args.report): json.dumps(document, indent=1) + "\n"})
    print(f"certification report ({document['result']}): {args.report}")
    return EXIT_MATCHES if verdicts.comparison.passed else EXIT_WRONG


def _print(
    args: argparse.Namespace,
    scope: Scope,
    the_plan: Plan,
    observed: Mapping[CellKey, ObservedCell],
    verdicts: Verdicts,
    started: agents.Agents,
    unprobed: Mapping[str, str],
) -> None:
    out = sys.stdout
    names = sorted(set(started.container.values()))
    out.write(
        f"audit: {len(scope.pods)} pod(s), {len(the_plan.targets)} probing, "
        f"{len(the_plan.expected)} cell(s), "
        f"profile {the_plan.profile.name}; "
        f"probing from ephemeral container(s) {', '.join(names) or '-'} (they stay in the pods' specs and "
        f"stop after {args.idle_timeout} s)\n"
    )
    for line in scope.skipped:
        out.write(f"not audited: {line}\n")
    for source, why in sorted(unprobed.items()):
        out.write(f"not probed from {source}: {why}\n")
    shown = {c.key: observed[c.key] for c in verdicts.comparison.cells if c.key in observed}
    out.write("\n" + comparison_text(the_plan.expected, shown, verdicts.comparison, the_plan.explain))
    for cell in verdicts.inconclusive:
        k = cell.key
        out.write(f"inconclusive: {k.source} -> {k.destination} {k.protocol}/{k.port}: {cell.note}\n")


def _report(
    args: argparse.Namespace,
    version: str | None,
    nodes: list[dict[str, str]],
    the_plan: Plan,
    verdicts: Verdicts,
    started: agents.Agents,
    scope: Scope,
) -> dict[str, Any]:
    from netpolcheck.verdict.profile import implementation_profile

    comparison = verdicts.comparison
    deviating = [c for c in comparison.cells if c.outcome is Outcome.DEVIATION]
    shown = sorted({d for c in deviating for d in c.expected.deviations})
    predicted = sorted({d for c in comparison.cells for d in c.expected.deviations})
    note = "; ".join(
        [f"inconclusive UDP cells (silence toward an allowed port): {len(verdicts.inconclusive)}"]
        + [
            f"{c.key.source} -> {c.key.destination} {c.key.protocol}/{c.key.port}"
            for c in verdicts.inconclusive
        ]
    )
    check = check_entry(
        0,
        "the cluster's own workloads and policies",
        "pass" if comparison.passed else "fail",
        comparison,
        {"converged": comparison.passed, "ms": None, "rounds": 1, "probes": len(comparison.cells)},
        note=note if verdicts.inconclusive else "",
        weave_version=the_plan.weave_version,
        deviations_shown=shown,
        deviations_predicted=predicted,
    )
    case = case_entry("audit", check["status"], [check], features=["audit"])
    environment = environment_entry(
        "existing",
        version or "unknown",
        nodes,
        ("weave-net", the_plan.weave_version),
        __version__,
        the_plan.profile.name,
        {
            "command": "audit",
            "namespaces": sorted({k.partition("/")[0] for k in scope.pods}),
            "pods": len(scope.pods),
            "maxPods": args.max_pods,
            "probeImage": args.probe_image,
            "timeout": args.timeout,
            "idleTimeout": args.idle_timeout,
            "ephemeralContainers": sorted(set(started.container.values())),
        },
    )
    implementation = implementation_profile(the_plan.weave_version)
    deviations = {d.id: d.reason for d in implementation.deviations} if implementation else {}
    return build_report(
        environment, [case], deviations, generated=datetime.now(UTC).isoformat(timespec="seconds")
    )


def register(subparsers: Any) -> None:
    from netpolcheck.kube.probepods import DEFAULT_PROBE_IMAGE

    parser = subparsers.add_parser(
        "audit",
        help="probe a live cluster's own workloads (from ephemeral containers) against what its "
        "NetworkPolicies should allow",
        description="Read the cluster's namespaces, pods and NetworkPolicies, compute the expected "
        "matrix, and probe it from an ephemeral container added to each audited pod (the probe "
        "image, NET_RAW only) to the ports the pods declare. Writes nothing else. Ephemeral "
        "containers cannot be removed: they stay in the pods' specs and stop after --idle-timeout. "
        "Exit status: 0 every cell matches, 1 a cell is wrong or could not be probed, 2 bad input. "
        "Limits: docs/audit.md.",
    )
    add_cluster_arguments(
        parser,
        "the cluster to audit",
        "the kubeconfig context to use",
        "audit this namespace (repeatable; default: every namespace)",
        required=True,
    )
    parser.add_argument(
        "--profile",
        default="weave",
        help="expectations: spec, weave (the running Weave version's, the default) or weave-X.Y.Z",
    )
    parser.add_argument(
        "--max-pods",
        type=int,
        default=DEFAULT_MAX_PODS,
        metavar="N",
        help="refuse (exit 2, nothing touched) when more than N pods would get an ephemeral container",
    )
    parser.add_argument("--probe-image", default=DEFAULT_PROBE_IMAGE, help="the probe agent's image")
    parser.add_argument(
        "--timeout", type=float, default=1.0, metavar="S", help="the probe agent's window per round (seconds)"
    )
    parser.add_argument(
        "--idle-timeout",
        type=int,
        default=DEFAULT_IDLE,
        metavar="S",
        help="the ephemeral containers exit this many seconds after they start",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=DEFAULT_START_TIMEOUT,
        metavar="S",
        help="how long to wait for the ephemeral containers to run (pull included)",
    )
    parser.add_argument(
        "--report", default=DEFAULT_REPORT, metavar="FILE", help="where the certification report (JSON) goes"
    )
    parser.set_defaults(func=run)
