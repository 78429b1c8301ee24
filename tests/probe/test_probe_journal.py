"""Where the journal lives by default, and the journal filters."""

from __future__ import annotations

import pytest

from netpolcheck.probe.journal import default_path, matches
from netpolcheck.probe.relay import PATH_ENV


def test_default_journal_is_per_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PATH_ENV, raising=False)
    monkeypatch.setenv("HOSTNAME", "a")
    first = default_path()
    monkeypatch.setenv("HOSTNAME", "b")
    assert (first, default_path()) == (
        "/tmp/netpolcheck-probe/journal-a.jsonl",
        "/tmp/netpolcheck-probe/journal-b.jsonl",
    )
    monkeypatch.setenv(PATH_ENV, "/var/run/netpolcheck/journal.jsonl")
    assert default_path() == "/var/run/netpolcheck/journal.jsonl"


def test_filters() -> None:
    record = {"time": 10.0, "event": "datagram", "proto": "udp", "port": 80, "peer": "10.251.0.2:4000"}
    assert matches(record, "10.251.0.2", "UDP", 80, 10.0)
    assert not matches(record, "10.251.0.20", None, None, None)
    assert not matches(record, None, "tcp", None, None)
    assert not matches(record, None, None, 81, None)
    assert not matches(record, None, None, None, 10.5)
