"""Network namespaces for the controller tests: every name starts with `npcref-`; all removed after use."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

PREFIX = "npcref-"
_counter = itertools.count()

# what weave's router (2.2+/2.4+) installs around WEAVE-NPC, as in the observed runs' README
ROUTER_HOOKS_2_8_1 = """*filter
:WEAVE-NPC - [0:0]
:WEAVE-NPC-EGRESS - [0:0]
-A INPUT -i weave -j WEAVE-NPC-EGRESS
-A FORWARD -i weave -j WEAVE-NPC-EGRESS
-A FORWARD -o weave -j WEAVE-NPC
-A FORWARD -o weave -m state --state NEW -j NFLOG --nflog-group 86
-A FORWARD -o weave -j DROP
-A FORWARD -i weave ! -o weave -j ACCEPT
-A FORWARD -o weave -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"""


def run(*argv: str, netns: str | None = None, stdin: str = "") -> str:
    full = list(argv) if netns is None else ["ip", "netns", "exec", netns, *argv]
    proc = subprocess.run(full, input=stdin, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(full)}: {proc.stderr.strip()}")
    return proc.stdout


def unique_name(tag: str) -> str:
    return f"{PREFIX}{os.getpid()}-{next(_counter)}-{tag}"


@contextmanager
def netns(tag: str) -> Iterator[str]:
    name = unique_name(tag)
    run("ip", "netns", "add", name)
    try:
        run("ip", "link", "set", "lo", "up", netns=name)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def install_router_hooks(name: str) -> None:
    run("iptables-restore", "--noflush", netns=name, stdin=ROUTER_HOOKS_2_8_1)
