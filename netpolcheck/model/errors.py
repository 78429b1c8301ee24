"""The one error the model raises for bad input: a `UsageError` that names the object and field."""

from __future__ import annotations

from netpolcheck.errors import UsageError
from netpolcheck.model.apivalidation import printable

_NAME_LIMIT = 200


def _short(text: str) -> str:
    """A name or field path from the input, escaped and cut so a message stays one readable line."""
    return printable(text if len(text) <= _NAME_LIMIT else text[:_NAME_LIMIT] + "...")


class StateError(UsageError):
    """Invalid STATE or policy content; the message names the object and the field.

    The message is one printable line whatever the input held: any character from the input that is
    not printable ASCII (a newline, an escape sequence, a bidi override) is shown escaped.
    """

    def __init__(self, where: str, field: str, problem: str) -> None:
        where, field, problem = _short(where), _short(field), printable(problem)
        super().__init__(f"{where}: {field}: {problem}" if field else f"{where}: {problem}")
        self.where = where
        self.field = field
        self.problem = problem
