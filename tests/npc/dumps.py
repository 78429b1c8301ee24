"""Parse `iptables-save -t filter` and `ipset list` output into comparable values.

Normalised away, as the task allows: packet counters, ipset headers (initval, sizes, references) and
member order inside a set (hash order).
"""

from __future__ import annotations

import re

SetDump = dict[str, tuple[str, dict[str, str]]]  # name -> (type, {member: comment})


def npc_rules(save: str) -> dict[str, list[str]]:
    """WEAVE-NPC* chains of an iptables-save dump: chain -> its `-A` lines, in order."""
    chains: dict[str, list[str]] = {}
    for line in save.splitlines():
        if line.startswith(":WEAVE-NPC"):
            chains.setdefault(line[1:].split()[0], [])
        elif line.startswith("-A WEAVE-NPC"):
            chain = line.split()[1]
            chains.setdefault(chain, []).append(re.sub(r"^\[\d+:\d+\] ", "", line))
    return chains


def ipsets(listing: str) -> SetDump:
    sets: SetDump = {}
    name = kind = ""
    in_members = False
    for line in listing.splitlines():
        if line.startswith("Name: "):
            name, in_members = line[6:], False
        elif line.startswith("Type: "):
            kind = line[6:]
            sets[name] = (kind, {})
        elif line.startswith("Members:"):
            in_members = True
        elif in_members and line.strip():
            member, _, comment = line.partition(" comment ")
            sets[name][1][member] = comment.strip('"')
    return sets
