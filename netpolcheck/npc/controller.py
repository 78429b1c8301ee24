"""The controller loop: watch events -> world -> desired dataplane -> incremental programming.

Events arriving together are applied as one batch and programmed once (weave-npc handles them one by
one; the end state is the same, and a burst such as "delete every policy" costs one transaction).
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from netpolcheck.npc.analyser import Analyser
from netpolcheck.npc.kubewatch import Event
from netpolcheck.npc.metrics import Metrics
from netpolcheck.npc.profiles import Profile
from netpolcheck.npc.programmer import Changes, Programmer
from netpolcheck.npc.runner import Runner
from netpolcheck.npc.store import WorldStore

KINDS = ("Namespace", "Pod", "NetworkPolicy")
SYNCED_MESSAGE = "Initial listing programmed:"


class Controller:
    def __init__(
        self,
        profile: Profile,
        node_name: str,
        faults: frozenset[str],
        runner: Runner,
        log: logging.Logger,
        metrics: Metrics | None = None,
    ) -> None:
        self.profile = profile
        self.analyser = Analyser(profile, node_name, faults)
        self.programmer = Programmer(runner, on_log=log.info)
        self.store = WorldStore(faults, log.info)
        self.log = log
        self.metrics = metrics or Metrics()
        self.events: queue.Queue[Event] = queue.Queue()
        self.synced: set[str] = set()
        self.egress_drop = False  # weave's defaultEgressDrop: once set, kept until restart
        self.reported_errors: set[str] = set()

    def start(self) -> None:
        """Flush our chains and destroy weave-* sets, as weave-npc does on every start."""
        self.programmer.reset()

    def reconcile(self) -> Changes:
        world = self.store.world
        if self.profile.egress and any(self.analyser.is_egress_policy(p) for p in world.policies.values()):
            self.egress_drop = True
        desired = self.analyser.analyse(world, egress_drop=self.egress_drop)
        for error in desired.errors:
            if error not in self.reported_errors:
                self.log.error(error)
                self.metrics.count_error()
        self.reported_errors = set(desired.errors)
        changes = self.programmer.apply(desired)
        for error in changes.errors:
            self.log.error(error)
        self.metrics.count_error(len(changes.errors))
        return changes

    def handle(self, batch: list[Event]) -> Changes | None:
        """Apply a batch of events; program once every collection has been listed."""
        started = time.perf_counter()
        ready_before = self.synced.issuperset(KINDS)
        changed = False
        for event in batch:
            if event.type == "SYNC":
                self.synced.add(event.kind)
            changed |= self.store.apply(event)
        if not self.synced.issuperset(KINDS) or (ready_before and not changed):
            return None
        changes = self.reconcile()
        if not ready_before:
            world = self.store.world
            # Not a weave-npc line: it tells whoever waits for a restarted controller (tests, the suite)
            # that the previous controller's rules are gone and this one's are in. A weave-npc pod is
            # Ready before that: Weave's manifests give the container no readiness probe.
            self.log.info(
                "%s %d namespaces, %d pods, %d network policies",
                SYNCED_MESSAGE,
                len(world.namespaces),
                len(world.pods),
                len(world.policies),
            )
        if not changes.empty:
            self.log.debug(
                "programmed %d event(s) in %.1f ms", len(batch), (time.perf_counter() - started) * 1e3
            )
        return changes

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                batch = [self.events.get(timeout=0.5)]
            except queue.Empty:
                continue
            while True:
                try:
                    batch.append(self.events.get_nowait())
                except queue.Empty:
                    break
            try:
                self.handle(batch)
            except Exception as exc:  # weave-npc 2.6.3+: log, count, carry on
                self.log.error("handling %d event(s): %s", len(batch), exc)
                self.metrics.count_error()
