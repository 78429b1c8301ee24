"""The one Kubernetes version the hollow cluster reports: the API server's `/version` gitVersion and,
for the nodes, `status.nodeInfo.kubeletVersion` (a real cluster's nodes and server agree on it)."""

from __future__ import annotations

MAJOR = "1"
MINOR = "37"
KUBERNETES_VERSION = f"v{MAJOR}.{MINOR}.0-hollow"
