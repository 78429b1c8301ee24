"""Per wrong cell, what the cluster can say about it: did the destination's journal see the request,
and did the policy controller log a "blocked by Weave NPC" line for it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from netpolcheck.report.cells import CellKey
from netpolcheck.verdict.driver import Driver
from netpolcheck.verdict.expected import Target

ARRIVALS = {"syn", "accept", "datagram", "data"}


@dataclass(frozen=True)
class CellForensics:
    journal: (
        str  # "reached the destination (...)" / "never reached the destination" / "journal unavailable: ..."
    )
    blocked: tuple[str, ...]  # matching "blocked by Weave NPC" lines


def log_time(line: str) -> float | None:
    """Unix time (local clock) of a weave-npc log line `node: WARN: 2026/11/26 07:11:42.543012 ...`."""
    parts = line.split()
    for first, second in pairwise(parts):
        try:
            return datetime.strptime(f"{first} {second}", "%Y/%m/%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
    return None


def lines_since(lines: Iterable[str], since: float, slack: float = 1.0) -> list[str]:
    """Lines stamped at or after `since` (minus `slack` s for clock rounding); unstamped lines are kept."""
    return [line for line in lines if (t := log_time(line)) is None or t >= since - slack]


def journal_verdict(records: Iterable[Mapping[str, Any]], target: Target) -> str:
    """Whether the destination's serve journal saw a request from the source on that port."""
    proto = target.protocol.lower()
    seen = [
        r
        for r in records
        if r.get("event") in ARRIVALS
        and str(r.get("peer", "")).partition(":")[0] == target.source_ip
        and int(r.get("port", -1)) == target.port
        and str(r.get("proto", proto)).lower() == proto
    ]
    if not seen:
        return "never reached the destination (no journal record from the source)"
    events = sorted({str(r["event"]) for r in seen})
    return f"reached the destination ({len(seen)} journal record(s): {', '.join(events)})"


def blocked_for(lines: Iterable[str], target: Target) -> tuple[str, ...]:
    """weave-npc's lines `TCP connection from SRC:SPORT to DST:DPORT blocked by Weave NPC.` for this cell."""
    head = f"{target.protocol} connection from {target.source_ip}:"
    to = f" to {target.ip}:{target.port} "
    return tuple(line for line in lines if "blocked by Weave NPC" in line and head in line and to in line)


def gather(
    driver: Driver, keys: Iterable[CellKey], targets: Mapping[CellKey, Target], since: float, limit: int = 12
) -> dict[CellKey, CellForensics]:
    """Forensics of the first `limit` wrong cells (each needs a journal read of the destination)."""
    try:
        lines = driver.blocked_lines(since)
    except Exception as exc:  # the failure report must still be written
        lines = [f"(blocked lines unavailable: {exc})"]
    journals: dict[str, list[dict[str, Any]] | str] = {}
    found = {}
    for key in sorted(keys)[:limit]:
        target = targets[key]
        if target.destination not in journals:
            namespace, _, pod = target.destination.partition("/")
            try:
                journals[target.destination] = driver.journal(namespace, pod, since)
            except Exception as exc:
                journals[target.destination] = f"journal unavailable: {exc}"
        records = journals[target.destination]
        verdict = records if isinstance(records, str) else journal_verdict(records, target)
        found[key] = CellForensics(verdict, blocked_for(lines, target))
    return found
