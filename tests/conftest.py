"""Shared test plumbing: the `netns` marker skips, with the reason, where namespaces can't be made."""

from __future__ import annotations

import os
import shutil

import pytest


def _netns_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces (run the netns tests as root)"
    for tool in ("ip", "iptables", "ipset", "conntrack"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` on PATH (see .ci/run for the Debian packages)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _netns_unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "netns" in item.keywords:
            item.add_marker(skip)
