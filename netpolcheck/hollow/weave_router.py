"""The part of Weave's router the policy controller depends on: its FORWARD and INPUT hooks.

`python -m netpolcheck.hollow.weave_router --version V` runs in a node's network namespace (the
`weave` container of the weave-net DaemonSet), installs the hooks Weave's router installs for
version V (docs/weave-facts.md#router-hooks), prints READY and idles until SIGTERM.

- before 2.2: FORWARD rules appended (kube-proxy's rules can come first: issue #3209);
- from 2.2: the FORWARD block inserted at the top; a missing or misplaced rule re-inserted at its
  position, one at a time, the others left in place;
- from 2.4: the egress hooks `-i weave -j WEAVE-NPC-EGRESS` in FORWARD (first) and INPUT (appended);
- from 2.7: rules re-created when flushed (checked every few seconds).
Like Weave's router it leaves its rules in place when it exits (an upgrade replaces them); it never
removes a rule it did not add. The chains it jumps to are created empty if missing (weave-npc fills them).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading

Rule = list[str]

RECHECK_SECONDS = 3.0


def parse_version(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?", text)
    if not match:
        raise ValueError(f"not a Weave version: {text!r}")
    return int(match[1]), int(match[2]), int(match[3] or 0)


def forward_rules(version: tuple[int, int, int]) -> list[Rule]:
    """FORWARD hooks in the order Weave's router has them."""
    rules: list[Rule] = []
    if version >= (2, 4, 0):
        rules.append(["-i", "weave", "-j", "WEAVE-NPC-EGRESS"])
    rules += [
        ["-o", "weave", "-j", "WEAVE-NPC"],
        ["-o", "weave", "-m", "state", "--state", "NEW", "-j", "NFLOG", "--nflog-group", "86"],
        ["-o", "weave", "-j", "DROP"],
        ["-i", "weave", "!", "-o", "weave", "-j", "ACCEPT"],
        ["-o", "weave", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
    ]
    return rules


def input_rules(version: tuple[int, int, int]) -> list[Rule]:
    return [["-i", "weave", "-j", "WEAVE-NPC-EGRESS"]] if version >= (2, 4, 0) else []


def chains(version: tuple[int, int, int]) -> list[str]:
    return ["WEAVE-NPC", "WEAVE-NPC-EGRESS"] if version >= (2, 4, 0) else ["WEAVE-NPC"]


def iptables(*args: str, check: bool = True) -> bool:
    proc = subprocess.run(["iptables", "-w", "5", "-t", "filter", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"iptables {' '.join(args)}: {proc.stderr.strip()}")
    return proc.returncode == 0


def has_rule(chain: str, rule: Rule) -> bool:
    return iptables("-C", chain, *rule, check=False)


def ensure_chains(names: list[str]) -> None:
    """Create each chain that is missing. Another process (weave-npc, or the router being replaced) may
    create it between the look and the `-N`: "Chain already exists" then means done, not failure."""
    for name in names:
        if iptables("-n", "-L", name, check=False):
            continue
        proc = subprocess.run(
            ["iptables", "-w", "5", "-t", "filter", "-N", name], capture_output=True, text=True
        )
        if proc.returncode != 0 and not iptables("-n", "-L", name, check=False):
            raise RuntimeError(f"iptables -N {name}: {proc.stderr.strip()}")


def ensure_appended(chain: str, rules: list[Rule]) -> bool:
    """Append each missing rule (AppendUnique); True when something was added."""
    changed = False
    for rule in rules:
        if not has_rule(chain, rule):
            iptables("-A", chain, *rule)
            changed = True
    return changed


def rule_specs(chain: str) -> list[str]:
    out = subprocess.run(
        ["iptables", "-w", "5", "-t", "filter", "-S", chain], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line.startswith("-A ")]


def _canonical(chain: str, rule: Rule) -> str:
    """How `iptables -S` prints `rule` (to compare positions); `! -o` is printed as `! -o`."""
    return " ".join(["-A", chain, *rule])


def ensure_at_top(chain: str, rules: list[Rule]) -> bool:
    """Keep `rules` at positions 1..n of `chain`, one rule at a time and never with one missing.

    A rule not at its position is inserted there; only once the whole block is in place are stray
    copies further down deleted. Weave's ensureRulesAtTop also works rule by rule (delete, then insert
    at its position); this stand-in inserts before it deletes, so no packet ever passes the block
    while a rule is being repaired (docs/hollow-internals.md).
    """
    wanted = [_canonical(chain, rule) for rule in rules]
    specs = rule_specs(chain)
    if len(specs) >= len(rules) and all(_same(p, w) for p, w in zip(specs, wanted, strict=False)):
        return False
    for position, (rule, spec) in enumerate(zip(rules, wanted, strict=True), start=1):
        if len(specs) >= position and _same(specs[position - 1], spec):
            continue
        iptables("-I", chain, str(position), *rule)
        specs.insert(position - 1, spec)
    # from the bottom, so earlier positions stay valid; each checked again right before its delete
    for index in range(len(specs) - 1, len(rules) - 1, -1):
        if any(_same(specs[index], w) for w in wanted):
            current = rule_specs(chain)
            if index < len(current) and _same(current[index], specs[index]):
                iptables("-D", chain, str(index + 1))
    return True


def _same(printed: str, wanted: str) -> bool:
    # iptables -S may print `-m state --state NEW` as is; normalise whitespace only
    return printed.split() == wanted.split()


def install(version: tuple[int, int, int]) -> bool:
    """Install (or repair) the hooks of `version`; True when something changed."""
    ensure_chains(chains(version))
    if version >= (2, 2, 0):
        changed = ensure_at_top("FORWARD", forward_rules(version))
    else:
        changed = ensure_appended("FORWARD", forward_rules(version))
    return ensure_appended("INPUT", input_rules(version)) or changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="weave_router", description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="Weave version whose hooks to install, e.g. 2.8.1")
    args = parser.parse_args(argv)
    try:
        version = parse_version(args.version)
    except ValueError as exc:
        print(f"weave_router: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    install(version)
    print(f"READY weave router hooks of {'.'.join(map(str, version))} installed", flush=True)
    recheck = version >= (2, 7, 0)
    while not stop.wait(RECHECK_SECONDS if recheck else None):
        try:
            if install(version):
                print("re-created the router hooks (they had been removed)", flush=True)
        except (RuntimeError, subprocess.CalledProcessError) as exc:  # Weave logs and tries again
            print(f"checking the router hooks: {exc}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
