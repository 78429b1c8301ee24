"""Applies a desired Dataplane to the kernel incrementally, with `ipset restore` and `iptables-restore -n`.

Only differences are issued: set members are added/deleted one by one, rules of the per-policy and
per-namespace chains are deleted (`-D`) or appended (`-A`, like weave-npc), so unrelated rules keep
their position and counters. The static chains (WEAVE-NPC, WEAVE-NPC-EGRESS, ...) are rewritten
atomically only when their content must change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from netpolcheck.npc import dataplane as dp
from netpolcheck.npc.dataplane import Dataplane, IpSet, Rule
from netpolcheck.npc.runner import CommandFailed, Runner
from netpolcheck.npc.shortname import SET_PREFIX

ALL_CHAINS = (
    dp.MAIN,
    dp.DEFAULT,
    dp.INGRESS,
    dp.EGRESS,
    dp.EGRESS_DEFAULT,
    dp.EGRESS_CUSTOM,
    dp.EGRESS_ACCEPT,
)
# chains whose order is fixed by weave-npc's code; the others grow by appending, in event order
STATIC_CHAINS = (dp.MAIN, dp.EGRESS, dp.EGRESS_ACCEPT)
log = logging.getLogger("netpolcheck.npc")


def quote(token: str) -> str:
    return f'"{token}"' if any(c.isspace() for c in token) or token == "" else token


def rule_line(op: str, chain: str, rule: Rule) -> str:
    return " ".join([op, chain, *(quote(t) for t in rule)])


@dataclass
class Changes:
    """What one apply issued (for logs, tests and benchmarks)."""

    sets_created: int = 0
    sets_destroyed: int = 0
    members_added: int = 0
    members_deleted: int = 0
    rules_added: int = 0
    rules_deleted: int = 0
    chains_rewritten: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.sets_created
            or self.sets_destroyed
            or self.members_added
            or self.members_deleted
            or self.rules_added
            or self.rules_deleted
            or self.chains_rewritten
        )


class Programmer:
    def __init__(self, runner: Runner, on_log: Callable[[str], None] | None = None) -> None:
        self.runner = runner
        self.sets: dict[str, IpSet] = {}
        self.chains: dict[str, list[Rule]] = {}
        self.unknown_chains: set[str] = set()  # exist with content we did not write
        self.on_log = on_log or (lambda msg: log.info(msg))

    # -- startup ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Like weave-npc's resetIPTables + resetIPSets: flush our chains, flush and destroy weave-* sets.

        WEAVE-NPC-EGRESS is left alone (weave rewrites it only if it differs); it is rewritten in the
        same transaction as the first apply.
        """
        saved = self.runner.run(["iptables-save", "-t", "filter"])
        existing = {line[1:].split()[0] for line in saved.splitlines() if line.startswith(":WEAVE-NPC")}
        lines = ["*filter"]
        for chain in ALL_CHAINS:
            if chain == dp.EGRESS and chain in existing:
                self.unknown_chains.add(chain)
                continue
            lines.append(f":{chain} - [0:0]")  # declares or flushes
        lines.append("COMMIT")
        self.runner.run(["iptables-restore", "--noflush"], "\n".join(lines) + "\n")
        self.chains = {c: [] for c in ALL_CHAINS if c not in self.unknown_chains}
        names = [n for n in self.runner.run(["ipset", "list", "-n"]).split() if n.startswith(SET_PREFIX)]
        if names:
            script = "".join(f"flush {n}\n" for n in names) + "".join(f"destroy {n}\n" for n in names)
            self.runner.run(["ipset", "restore"], script)
        self.sets = {}

    # -- incremental apply ------------------------------------------------------------------------
    def apply(self, desired: Dataplane) -> Changes:
        changes = Changes()
        self._apply_sets(desired, changes)
        self._apply_rules(desired, changes)
        self._destroy_unused_sets(desired, changes)
        return changes

    def _apply_sets(self, desired: Dataplane, changes: Changes) -> None:
        creates: list[str] = []
        adds: list[str] = []
        list_adds: list[str] = []
        dels: list[str] = []
        for name, want in desired.sets.items():
            have = self.sets.get(name)
            if have is None:
                extra = " size 1024" if want.type == "list:set" else ""
                creates.append(f"create {name} {want.type}{extra} comment")
                self.on_log(f"creating ipset: {name} {want.type}")
                have = self.sets[name] = IpSet(name, want.type)
                changes.sets_created += 1
            for entry in list(have.members):
                if entry not in want.members or want.members[entry] != have.members[entry]:
                    dels.append(f"del {name} {entry}")
                    self.on_log(f"deleting entry {entry} from {name}")
                    del have.members[entry]
                    changes.members_deleted += 1
            for entry, comment in want.members.items():
                if entry not in have.members:
                    line = f'add {name} {entry} comment "{comment}"'
                    (list_adds if want.type == "list:set" else adds).append(line)
                    self.on_log(f"adding entry {entry} to {name} ({comment})")
                    have.members[entry] = comment
                    changes.members_added += 1
        script = creates + dels + adds + list_adds
        if script:
            self._restore_sets(script, changes)

    def _restore_sets(self, script: list[str], changes: Changes) -> None:
        try:
            self.runner.run(["ipset", "restore", "-exist"], "\n".join(script) + "\n")
        except CommandFailed:
            for line in script:  # find and report the failing lines, keep the rest
                try:
                    self.runner.run(["ipset", "restore", "-exist"], line + "\n")
                except CommandFailed as exc:
                    changes.errors.append(f"ipset [{line}] failed: {exc.stderr.strip()}")

    def _apply_rules(self, desired: Dataplane, changes: Changes) -> None:
        lines: list[str] = []
        declares: list[str] = []
        for chain, want in desired.chains.items():
            have = self.chains.get(chain)
            if have is None and chain not in self.unknown_chains:
                declares.append(f":{chain} - [0:0]")
                have = self.chains[chain] = []
            if chain in STATIC_CHAINS or chain in self.unknown_chains:
                if chain in self.unknown_chains or have != want:
                    lines.append(f"-F {chain}")
                    lines += [rule_line("-A", chain, r) for r in want]
                    self.chains[chain] = list(want)
                    self.unknown_chains.discard(chain)
                    changes.chains_rewritten.append(chain)
                continue
            assert have is not None
            for rule in [r for r in have if r not in want]:
                lines.append(rule_line("-D", chain, rule))
                self.on_log(f"deleting rule {list(rule)} from {chain!r} chain")
                have.remove(rule)
                changes.rules_deleted += 1
            for rule in [r for r in want if r not in have]:
                lines.append(rule_line("-A", chain, rule))
                self.on_log(f"adding rule {list(rule)} to {chain!r} chain")
                have.append(rule)
                changes.rules_added += 1
        if lines or declares:
            self._restore_rules(declares, lines, changes)

    def _restore_rules(self, declares: list[str], lines: list[str], changes: Changes) -> None:
        try:
            self.runner.run(
                ["iptables-restore", "--noflush"], "\n".join(["*filter", *declares, *lines, "COMMIT"]) + "\n"
            )
        except CommandFailed:
            if declares:
                self.runner.run(
                    ["iptables-restore", "--noflush"], "\n".join(["*filter", *declares, "COMMIT"]) + "\n"
                )
            for line in lines:  # one transaction each, so one bad rule does not block the others
                try:
                    self.runner.run(["iptables-restore", "--noflush"], f"*filter\n{line}\nCOMMIT\n")
                except CommandFailed as exc:
                    changes.errors.append(f"iptables [{line}] failed: {exc.stderr.strip()}")
                    self._forget(line)

    def _forget(self, line: str) -> None:
        """Keep our record true to the kernel when a rule could not be added."""
        op, chain = line.split()[:2]
        for rule in list(self.chains.get(chain, [])):
            if op == "-A" and rule_line("-A", chain, rule) == line:
                self.chains[chain].remove(rule)

    def _destroy_unused_sets(self, desired: Dataplane, changes: Changes) -> None:
        unused = [n for n in self.sets if n not in desired.sets]
        if not unused:
            return
        unused.sort(key=lambda n: self.sets[n].type != "list:set")  # list:sets reference the others
        script = [f"flush {n}" for n in unused] + [f"destroy {n}" for n in unused]
        for name in unused:
            self.on_log(f"destroying ipset: {name}")
            del self.sets[name]
            changes.sets_destroyed += 1
        self._restore_sets(script, changes)

    # -- teardown ---------------------------------------------------------------------------------
    def remove_all(self) -> None:
        """Flush and delete our chains and destroy our sets (tests; weave-npc itself never does this)."""
        saved = self.runner.run(["iptables-save", "-t", "filter"])
        existing = [c for c in ALL_CHAINS if f":{c} " in saved]
        if existing:
            script = ["*filter", *[f"-F {c}" for c in existing], *[f"-X {c}" for c in existing], "COMMIT"]
            self.runner.run(["iptables-restore", "--noflush"], "\n".join(script) + "\n", check=False)
        names = [n for n in self.runner.run(["ipset", "list", "-n"]).split() if n.startswith(SET_PREFIX)]
        if names:
            script_sets = "".join(f"flush {n}\n" for n in names) + "".join(f"destroy {n}\n" for n in names)
            self.runner.run(["ipset", "restore"], script_sets, check=False)
        self.sets, self.chains = {}, {}
