"""The image table: which local program a container of a given image runs (docs/hollow.md lists it).

| image                                | runs                                                             |
|--------------------------------------|------------------------------------------------------------------|
| `*/netpolcheck-probe:*` (or `*probe`)| its command if given, else `python -m netpolcheck.probe ARGS`    |
| `*/weave-npc:TAG`                    | the `--npc` choice: `none` idles; `reference` runs               |
|                                      | `python -m netpolcheck.npc ARGS`; a PATH runs that binary ARGS;  |
|                                      | a TAG given `--weave-npc-binary TAG=PATH` runs PATH ARGS         |
| `*/weave-kube:TAG`, init container   | exits 0 (Weave's init.sh: the fabric already set br_netfilter)   |
| `*/weave-kube:TAG`                   | `python -m netpolcheck.hollow.weave_router --version TAG`        |
| `*/http-echo:*`                      | `python -m netpolcheck.hollow.images.http_echo ARGS` (stand-in)  |
| `busybox:*`                          | command + args (default `sh`) with the machine's tools, and the  |
|                                      | `wget` and `nc` stand-ins first on PATH                          |
| anything else                        | its command + args when the command exists locally, else nothing:|
|                                      | the container waits in ErrImagePull / ImagePullBackOff           |

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
# pause-like: exits on SIGTERM (a PID 1 without a handler would ignore it and wait for SIGKILL)
IDLE_ARGV = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
PROBE_REPOS = ("netpolcheck-probe", "probe")
BUSYBOX_DEFAULT = ["sh"]  # the busybox image's CMD
BUSYBOX_STANDINS = ("wget", "nc")  # applets the stand-ins provide (netpolcheck/hollow/images/busybox.py)

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
    """What to run for one container, and which table row chose it.

    role: probe | weave-npc | weave-router | weave-init | http-echo | busybox | command | idle |
    unavailable (then `argv` is empty and `error` says why: the container waits as ErrImagePull).
    """

    argv: list[str]
    role: str
    error: str = ""


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
    image = str(container.get("image") or "")
    repo, tag = split_image(image)
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
    if repo == "http-echo":
        return Program([sys.executable, "-m", "netpolcheck.hollow.images.http_echo", *args], "http-echo")
    if repo == "busybox":
        argv = command + args if command else BUSYBOX_DEFAULT + args
        return Program(argv, "busybox")  # found on PATH by the container (stand-ins first)
    local = _local_command(command + args) if command else None
    if local is not None:
        return Program(local, "command")
    why = f"command {command[0]!r} is not on this machine" if command else "no command given"
    return Program(
        [], "unavailable", f'hollow cannot run image "{image}": {why} (docs/hollow.md, image table)'
    )
