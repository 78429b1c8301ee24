"""Where the repository's manifests are (the suite runs from a checkout, installed editable)."""

from __future__ import annotations

import os
from pathlib import Path

# NETPOLCHECK_MANIFESTS overrides it for an installed (non-editable) package next to a copy of manifests/
MANIFESTS = Path(os.environ.get("NETPOLCHECK_MANIFESTS") or Path(__file__).resolve().parents[2] / "manifests")
PROBE_POD = MANIFESTS / "probe" / "pod.yaml"
WEAVE_MANIFESTS = MANIFESTS / "weave"
KIND_CONFIG = MANIFESTS / "kind" / "cluster-no-cni.yaml"
