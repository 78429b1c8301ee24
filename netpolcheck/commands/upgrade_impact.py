"""`netpolcheck upgrade-impact --from weave-X --to weave-Y STATE|--kubeconfig K`: the cells an upgrade
changes, grouped by the documented deviation that explains each change, before anyone upgrades.

Exit status: 0 nothing changes, 1 at least one cell changes (a pipeline gates on it), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from netpolcheck.commands.cluster import add_source_arguments, state_from
from netpolcheck.errors import UsageError
from netpolcheck.model.upgrade import Impact, profile_named, upgrade_impact

EXIT_UNCHANGED = 0
EXIT_CHANGED = 1
FORMATS = ("table", "json")
TABLE_CELLS = 50


def render_table(impact: Impact, limit: int = TABLE_CELLS) -> str:
    """Plain text: one block per explaining deviation, up to `limit` changed cells each (0: all)."""
    changed = impact.changed
    lines = [
        f"{impact.before.name} -> {impact.after.name}: {len(changed)} of {impact.cells_compared} cell(s) "
        f"change ({sum(c.after for c in changed)} open, {sum(not c.after for c in changed)} close)"
    ]
    for group in impact.groups:
        lines.append("")
        if group.deviations:
            for deviation, how in group.deviations:
                lines.append(
                    f"{deviation.id} ({how} by the upgrade; applies {deviation.versions}): {deviation.reason}"
                )
                lines.append(f"  see {deviation.provenance}")
        else:
            lines.append("no documented deviation explains these changes")
        if group.policies:
            lines.append(f"  policies: {', '.join(group.policies)}")
        shown = group.cells if limit <= 0 else group.cells[:limit]
        for cell in shown:
            port = f"{cell.protocol}/{cell.port}" + (f" ({cell.port_name})" if cell.port_name else "")
            lines.append(f"  {cell.change} {cell.source} -> {cell.destination} {port}")
            lines.append(f"    before: {'allowed' if cell.before else 'denied'} ({cell.reason_before})")
            lines.append(f"    after:  {'allowed' if cell.after else 'denied'} ({cell.reason_after})")
        if len(shown) < len(group.cells):
            lines.append(
                f"  ... and {len(group.cells) - len(shown)} more cell(s) (all: --max-cells 0, --format json)"
            )
    for caution in impact.cautions:
        lines.append(f"caution: {caution}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise UsageError(f"--format: unknown format {args.format!r}; use one of {', '.join(FORMATS)}")
    before = profile_named(args.from_profile, "--from")
    after = profile_named(args.to_profile, "--to")
    state = state_from(args, "STATE")
    impact = upgrade_impact(state, before, after)
    if args.format == "json":
        sys.stdout.write(json.dumps(impact.as_dict(), indent=1) + "\n")
    else:
        sys.stdout.write(render_table(impact, args.max_cells))
    return EXIT_CHANGED if impact.changed else EXIT_UNCHANGED


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "upgrade-impact",
        help="the cells whose verdict a Weave upgrade changes, grouped by the deviation that explains them",
        description="Compare the expected matrix of a state (a file, or a live cluster with --kubeconfig) "
        "under two profiles (e.g. weave-2.0.5 and "
        "weave-2.1.3) and list every cell the upgrade opens or closes, grouped by the documented "
        "deviation that explains the change, with the deciding policies. Exit status: 0 nothing "
        "changes, 1 something changes, 2 usage error.",
    )
    add_source_arguments(
        parser, "STATE", "a STATE JSON file, Kubernetes YAML (a file, a directory of them, or - for stdin)"
    )
    parser.add_argument(
        "--from",
        dest="from_profile",
        required=True,
        metavar="PROFILE",
        help="today's profile: weave-X.Y.Z or spec",
    )
    parser.add_argument(
        "--to", dest="to_profile", required=True, metavar="PROFILE", help="the profile after the upgrade"
    )
    parser.add_argument("--format", default="table", metavar="table|json", help="table (default) or json")
    parser.add_argument(
        "--max-cells",
        type=int,
        default=TABLE_CELLS,
        metavar="N",
        help=f"table: at most N cells per group, 0 for all (default {TABLE_CELLS}; JSON lists all)",
    )
    parser.set_defaults(func=run)
