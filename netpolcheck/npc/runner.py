"""Runs iptables/ipset commands, in the current network namespace or a named one, and records them.

The record lets tests prove that a change issued only the commands it needed.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field


class CommandFailed(RuntimeError):
    def __init__(self, argv: list[str], stdin: str, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} failed: {stderr.strip()}")
        self.argv, self.stdin, self.stderr = argv, stdin, stderr


@dataclass
class Issued:
    argv: list[str]
    stdin: str


@dataclass
class Runner:
    netns: str | None = None  # a name under /run/netns; None = the namespace we run in
    issued: list[Issued] = field(default_factory=list)

    def run(self, argv: list[str], stdin: str = "", check: bool = True) -> str:
        full = argv if self.netns is None else ["nsenter", f"--net=/run/netns/{self.netns}", "--", *argv]
        self.issued.append(Issued(argv, stdin))
        proc = subprocess.run(full, input=stdin, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise CommandFailed(argv, stdin, proc.stderr)
        return proc.stdout
