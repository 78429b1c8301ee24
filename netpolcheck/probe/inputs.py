"""Reading what the caller hands the agent (a target list, a status file) without ever raising anything
but BadInput: size cap, strict UTF-8, and every way json.loads fails on hostile text."""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

from netpolcheck.probe.errors import BadInput, shown_path

MAX_INPUT_BYTES = 64 * 1024 * 1024  # ~800,000 targets; a larger input is a mistake (or /dev/zero)


def read_input(path: str, what: str, missing: str | None = None) -> str:
    """The text of `what` from `path` ("-" = stdin): UTF-8, at most MAX_INPUT_BYTES. `missing` is the
    message when the file does not exist (default: the OS error)."""
    try:
        if path == "-":
            data = read_capped(sys.stdin.buffer)
        else:
            with open(path, "rb") as stream:
                data = read_capped(stream)
    except FileNotFoundError as exc:
        raise BadInput(missing or f"cannot read {what} from {shown_path(path)}: {exc.strerror}") from None
    except OSError as exc:
        raise BadInput(f"cannot read {what} from {shown_path(path)}: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise BadInput(f"{what} from {shown_path(path)} is larger than {MAX_INPUT_BYTES // 2**20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{what} from {shown_path(path)} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})"
        ) from None


def read_capped(stream: BinaryIO) -> bytes:
    return stream.read(MAX_INPUT_BYTES + 1)


def load_json(text: str, what: str) -> Any:
    """json.loads, with every way it can fail on hostile text turned into one BadInput line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{what}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadInput(f"{what}: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer past the 4,300-digit conversion limit
        reason = "a number too long to convert" if "digits" in str(exc) else "not valid JSON"
        raise BadInput(f"{what}: {reason}") from None
