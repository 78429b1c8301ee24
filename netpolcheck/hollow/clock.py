"""The one timestamp format of the embedded cluster's objects (RFC 3339, UTC, whole seconds)."""

from __future__ import annotations

import datetime


def stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def now_iso() -> str:
    return stamp(now())


def parse(text: str) -> datetime.datetime:
    """The moment a stamp names; ValueError when it is not one."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
