"""The STATE format as a JSON Schema shipped in the package (`state.schema.json`).

The schema is the one list of the fields each object of STATE may have: the parser's unknown-field
check reads its lists from here, so an error lists exactly the fields the schema allows.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "state.schema.json"


@cache
def state_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a STATE document."""
    text = resources.files("netpolcheck.model").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def fields(definition: str | None = None) -> tuple[str, ...]:
    """The fields an object of `definition` (a name under `$defs`; None: the top level) may have."""
    node = state_schema() if definition is None else state_schema()["$defs"][definition]
    return tuple(node["properties"])
