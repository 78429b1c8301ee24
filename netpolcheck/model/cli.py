"""`netpolcheck expect STATE.json [--profile NAME] [--format json|table] [--explain FROM TO [--port P]
[--protocol PROTO]]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netpolcheck.errors import UsageError
from netpolcheck.model.objects import PROTOCOLS, Probe
from netpolcheck.model.profiles import PROFILES, Profile, get_profile
from netpolcheck.model.state import State

FORMATS = ("json", "table")
EXIT_USAGE = 2


def read_state_file(path: str) -> Any:
    """Read and decode a STATE file; any problem is one UsageError line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def explain_probe(state: State, port: str | None, protocol: str | None) -> Probe:
    """The probe `--explain` looks at: `--port`/`--protocol`, else the state's first matching probe."""
    if protocol is not None and protocol not in PROTOCOLS:
        raise UsageError(f"--protocol: unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if port is None:
        for probe in state.probes:
            if protocol is None or probe.protocol == protocol:
                return probe
        return Probe(80, protocol or "TCP")
    if port.isdigit():
        number = int(port)
        if not 1 <= number <= 65535:
            raise UsageError(f"--port: {port}: port out of range 1-65535")
        return Probe(number, protocol or "TCP")
    if not port or port.startswith("-"):
        raise UsageError(f"--port: {port!r}: not a port number or name")
    return Probe(port, protocol or "TCP")


def print_explanation(state: State, profile: Profile, cell: Sequence[str], probe: Probe) -> None:
    from netpolcheck.model.explain import explain

    known = {ep.key for ep in state.endpoints}
    for key in cell:
        if key not in known:
            raise UsageError(f"--explain: {key}: no such pod (namespace/name) or external in the state")
    if cell[0] == cell[1]:
        raise UsageError(f"--explain: {cell[0]} -> {cell[1]}: a cell needs two different endpoints")
    sys.stdout.write(explain(state, profile, cell[0], cell[1], probe).text() + "\n")


def print_tables(state: State, profile: Profile) -> None:
    from netpolcheck.model.results import expected_results
    from netpolcheck.report.truthtable import document_tables, render_plain, render_rich

    document = expected_results(state, profile)
    tables = document_tables(document)
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        for table in tables:
            console.print(render_rich(table))
    else:
        sys.stdout.write("\n".join(render_plain(table) for table in tables))
    for caution in document.get("cautions", []):
        sys.stdout.write(f"caution: {caution}\n")


def run(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise UsageError(f"--format: unknown format {args.format!r}; use one of {', '.join(FORMATS)}")
    if args.explain is None and (args.port is not None or args.protocol is not None):
        raise UsageError("--port and --protocol choose the cell of --explain FROM TO; give --explain too")
    profile = get_profile(args.profile)
    from netpolcheck.commands.inputs import load_state  # STATE JSON or Kubernetes YAML (file, dir, -)

    state = load_state(args.state)
    if args.explain is not None:
        print_explanation(state, profile, args.explain, explain_probe(state, args.port, args.protocol))
    elif args.format == "json":
        from netpolcheck.model.results import write_expected_json

        try:
            write_expected_json(state, profile, sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            # the reader stopped early (`| head`): no traceback; stdout is closed quietly at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
    else:
        print_tables(state, profile)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "expect",
        help="compute the expected reachability matrix of a STATE file",
        description="Compute, for every ordered pair of endpoints and every probe, whether the connection "
        "is expected to be allowed, and why.",
    )
    parser.add_argument("state", metavar="STATE.json", help="namespaces, pods, policies, probes, externals")
    parser.add_argument(
        "--profile", default="spec", help=f"implementation profile: {', '.join(PROFILES)} (default: spec)"
    )
    parser.add_argument(
        "--format",
        default="json",
        metavar="json|table",
        help="json (default) or a truth table per port and protocol",
    )
    parser.add_argument(
        "--explain",
        nargs=2,
        metavar=("FROM", "TO"),
        help="explain one cell instead (endpoints as namespace/name, or an external's name)",
    )
    parser.add_argument(
        "--port", help="with --explain: port number or name (default: the state's first probe)"
    )
    parser.add_argument("--protocol", help="with --explain: TCP, UDP or SCTP (default: TCP)")
    parser.set_defaults(func=run)
