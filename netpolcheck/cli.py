"""The `netpolcheck` command: a thin dispatcher over subcommands owned by the subpackages.

Each subcommand module exposes `register(subparsers)` which adds its parser and sets
`func` (a callable taking the parsed namespace and returning an exit code).  Modules are
imported lazily so that, for example, `netpolcheck expect` never imports the hollow cluster.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from netpolcheck.errors import UsageError

# subcommand name -> module providing `register(subparsers)`
SUBCOMMANDS: dict[str, str] = {
    "expect": "netpolcheck.model.cli",
    "hollow": "netpolcheck.hollow.cli",
}

EXIT_USAGE = 2


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse with our error style: one line naming the command, exit 2, no usage dump.

    Subparsers inherit the class (argparse passes `type(self)` as their parser_class).
    """

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("netpolcheck").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"netpolcheck: error: {where}{message} (see `{self.prog} --help`)\n")


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="netpolcheck", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, module_name in SUBCOMMANDS.items():
        if wanted != name:
            # keep `--help` listing every command without importing them all
            subparsers.add_parser(name, help=f"see `netpolcheck {name} --help`")
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
