"""The one error the model raises for bad input: a `UsageError` that names the object and field."""

from __future__ import annotations

from netpolcheck.errors import UsageError


class StateError(UsageError):
    """Invalid STATE or policy content; the message names the object and the field."""

    def __init__(self, where: str, field: str, problem: str) -> None:
        super().__init__(f"{where}: {field}: {problem}")
        self.where = where
        self.field = field
        self.problem = problem
