"""The JSON Schema of the certification report (shipped as certification.schema.json) and the check
of a document against it; a failing document is one `UsageError` line naming where it is wrong."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from netpolcheck.errors import UsageError

SCHEMA_FILE = "certification.schema.json"


@cache
def load_schema() -> dict[str, Any]:
    """The schema, read from the package's own data."""
    loaded: dict[str, Any] = json.loads(files("netpolcheck.report").joinpath(SCHEMA_FILE).read_text("utf-8"))
    return loaded


def schema_errors(document: Any) -> list[str]:
    """Every way `document` breaks the schema, as `at PATH: message` lines (empty: valid)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    found = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"at {'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in found]


def _escaped(text: str, limit: int = 300) -> str:
    """One printable line: control and non-ASCII characters from the document shown escaped."""
    line = text.encode("unicode_escape").decode("ascii")
    return line if len(line) <= limit else line[:limit] + "..."


def validate_report(document: Any, where: str = "report") -> None:
    errors = schema_errors(document)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UsageError(
            f"{_escaped(where)}: not a certification report version 1: {_escaped(errors[0])}{more}"
        )
