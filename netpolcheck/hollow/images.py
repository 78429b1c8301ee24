"""The image table: which local program a container of a given image runs (docs/hollow.md lists it).

| image                               | runs                                                             |
|-------------------------------------|------------------------------------------------------------------|
| `*/netpolcheck-probe:*` (or `*probe`)| its command if given, else `python -m netpolcheck.probe ARGS`   |
| `*/weave-npc:TAG`                   | the `--npc` choice: `none` idles; `reference` runs               |
|                                     | `python -m netpolcheck.npc ARGS`; a PATH runs that binary ARGS;  |
|                                     | a TAG given `--weave-npc-binary TAG=PATH` runs PATH ARGS         |
| `*/weave-kube:TAG`, init container  | exits 0 (Weave's init.sh: the fabric already set br_netfilter)   |
| `*/weave-kube:TAG`                  | `python -m netpolcheck.hollow.weave_router --version TAG`        |
| anything else                       | its command + args when the command exists locally, else idles   |

`python`/`python3` as a command means this interpreter (the project's venv).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from typing import Any

NPC_NONE = "none"
NPC_REFERENCE = "reference"
WEAVE_NONE = "none"  # `--weave-version none`: no built-in weave-net DaemonSet; apply manifests/weave/
IDLE_ARGV = ["sleep", "infinity"]
PROBE_REPOS = ("netpolcheck-probe", "probe")

# weave-npc image tag -> program, from `hollow up --weave-npc-binary TAG=PATH` (set once by the daemon
# at start-up, before the kubelet runs anything); a tag listed here wins over the `--npc` choice.
NPC_BINARIES: dict[str, str] = {}


def parse_npc_binary(value: str) -> tuple[str, str]:
    """('2.8.1', '/abs/path') from '2.8.1=PATH'; ValueError naming what is wrong."""
    tag, sep, path = value.partition("=")
    if not sep or not tag.strip() or not path.strip():
        raise ValueError(f"{value!r} is not VERSION=PATH")
    return tag.strip().lstrip("v"), path.strip()


@dataclass(frozen=True)
class Program:
    """What to run for one container, and which table row chose it."""

    argv: list[str]
    role: str  # probe | weave-npc | weave-router | weave-init | command | idle


def split_image(image: str) -> tuple[str, str]:
    """('weave-npc', '2.8.1') from 'weaveworks/weave-npc:2.8.1'; tag 'latest' when absent."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    repo, _, tag = last.partition(":")
    return repo, tag or "latest"


def _local_command(argv: list[str]) -> list[str] | None:
    if not argv:
        return None
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    if shutil.which(argv[0]) is None:
        return None
    return argv


def resolve(container: dict[str, Any], npc: str, init: bool = False) -> Program:
    """The program for `container` (a pod spec container) under the `--npc` choice `npc`."""
    repo, tag = split_image(str(container.get("image") or ""))
    command = [str(x) for x in container.get("command") or []]
    args = [str(x) for x in container.get("args") or []]
    if repo in PROBE_REPOS:
        local = _local_command(command + args) if command else None
        return Program(local or [sys.executable, "-m", "netpolcheck.probe", *args], "probe")
    if repo == "weave-npc":
        if tag.lstrip("v") in NPC_BINARIES:
            return Program([NPC_BINARIES[tag.lstrip("v")], *args], "weave-npc")
        if npc == NPC_NONE:
            return Program(list(IDLE_ARGV), "weave-npc")
        if npc == NPC_REFERENCE:
            return Program([sys.executable, "-m", "netpolcheck.npc", *args], "weave-npc")
        return Program([npc, *args], "weave-npc")
    if repo == "weave-kube":
        if init:
            return Program(["true"], "weave-init")
        return Program(
            [sys.executable, "-m", "netpolcheck.hollow.weave_router", "--version", tag], "weave-router"
        )
    local = _local_command(command + args) if command else None
    if local is not None:
        return Program(local, "command")
    return Program(list(IDLE_ARGV), "idle")
