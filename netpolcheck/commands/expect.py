"""`netpolcheck expect STATE.json|--kubeconfig K [--profile NAME] [--format json|table] [--explain FROM TO
[--port P] [--protocol PROTO]]`."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from netpolcheck.commands.cluster import add_source_arguments, state_from
from netpolcheck.errors import UsageError
from netpolcheck.model.apivalidation import printable, quote
from netpolcheck.model.objects import PROTOCOLS, Probe
from netpolcheck.model.profiles import PROFILES, Profile, get_profile
from netpolcheck.model.state import State

FORMATS = ("json", "table")
STATE_METAVAR = "STATE.json"
EXIT_USAGE = 2


def explain_probe(state: State, port: str | None, protocol: str | None) -> Probe:
    """The probe `--explain` looks at: `--port`/`--protocol`, else the state's first matching probe."""
    if protocol is not None and protocol not in PROTOCOLS:
        raise UsageError(f"--protocol: unknown protocol {quote(protocol)}; use one of {', '.join(PROTOCOLS)}")
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
        raise UsageError(f"--port: {quote(port)}: not a port number or name")
    return Probe(port, protocol or "TCP")


def print_explanation(state: State, profile: Profile, cell: Sequence[str], probe: Probe) -> None:
    from netpolcheck.model.explain import explain

    known = {ep.key for ep in state.endpoints}
    for key in cell:
        if key not in known:
            raise UsageError(
                f"--explain: {printable(key)}: no such pod (namespace/name) or external in the state"
            )
    if cell[0] == cell[1]:
        raise UsageError(f"--explain: {printable(cell[0])}: a cell needs two different endpoints")
    sys.stdout.write(explain(state, profile, cell[0], cell[1], probe).text() + "\n")


TABLE_LIMIT = 10_000  # endpoints; the table is streamed, but past this no one could read it
RICH_LIMIT = 40  # endpoints; a bigger table is streamed as plain text even on a terminal


def print_tables(state: State, profile: Profile) -> None:
    """One truth table per probe, streamed row by row (rich colours for a small table on a terminal)."""
    from netpolcheck.model.caveats import unpredictable
    from netpolcheck.model.tables import TableBuilder
    from netpolcheck.report.truthtable import TruthTable, render_rich, stream_plain

    out = sys.stdout
    rich = out.isatty() and len(state.endpoints) <= RICH_LIMIT
    for table in TableBuilder(state, profile).tables():
        if rich:
            from rich.console import Console

            rows = list(table.rows())
            marks = {(r, c): m for r, row in rows for c, m in zip(table.columns, row, strict=True)}
            Console().print(
                render_rich(TruthTable("expected", table.title, table.columns, table.columns, marks))
            )
            out.write("\n".join(table.legend()) + "\n")
        else:
            for line in stream_plain(table.title, table.columns, table.rows(), _Later(table.legend)):
                out.write(line)
    for dev, why in unpredictable(state, profile):
        out.write(f"caution: {dev.id} ({why}): {dev.reason}\n")


class _Later:
    """An iterable that calls `make` only when iterated: the legend is known after the rows."""

    def __init__(self, make: Callable[[], list[str]]) -> None:
        self.make = make

    def __iter__(self) -> Iterator[str]:
        return iter(self.make())


def _quiet_broken_pipe() -> int:
    """The reader stopped early (`| head`): no traceback; stdout is closed quietly at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1


def run(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise UsageError(f"--format: unknown format {quote(args.format)}; use one of {', '.join(FORMATS)}")
    if args.explain is None and (args.port is not None or args.protocol is not None):
        raise UsageError("--port and --protocol choose the cell of --explain FROM TO; give --explain too")
    profile = get_profile(args.profile)
    state = state_from(args, STATE_METAVAR)
    if isinstance(sys.stdout, io.TextIOWrapper):
        # a terminal or pipe that is not UTF-8 (PYTHONIOENCODING=ascii, LANG=C): escape, never crash
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        if args.explain is not None:
            print_explanation(state, profile, args.explain, explain_probe(state, args.port, args.protocol))
        elif args.format == "json":
            from netpolcheck.model.results import expected_json_chunks

            for chunk in expected_json_chunks(state, profile):
                sys.stdout.write(chunk)
        else:
            _check_table_size(state)
            print_tables(state, profile)
        sys.stdout.flush()
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except MemoryError:
        cells = len(state.endpoints) ** 2 * len(state.probes)
        raise UsageError(
            f"not enough memory for the matrix of {len(state.endpoints):,} endpoints and "
            f"{len(state.probes)} probes ({cells:,} cells)"
        ) from None
    return 0


def _check_table_size(state: State) -> None:
    """Refuse a table nobody could read before computing it (10,000 endpoints print about 1.4 GB)."""
    if len(state.endpoints) > TABLE_LIMIT:
        raise UsageError(
            f"--format table: {len(state.endpoints):,} endpoints make a table of "
            f"{len(state.endpoints) ** 2:,} cells per probe, more than the {TABLE_LIMIT:,} x "
            f"{TABLE_LIMIT:,} a table is printed for; use --format json (streamed) or --explain FROM TO"
        )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "expect",
        help="compute the expected reachability matrix of a STATE file or a live cluster",
        description="Compute, for every ordered pair of endpoints and every probe, whether the connection "
        "is expected to be allowed, and why: for a STATE file, Kubernetes YAML, or a live cluster "
        "(--kubeconfig, read-only).",
    )
    add_source_arguments(
        parser,
        STATE_METAVAR,
        "namespaces, pods, policies, probes, externals (a STATE JSON file), or Kubernetes YAML (a file, "
        "a directory of them, or - for stdin)",
    )
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
