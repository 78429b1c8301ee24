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

from netpolcheck.errors import UsageError

# subcommand name -> module providing `register(subparsers)`
SUBCOMMANDS: dict[str, str] = {
    "expect": "netpolcheck.model.cli",
    "hollow": "netpolcheck.hollow.cli",
}

EXIT_USAGE = 2


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netpolcheck", description=__doc__.splitlines()[0])
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
    args = parser.parse_args(args_list)
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
