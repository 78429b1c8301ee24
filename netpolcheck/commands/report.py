"""`netpolcheck report RESULTS.json [--html OUT.html] [--markdown OUT.md]`: check a certification
report against its schema and render it for people. Exit status: 0 the run passed, 1 it failed (the
files are still written), 2 usage error (nothing written)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from netpolcheck.commands.inputs import read_json_file
from netpolcheck.errors import UsageError
from netpolcheck.model.apivalidation import printable
from netpolcheck.report.certification_html import render_html
from netpolcheck.report.certification_markdown import render_markdown
from netpolcheck.report.certification_schema import validate_report

EXIT_PASSED = 0
EXIT_FAILED = 1


def write_all(outputs: dict[Path, str]) -> None:
    """Write every output or none: each to a private temporary file first, then renamed into place."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in outputs.items():
            if path.is_dir():
                raise UsageError(f"{printable(str(path))}: is a directory")
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            staged.append((temporary, path))
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
        for temporary, path in staged:
            temporary.replace(path)
        staged.clear()
    except OSError as exc:
        where = printable(str(exc.filename or "output"))
        raise UsageError(f"cannot write {where}: {printable(exc.strerror or str(exc))}") from None
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    if not args.html and not args.markdown:
        raise UsageError("report: give --html OUT.html and/or --markdown OUT.md")
    document = read_json_file(args.results)
    validate_report(document, args.results)
    outputs: dict[Path, str] = {}
    if args.html:
        outputs[Path(args.html)] = render_html(document)
    if args.markdown:
        outputs[Path(args.markdown)] = render_markdown(document)
    write_all(outputs)
    return EXIT_FAILED if document["result"] == "fail" else EXIT_PASSED


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="render a certification report (JSON) as self-contained HTML and/or Markdown",
        description="Check RESULTS.json against the certification report schema (version 1) and render "
        "it: summary first (features, deviations), then each failure with truth tables and evidence, "
        "then convergence times. Exit status: 0 the run passed, 1 it failed, 2 usage error.",
    )
    parser.add_argument("results", metavar="RESULTS.json", help="the suite's certification report")
    parser.add_argument("--html", metavar="OUT.html", help="write a self-contained HTML page here")
    parser.add_argument("--markdown", metavar="OUT.md", help="write Markdown here")
    parser.set_defaults(func=run)
