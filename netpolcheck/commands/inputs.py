"""Reading what users hand in: a STATE JSON file, or Kubernetes YAML (files, a directory, `-` for
stdin), turned into a validated model `State`. Any problem is one `UsageError` line.

`*.yaml` and `*.yml` files and `-` (stdin) are YAML (JSON is YAML too, read more slowly); every other
path, `/dev/stdin` included, goes through the strict JSON reader (no NaN, bounded nesting and
number size), as before YAML was accepted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from netpolcheck.errors import UsageError
from netpolcheck.model.apivalidation import printable
from netpolcheck.model.state import State, parse_state

YAML_SUFFIXES = (".yaml", ".yml")
MANIFEST_SUFFIXES = (*YAML_SUFFIXES, ".json")


def _read_text(path: str) -> str:
    """A file's text, decoded as UTF-8 as a whole (so a bad byte is named by its offset in the file)."""
    shown = printable(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read: {printable(exc.strerror or str(exc))}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{shown}: not UTF-8 text (byte {exc.start})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json_file(path: str) -> Any:
    """A JSON file's decoded content; any problem is one UsageError line.

    JSON is read strictly: no NaN or Infinity, no number of more than 4,300 digits, nesting only as
    deep as the decoder handles (a document nested deeper is refused, not a crash).
    """
    shown = printable(path)
    text = _read_text(path)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{shown}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise UsageError(f"{shown}: JSON nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        message = str(exc).split(":")[0] if "digits" in str(exc) else str(exc)
        raise UsageError(f"{shown}: invalid JSON number: {message}") from None


def _yaml_documents(text: str, where: str) -> list[Any]:
    import yaml

    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{printable(where)}: malformed YAML{at}: {printable(problem)}") from None
    except RecursionError:
        raise UsageError(f"{printable(where)}: YAML nested too deeply") from None


def _file_documents(path: Path) -> list[Any]:
    if path.suffix in YAML_SUFFIXES:
        return _yaml_documents(_read_text(str(path)), str(path))
    return [read_json_file(str(path))]


def is_state_document(documents: list[Any]) -> bool:
    """One document that is not a manifest (a mapping with `kind` or `apiVersion`) is a STATE
    document, whatever else it is: `parse_state` says what is wrong with it."""
    if len(documents) != 1:
        return False
    only = documents[0]
    return not (isinstance(only, dict) and {"kind", "apiVersion"} & set(only))


def read_documents(source: str) -> tuple[list[Any], str]:
    """The decoded documents of `source` (a file, a directory of *.yaml/*.yml/*.json, or `-`)."""
    if source == "-":
        return _yaml_documents(sys.stdin.read(), "stdin"), "stdin"
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
        if not files:
            raise UsageError(f"{printable(source)}: no *.yaml, *.yml or *.json files in this directory")
        documents: list[Any] = []
        for file in files:
            documents += _file_documents(file)
        return documents, source
    return _file_documents(path), source


def load_state(source: str, notes: list[str] | None = None) -> State:
    """A STATE file, or manifests converted to one; conversion notes (placeholder addresses, cells an
    ipBlock would decide on a real address, objects ignored) are appended to `notes`, or printed to
    stderr as `note: ...` lines when `notes` is None."""
    documents, where = read_documents(source)
    if not documents:
        raise UsageError(f"{printable(where)}: empty input")
    if is_state_document(documents):
        return parse_state(documents[0])
    from netpolcheck.model.manifests import manifests_to_state

    conversion = manifests_to_state(documents)
    state = parse_state(conversion.document)
    found = conversion.notes + conversion.address_cautions(state)
    if notes is None:
        for note in found:
            print(f"note: {printable(note)}", file=sys.stderr)
    else:
        notes += found
    return state
