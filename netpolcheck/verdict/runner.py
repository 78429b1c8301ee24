"""Run a case on a cluster: create its namespaces and pods, do each step, check after each, clean up.

A check: snapshot the case's namespaces -> expected matrix under the run's profile (model) -> probe
until it matches or the deadline passes (convergence) -> status (pass, fail, documented deviation as
expected failure) -> on anything but a pass, the failure text with truth tables and per-cell forensics.

Negative control: policy steps are *not* sent to the cluster, but the expectation is computed as if
they had been; a suite that can fail must then fail (`negative_control_verdict`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netpolcheck.report.cells import Outcome
from netpolcheck.report.compare import Comparison, compare
from netpolcheck.verdict import case as c
from netpolcheck.verdict.convergence import Clock, ConvergenceResult, Policy, converge, converge_staggered
from netpolcheck.verdict.deviations import Status, classify, predict
from netpolcheck.verdict.driver import Driver, NoResidentAgent, PodSpec, ResidentDriver, Stagger
from netpolcheck.verdict.expected import Expectation, expect, state_document
from netpolcheck.verdict.failure import failure_text
from netpolcheck.verdict.forensics import gather
from netpolcheck.verdict.foresee import after_step
from netpolcheck.verdict.naming import CASE_LABEL, Naming, run_prefix
from netpolcheck.verdict.pool import Layout, Lease, TopologyPool, differences, restore_plan, reusable
from netpolcheck.verdict.probing import Prober, ResidentProber
from netpolcheck.verdict.profile import implementation_profile, run_profile
from netpolcheck.verdict.results import CaseResult, CheckResult, HoldReport
from netpolcheck.verdict.validation import validate
from netpolcheck.verdict.watch import watch_while, watch_with_agents
from netpolcheck.verdict.weavehome import WeaveHome

log = logging.getLogger("netpolcheck.verdict")
IGNORED_LABELS = frozenset({CASE_LABEL})  # a reused topology is relabelled with each case's id
# how long a handed-back topology may take to show the matrix of no policies; no verdict depends on
# it (a topology that is slower is deleted, which costs only time), so it is shorter than the deadline
RESET_BOUND = 5.0
COARSE = 10  # cells a step should not change are watched this many times less often
WATCH_LIMIT = 600.0  # seconds the agents watch a long step at most (their own bound)


def system_clock() -> Clock:
    return Clock(time.monotonic, threading.Event().wait)


@dataclass(frozen=True)
class RunOptions:
    """`probe_timeout`: the agent's window for full rounds; `quick_timeout`: for re-probing wrong cells,
    and the window of each staggered attempt; `staggered_interval`: between two staggered attempts."""

    profile: str = "weave"
    probe_timeout: float = 1.0
    quick_timeout: float = 0.1
    staggered_interval: float = 0.01
    deadline: float = 15.0
    negative_control: bool = False
    probe_workers: int = 16  # source pods probed at once
    outage_bound: float = 10.0  # seconds an allowed cell may go dark while Weave rolls
    watched_interval: float = 0.1  # between two attempts toward a cell while a long step runs
    watched_after: float = 1.0  # how long the cells are still watched after the long step returned
    keep: bool = False  # leave the namespaces for inspection


@dataclass
class _Run:
    case: c.Case
    naming: Naming
    result: CaseResult
    namespaces: list[str] = field(default_factory=list)  # logical names that exist now
    virtual: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # negative control
    holds: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (namespace, pod) holding


class CaseRunner:
    def __init__(
        self,
        driver: Driver,
        options: RunOptions,
        clock: Clock | None = None,
        progress: Callable[[str], None] = log.info,
        prefix: Callable[[str], str] = run_prefix,
        pool: TopologyPool | None = None,
        home: WeaveHome | None = None,
    ) -> None:
        """`pool`: where topologies are handed back to and taken from (pool.py); None: every case makes
        its own and deletes it. `home`: the session's Weave version, put back before a case that runs on
        it (weavehome.py); None: a case that moves Weave puts it back at its own end."""
        self.driver = driver
        self.pool = pool
        self.home = home
        self.options = options
        self.clock = clock or system_clock()
        self.progress = progress
        self.prefix = prefix
        self.full = Prober(driver, options.probe_timeout, options.probe_workers)
        self.quick = Prober(driver, options.quick_timeout, options.probe_workers)
        self.resident = (
            ResidentProber(
                driver,
                Stagger(options.quick_timeout, options.staggered_interval, options.probe_timeout),
                options.probe_workers,
            )
            if isinstance(driver, ResidentDriver)
            else None
        )

    # ----- the case ------------------------------------------------------------------------------

    def run(self, case: c.Case) -> CaseResult:
        validate(case)
        pooled = self.pool is not None and not self.options.keep and reusable(case) is None
        lease = self.pool.take(Layout.of(case)) if self.pool is not None and pooled else None
        if lease is None:
            return self._attempt(case, None, pooled)
        before = list(lease.history)
        result = self._attempt(case, lease, pooled)
        if result.status is not Status.FAIL or self.options.negative_control:
            return result
        # whose failure is it? the same case on a topology of its own tells (docs/verdict.md)
        self.progress(
            f"{case.id}: failed on the topology {', '.join(before)} used before; "
            "running it again on a topology of its own to tell whose failure it is"
        )
        fresh = self._attempt(case, None, pooled)
        if fresh.status is Status.FAIL:
            self.progress(f"{case.id}: it fails on a topology of its own too: the failure is its own")
            return fresh
        fresh.error += (
            f"on the topology that {', '.join(before)} used before (policies deleted, labels put back, "
            f"the matrix of no policies seen), this case failed: {_failed_checks(result)}; on a topology "
            "of its own it did not. What those cases left behind changed this case's cells: a deleted "
            "policy or a restored label still in force, which a conforming implementation never does.\n"
        )
        return fresh

    def _attempt(self, case: c.Case, lease: Lease | None, pooled: bool) -> CaseResult:
        """One run of the case: on `lease` (a reused topology) or on a new one (kept as a lease when
        `pooled`); the topology is handed back only when the case passed."""
        naming = Naming(case.id, lease.prefix if lease is not None else self.prefix(case.id))
        run = _Run(case, naming, CaseResult(case.id, self.options.profile, self.options.negative_control))
        original = self.driver.info().weave_version
        finished = False
        try:
            if case.weave_version is not None and original != case.weave_version:
                self.progress(f"{case.id}: installing Weave {case.weave_version} (the case starts there)")
                self.driver.upgrade_weave(case.weave_version)
            elif case.weave_version is None and self.home is not None:
                self.home.bring_back(self.driver, self.progress, f"{case.id} runs on the session's version")
            if lease is not None:
                self._reuse(run, lease)
            else:
                for ns in case.namespaces:
                    self._create_namespace(run, ns)
                self.progress(f"{case.id}: creating {len(case.pods)} probe pods and waiting until they serve")
                self.driver.create_pods([self._pod_spec(run, p) for p in case.pods])
                if pooled:
                    pristine = self.driver.snapshot(naming.real_namespaces(run.namespaces))
                    lease = Lease(naming.prefix, Layout.of(case), pristine)
            if case.check_first:
                self._check(run, 0, "initial state", self.clock.now(), time.time())
            for index, step in enumerate(case.steps, start=1):
                self.progress(f"{case.id}: step {index}/{len(case.steps)}: {step.describe()}")
                wall = time.time()
                watches: dict[str, str] = {}
                if isinstance(step, c.UpgradeWeave) and step.watch:
                    upgrade = functools.partial(self.driver.upgrade_weave, step.version)
                    self._watched(run, index, upgrade, step.version)
                elif isinstance(step, c.RestartController):
                    self._watched(run, index, self.driver.restart_policy_controller, None)
                else:
                    watches = self._watch_before(run, step)
                    self._do(run, step)
                self._check(run, index, step.describe(), self.clock.now(), wall, watches)
            finished = True
        finally:
            if not self.options.keep:
                for name in list(run.holds):
                    self._release(run, name)
                passed = finished and run.result.status is not Status.FAIL
                if not (passed and lease is not None and self._hand_back(run, lease)):
                    self._clean_up(run)
            if self.home is None:
                self._restore_weave(run, original)
        return run.result

    def _restore_weave(self, run: _Run, original: str | None) -> None:
        """A case that moved Weave puts the cluster back on the version it found."""
        now = self.driver.info().weave_version
        if original is None or now == original:
            return
        self.progress(f"{run.case.id}: putting Weave back from {now} to {original}")
        try:
            self.driver.upgrade_weave(original)
        except Exception as exc:
            run.result.error += f"restoring Weave {original} failed: {exc}\n"

    def _clean_up(self, run: _Run) -> None:
        for logical in list(run.namespaces):
            name = run.naming.namespace(logical)
            self.progress(f"{run.case.id}: deleting namespace {name}")
            try:
                self.driver.delete_namespace(name)
            except Exception as exc:  # keep going: every namespace must be tried
                run.result.error += f"clean-up of namespace {name} failed: {exc}\n"

    # ----- reusing a topology (pool.py) ----------------------------------------------------------

    def _reuse(self, run: _Run, lease: Lease) -> None:
        """Take over a handed-back topology: its namespaces now carry this case's id."""
        self.progress(
            f"{run.case.id}: reusing the namespaces and probe pods of {lease.prefix} (use {lease.uses}): "
            "no policies, labels as made, matrix checked when handed back"
        )
        for ns in run.case.namespaces:
            self.driver.label_namespace(run.naming.namespace(ns.name), {CASE_LABEL: run.naming.case_label()})
            run.namespaces.append(ns.name)

    def _hand_back(self, run: _Run, lease: Lease) -> bool:
        """Delete the case's policies, put every label back, and keep the topology in the pool if the
        API shows it as it was made and the dataplane shows the matrix of no policies; False (the
        caller deletes it) otherwise, saying why."""
        assert self.pool is not None
        real = run.naming.real_namespaces(run.namespaces)
        try:
            plan = restore_plan(lease.pristine, self.driver.snapshot(real), IGNORED_LABELS)
            for namespace, name in plan.policies:
                self.driver.delete_policy(namespace, name)
            for namespace, labels in plan.namespace_labels:
                self.driver.label_namespace(namespace, labels)
            for namespace, pod, labels in plan.pod_labels:
                self.driver.label_pod(namespace, pod, labels)
            now = self.driver.snapshot(real)
            changed = differences(lease.pristine, now, IGNORED_LABELS)
            if changed:
                self.progress(f"{run.case.id}: topology not reused: {'; '.join(changed[:3])}")
                return False
            wrong = self._wrong_without_policies(run, now)
            if wrong:
                self.progress(f"{run.case.id}: topology not reused: without policies {wrong}")
                return False
        except Exception as exc:  # the topology is deleted instead; nothing is lost but time
            self.progress(f"{run.case.id}: topology not reused: {type(exc).__name__}: {exc}")
            return False
        lease.history.append(run.case.id)
        self.progress(f"{run.case.id}: topology {lease.prefix} handed back for the next case")
        pushed = self.pool.give(lease)
        if pushed:
            self.progress(f"{run.case.id}: deleting {len(pushed)} topology(ies) the full pool pushed out")
        delete_topologies(self.driver, pushed)
        return True

    def _wrong_without_policies(self, run: _Run, document: dict[str, Any]) -> str:
        """'' when the dataplane shows the implementation's matrix for `document` (the case's topology
        without policies): one full round, and only if that differs, settling until the deadline."""
        version = self.driver.info().weave_version
        target = self._foreseen(run, state_document(document, run.case.probes), version)
        denied = target.model_profile.denied_verdicts  # the implementation's, as `_foreseen` chose it
        since = self.clock.now()
        first = self.full.run(list(target.cells), target.targets, self.clock.now)
        if compare(target.cells, first.cells, denied).passed:
            return ""
        bound = min(self.options.deadline, RESET_BOUND)
        outcome = self._converge(target.cells, target.targets, since, denied, {}, bound)
        if outcome.comparison.passed:
            return ""
        wrong = outcome.comparison.wrong
        first_wrong = wrong[0].key if wrong else None
        return f"{len(wrong)} cell(s) still differ after {bound:g} s (first: {first_wrong})"

    # ----- steps ---------------------------------------------------------------------------------

    def _create_namespace(self, run: _Run, ns: c.NamespaceDef) -> None:
        self.driver.create_namespace(
            run.naming.namespace(ns.name), run.naming.namespace_labels(ns.name, ns.labels)
        )
        run.namespaces.append(ns.name)

    def _pod_spec(self, run: _Run, pod: c.PodDef) -> PodSpec:
        nodes = self.driver.info().nodes
        node = None if pod.node is None or not nodes else nodes[pod.node % len(nodes)]
        namespace = run.naming.namespace(pod.namespace)
        return PodSpec(namespace, pod.name, dict(pod.labels), node, pod.ports, pod.host_network)

    def _pod_ips(self, run: _Run) -> dict[str, str]:
        snapshot = self.driver.snapshot(run.naming.real_namespaces(run.namespaces))
        return {
            run.naming.logical_key(f"{p['namespace']}/{p['name']}"): str(p["ip"]) for p in snapshot["pods"]
        }

    def _manifest(self, run: _Run, step: c.ApplyPolicy) -> dict[str, Any]:
        ips = self._pod_ips(run) if "{ip:" in repr(step.manifest) else {}
        manifest: dict[str, Any] = run.naming.substitute(step.manifest, ips)
        manifest.setdefault("apiVersion", "networking.k8s.io/v1")
        manifest["metadata"] = {**manifest["metadata"], "namespace": run.naming.namespace(step.namespace)}
        return manifest

    def _do(self, run: _Run, step: c.Step) -> None:
        d, n = self.driver, run.naming
        match step:
            case c.ApplyPolicy(namespace=ns):
                manifest = self._manifest(run, step)
                if self.options.negative_control:
                    run.virtual[(ns, step.name)] = manifest
                else:
                    d.apply_policy(n.namespace(ns), manifest)
            case c.DeletePolicy(namespace=ns, name=name):
                if self.options.negative_control:
                    run.virtual.pop((ns, name), None)
                else:
                    d.delete_policy(n.namespace(ns), name)
            case c.LabelPod(namespace=ns, name=name, labels=labels):
                d.label_pod(n.namespace(ns), name, labels)
            case c.LabelNamespace(name=name, labels=labels):
                d.label_namespace(n.namespace(name), labels)
            case c.CreatePod(pod=pod):
                d.create_pods([self._pod_spec(run, pod)])
            case c.DeletePod(namespace=ns, name=name):
                d.delete_pod(n.namespace(ns), name)
            case c.CreateNamespace(namespace=ns):
                self._create_namespace(run, ns)
            case c.DeleteNamespace(name=name):
                d.delete_namespace(n.namespace(name))
                run.namespaces.remove(name)
                run.virtual = {k: v for k, v in run.virtual.items() if k[0] != name}
            case c.RestartController():  # watched by run()
                d.restart_policy_controller()
            case c.UpgradeWeave(version=version):
                d.upgrade_weave(version)
            case c.Hold(name=name):
                ip = self._pod_ips(run)[f"{step.to_namespace}/{step.to_pod}"]
                d.hold_start(n.namespace(step.namespace), step.pod, ip, step.port, step.udp_port, name)
                run.holds[name] = (n.namespace(step.namespace), step.pod)
            case c.Release(name=name):
                self._release(run, name)

    def _document(self, run: _Run) -> dict[str, Any]:
        """The STATE of the case's namespaces now, with the policies negative control held back."""
        snapshot = self.driver.snapshot(run.naming.real_namespaces(run.namespaces))
        snapshot["policies"] = list(snapshot.get("policies", [])) + list(run.virtual.values())
        return state_document(snapshot, run.case.probes)

    def _watched(self, run: _Run, index: int, step: Callable[[], None], new_version: str | None) -> None:
        """Run `step` while probing every round against the expectations of the version running before
        and of `new_version` (None: the same version, e.g. a controller restart)."""
        old_version = self.driver.info().weave_version
        document = self._document(run)

        def expectation(version: str | None) -> Expectation:
            profile = implementation_profile(version) or run_profile(self.options.profile, version)
            return expect(document, profile, run.naming.logical_key)

        old = expectation(old_version)
        new = old if new_version is None else expectation(new_version)
        watch = None
        if self.resident is not None:
            every = self.options.watched_interval
            self.progress(
                f"{run.case.id}: step {index} runs while the pods' agents attempt every cell every "
                f"{every * 1000:.0f} ms (and {self.options.watched_after:g} s after it)"
            )
            watch = watch_with_agents(
                step,
                old.cells,
                new.cells,
                old.targets,
                self.resident,
                self.clock,
                every,
                WATCH_LIMIT,
                self.options.watched_after,
            )
        if watch is None:
            self.progress(f"{run.case.id}: step {index} runs while every cell is probed in rounds")
            watch = watch_while(step, old.cells, new.cells, old.targets, self.full, self.clock)
        run.result.watches[index] = watch
        self.progress(f"{run.case.id}: watched: {watch.summary()}")

    def _release(self, run: _Run, name: str) -> None:
        namespace, pod = run.holds.pop(name)
        try:
            status = self.driver.hold_stop(namespace, pod, name)
        except Exception as exc:  # the report says so; clean-up goes on
            status = {"ended": {"how": f"could not stop the hold: {exc}"}}
        run.result.holds[name] = HoldReport(name, status)
        self.progress(f"{run.case.id}: {run.result.holds[name].summary()}")

    # ----- checks --------------------------------------------------------------------------------

    def _expectation(self, run: _Run, document: dict[str, Any], weave_version: str | None) -> Expectation:
        profile = run_profile(self.options.profile, weave_version)
        return expect(document, profile, run.naming.logical_key)

    def _watch_before(self, run: _Run, step: c.Step) -> dict[str, str]:
        """Staggered watches, started before a step: the cells the model says it changes (foresee.py)
        every `staggered_interval`, so they are seen changing about 10 ms apart instead of after the exec
        that asks for them; every other cell COARSE times less often (so one that changes anyway is still
        seen, less finely, and one that stays right is seen staying right, without thousands of probes
        a second on a loaded machine). One watch request per source pod carries both cadences."""
        if self.resident is None:
            return {}
        try:
            document = self._document(run)
            manifest = self._manifest(run, step) if isinstance(step, c.ApplyPolicy) else None
            after = after_step(document, step, run.naming, manifest)
            version = self.driver.info().weave_version
            before = self._foreseen(run, document, version)
            foreseen = before if after is None else self._foreseen(run, after, version)
            changed = [
                key
                for key, cell in foreseen.cells.items()
                if key in before.targets and key in before.cells and before.cells[key].allowed != cell.allowed
            ]
            slow = self.options.staggered_interval * COARSE
            coarse = {key: slow for key in before.targets if key not in changed}
            # one watch (one exec) per source pod, each cell at its own cadence
            return self.resident.watch(
                list(before.targets), before.targets, self.options.deadline + 30.0, coarse
            )
        except Exception as exc:  # the check settles every cell after the step; the progress says so
            self.progress(f"{run.case.id}: no watch before the step ({exc})")
            return {}

    def _foreseen(self, run: _Run, document: dict[str, Any], version: str | None) -> Expectation:
        """The implementation's expected cells for `document` (what the dataplane will be asked to show)."""
        profile = implementation_profile(version) or run_profile(self.options.profile, version)
        return expect(document, profile, run.naming.logical_key)

    def _check(
        self,
        run: _Run,
        index: int,
        description: str,
        since: float,
        wall: float,
        watches: dict[str, str] | None = None,
    ) -> CheckResult:
        case, naming = run.case, run.naming
        weave_version = self.driver.info().weave_version
        document = self._document(run)
        expectation = self._expectation(run, document, weave_version)
        implementation = implementation_profile(weave_version)
        prediction, target = None, expectation
        if implementation is not None and implementation.name != expectation.profile:
            target = expect(document, implementation, naming.logical_key)
            prediction = predict(expectation, target, implementation)
            denied = implementation.denied_verdicts
        else:
            denied = expectation.model_profile.denied_verdicts
        self.progress(
            f"{case.id}: check {index} ({description}): waiting up to {self.options.deadline:g} s for "
            f"{len(expectation.cells)} cells to match {expectation.profile}"
        )
        outcome = self._converge(target.cells, target.targets, since, denied, watches or {})
        comparison = compare(expectation.cells, outcome.observed, expectation.model_profile.denied_verdicts)
        status, note = classify(comparison, prediction)
        if comparison.errors:  # a failed probe is no verdict: never a pass nor a documented deviation
            status = Status.FAIL
            note = "; ".join(filter(None, [note, _errors_note(comparison)]))
        if comparison.unsupported:
            note = "; ".join(filter(None, [note, _unsupported_note(comparison)]))
            if len(comparison.unsupported) == len(comparison.cells):
                status = Status.FAIL  # nothing was probed: a check that verified nothing cannot pass
        watch = run.result.watches.get(index)
        violations = watch.violations(self.options.outage_bound * 1000) if watch is not None else []
        if violations:
            status = Status.FAIL
            note = "; ".join(
                [note, f"while rolling: {len(violations)} violation(s)"]
                if note
                else [f"while rolling: {len(violations)} violation(s)"]
            )
        result = CheckResult(
            case.id,
            index,
            description,
            expectation,
            outcome.observed,
            outcome.raw,
            comparison,
            outcome.convergence,
            status,
            note,
            prediction,
            weave_version=weave_version,
        )
        if status is not Status.PASS:
            wrong = [cell.key for cell in comparison.wrong]
            forensics = gather(self.driver, wrong, expectation.targets, wall)
            text = failure_text(result, forensics)
            if watch is not None:
                text = "\n".join([f"while rolling: {watch.summary()}", *violations, "", text])
            result = CheckResult(**{**result.__dict__, "report": text})
        conv = outcome.convergence
        self.progress(
            f"{case.id}: check {index}: {status.value}{f' ({note})' if note else ''}; "
            + (
                f"converged in {conv.ms:.0f} ms (>= {conv.lower_ms:.0f} ms, {conv.method})"
                if conv.ms is not None
                else "not converged"
            )
        )
        run.result.checks.append(result)
        return result

    def _converge(
        self,
        cells: dict[Any, Any],
        targets: dict[Any, Any],
        since: float,
        denied: frozenset[str],
        watches: dict[str, str],
        bound: float | None = None,
    ) -> ConvergenceResult:
        """Staggered watches in the resident agents; probe rounds where the pods have none (said so in
        the result's `method`, and in the progress). `bound`: seconds instead of the deadline."""
        deadline = Policy(self.options.deadline if bound is None else bound)
        if self.resident is not None:
            since_wall = time.time() - (self.clock.now() - since)
            try:
                return converge_staggered(
                    cells,
                    targets,
                    self.full,
                    self.resident,
                    since,
                    since_wall,
                    self.clock,
                    denied,
                    deadline,
                    watches,
                )
            except NoResidentAgent as exc:
                self.progress(f"no resident agent, probing in rounds instead: {exc}")
                outcome = converge(cells, targets, self.full, self.quick, since, self.clock, denied, deadline)
                method = f"rounds (no resident agent: {exc})"
                return dataclasses.replace(
                    outcome, convergence=dataclasses.replace(outcome.convergence, method=method)
                )
        return converge(cells, targets, self.full, self.quick, since, self.clock, denied, deadline)


def delete_topologies(driver: Driver, leases: list[Lease]) -> None:
    """Delete the namespaces (and so the probe pods) of topologies no case will take any more."""
    for lease in leases:
        for namespace in lease.namespace_names:
            driver.delete_namespace(namespace)


def _failed_checks(result: CaseResult) -> str:
    failed = result.failures()
    if not failed:
        return result.error.strip() or "(no check failed)"
    return "; ".join(
        f"check {ch.step_index} ({ch.step}): {ch.status_note or ch.status.value}" for ch in failed
    )


def _errors_note(comparison: Comparison) -> str:
    first = comparison.errors[0]
    evidence = first.observed.evidence if first.observed is not None else ""
    return f"{len(comparison.errors)} cell(s) could not be probed (first: {evidence or 'no reason given'})"


def _unsupported_note(comparison: Comparison) -> str:
    protocols = sorted({c.key.protocol for c in comparison.unsupported})
    return (
        f"{len(comparison.unsupported)} {'/'.join(protocols)} cell(s) not probed (unsupported by the "
        "source's kernel): skipped, not passed"
    )


def negative_control_verdict(result: CaseResult) -> tuple[bool, str]:
    """(proved, why): under negative control a policy case must fail at least one check on a cell whose
    verdict differs from the expectation (a failed probe or an unprobed cell proves nothing)."""
    failed = [
        ch
        for ch in result.checks
        if ch.status is not Status.PASS and any(c.outcome is Outcome.WRONG for c in ch.comparison.cells)
    ]
    if failed:
        first = failed[0]
        return True, f"check {first.step_index} ({first.step}) failed as it must: {first.status_note}"
    return False, "every check passed with the policies not applied: this case cannot fail"
