"""The `netpolcheck` command: one front end; each subcommand is a module of `netpolcheck/commands`.

Each subcommand module exposes `register(subparsers)` which adds its parser and sets
`func` (a callable taking the parsed namespace and returning an exit code).  Modules are
imported lazily so that, for example, `netpolcheck expect` never imports the hollow cluster.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn

from netpolcheck.errors import UsageError

# subcommand name -> (module providing `register(subparsers)`, what the command is for)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "expect": (
        "netpolcheck.commands.expect",
        "compute what a cluster state should allow: the expected reachability matrix of a STATE "
        "file under the Kubernetes spec or a Weave Net version's profile, as JSON, truth tables, "
        "or the story of one cell",
    ),
    "upgrade-impact": (
        "netpolcheck.commands.upgrade_impact",
        "the cells whose verdict a Weave upgrade changes, grouped by the deviation that explains "
        "each change; exit 1 when something changes",
    ),
    "audit": (
        "netpolcheck.commands.audit",
        "probe a live cluster's own workloads, from ephemeral containers in their pods, against what "
        "its NetworkPolicies should allow; exit 1 when a cell is wrong",
    ),
    "report": (
        "netpolcheck.commands.report",
        "render a certification report (JSON) as self-contained HTML or Markdown",
    ),
    "hollow": (
        "netpolcheck.commands.hollow",
        "start, inspect and remove the embedded cluster (network namespaces, a real HTTPS API "
        "server, Weave's dataplane; root, no Docker)",
    ),
}

DESCRIPTION = """\
netpolcheck proves how a Kubernetes cluster running Weave Net enforces NetworkPolicy.
This command computes what a cluster state should allow and runs the embedded cluster;
the conformance suite itself runs through pytest (tox)."""

EPILOG = """\
other entry points:
  python -m netpolcheck.probe   the probe agent inside probe pods (serve, probe, hold)
  python -m netpolcheck.npc     the reference Weave-style policy controller for one node
  tox -e lint,unit,netns        the project's tests (netns needs root)

Run `netpolcheck COMMAND --help` for a command's options. Design and contracts: docs/design.md.
"""

EXIT_USAGE = 2


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default (unless its help already says it or there is none to show);
    descriptions and epilogs written with line breaks are printed as written, others are wrapped."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or action.default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse with our error style: one line naming the command, exit 2, no usage dump.

    Subparsers inherit the class (argparse passes `type(self)` as their parser_class), and with it
    the help formatter that shows defaults.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("netpolcheck").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"netpolcheck: error: {where}{message} (see `{self.prog} --help`)\n")


def package_version() -> str:
    try:
        return version("netpolcheck")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed; run `pip install -e .`)"


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="netpolcheck", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument(
        "--version", action="version", version=f"netpolcheck {package_version()}", help="print the version"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    subparsers.required = True
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, purpose) in SUBCOMMANDS.items():
        if wanted != name:
            # keep `--help` listing every command without importing them all
            subparsers.add_parser(name, help=purpose)
            continue
        module = importlib.import_module(module_name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args, extras = parser.parse_known_args(args_list)
    if extras:
        # blame the subcommand that was given the extra words, as its own parser would
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        subparsers.choices[args.command].error(f"unrecognized arguments: {' '.join(extras)}")
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"netpolcheck: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("netpolcheck: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
