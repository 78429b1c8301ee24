"""Does this process hold the privilege the embedded cluster needs?

Checked by capability, not by uid: what `ip netns`, veth, bridges and mount namespaces need is
CAP_NET_ADMIN and CAP_SYS_ADMIN, and a root process without them fails just like a user's would.
"""

from __future__ import annotations

from pathlib import Path

REQUIRED_CAPABILITIES = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21}


def effective_capabilities(status: Path = Path("/proc/self/status")) -> int:
    for line in status.read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def missing_capabilities() -> list[str]:
    """Names of the required capabilities this process lacks (empty: it may build a cluster)."""
    caps = effective_capabilities()
    return [name for name, bit in REQUIRED_CAPABILITIES.items() if not caps >> bit & 1]
