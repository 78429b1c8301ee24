"""The suites' markers (areas and features). The fixtures live in fixtures/ (root conftest plugins)."""

from __future__ import annotations

import pytest

MARKERS = {
    "tutorial": "the seed walkthrough (Weave 2.0.5 -> 2.1.3, deny-all, allow-by-label, relabel)",
    "catalog": "the policy catalog on the 3 namespaces x 3 pods topology",
    "ingress": "ingress rules",
    "egress": "egress rules",
    "ipblock": "ipBlock peers",
    "selectors": "pod and namespace selectors",
    "ports": "ports, named ports and protocols",
    "upgrade": "changes the Weave version",
    "weave": "Weave-specific behaviour",
    "cluster_wide": "changes the whole cluster (Weave version, controller restart): never beside others",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
