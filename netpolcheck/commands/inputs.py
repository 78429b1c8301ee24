"""Reading what users hand in: a STATE JSON file, or Kubernetes YAML (files, a directory, `-` for
stdin), turned into a validated model `State`. Any problem is one `UsageError` line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from netpolcheck.errors import UsageError
from netpolcheck.model.state import State, parse_state

YAML_SUFFIXES = (".yaml", ".yml")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None


def _yaml_documents(text: str, where: str) -> list[Any]:
    import yaml

    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{where}: malformed YAML{at}: {problem}") from None


def _json_documents(text: str, where: str) -> list[Any]:
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def read_json_file(path: str) -> Any:
    """A JSON file's decoded content; any problem is one UsageError line."""
    return _json_documents(_read(Path(path)), path)[0]


def _documents(text: str, where: str, json_expected: bool) -> list[Any]:
    """JSON files (and JSON on stdin) keep JSON's error messages; anything else is YAML."""
    if json_expected or text.lstrip().startswith("{"):
        return _json_documents(text, where)
    return _yaml_documents(text, where)


def is_state_document(documents: list[Any]) -> bool:
    """One mapping without `kind`/`apiVersion`: a STATE document (JSON is YAML), not manifests."""
    return (
        len(documents) == 1
        and isinstance(documents[0], dict)
        and not {"kind", "apiVersion"} & set(documents[0])
    )


def read_documents(source: str) -> tuple[list[Any], str]:
    """The decoded documents of `source` (a file, a directory of *.yaml/*.yml/*.json, or `-`)."""
    if source == "-":
        return _documents(sys.stdin.read(), "stdin", False), "stdin"
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (*YAML_SUFFIXES, ".json"))
        if not files:
            raise UsageError(f"{source}: no *.yaml, *.yml or *.json files in this directory")
        documents: list[Any] = []
        for file in files:
            documents += _documents(_read(file), str(file), file.suffix == ".json")
        return documents, source
    return _documents(_read(path), source, path.suffix == ".json"), source


def load_state(source: str, notes: list[str] | None = None) -> State:
    """A STATE file, or manifests converted to one; conversion notes (placeholder addresses, cells an
    ipBlock would decide on a real address, objects ignored) are appended to `notes`, or printed to
    stderr as `note: ...` lines when `notes` is None."""
    documents, where = read_documents(source)
    if not documents:
        raise UsageError(f"{where}: empty input")
    if is_state_document(documents):
        return parse_state(documents[0])
    from netpolcheck.model.manifests import manifests_to_state

    conversion = manifests_to_state(documents)
    state = parse_state(conversion.document)
    found = conversion.notes + conversion.address_cautions(state)
    if notes is None:
        for note in found:
            print(f"note: {note}", file=sys.stderr)
    else:
        notes += found
    return state
