"""Version profiles: the weave-npc behaviour the reference controller reproduces (docs/weave-facts.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from netpolcheck.errors import UsageError


@dataclass(frozen=True)
class Profile:
    version: str
    legacy: bool  # 2.0.x: isolation only via the namespace annotation; extensions/v1beta1 policies
    egress: bool  # 2.4+: WEAVE-NPC-EGRESS* chains, policyTypes honoured, per-direction default-allow sets
    and_peers: bool  # 2.6+: podSelector AND namespaceSelector in one peer
    ipblock: bool  # ingress+egress ipBlock with except (2.5/2.4); else an ipBlock peer means "anywhere"
    physdev: bool  # 2.5+: physdev-out vethwe-bridge instead of the weave-local-pods set
    named_port_rejected: bool  # 2.6.3+: a policy with a named port is skipped with an error

    @property
    def policy_api(self) -> str:
        return "extensions/v1beta1" if self.legacy else "networking.k8s.io/v1"


PROFILES: dict[str, Profile] = {
    "2.0.5": Profile(
        "2.0.5",
        legacy=True,
        egress=False,
        and_peers=False,
        ipblock=False,
        physdev=False,
        named_port_rejected=False,
    ),
    "2.1.3": Profile(
        "2.1.3",
        legacy=False,
        egress=False,
        and_peers=False,
        ipblock=False,
        physdev=False,
        named_port_rejected=False,
    ),
    "2.8.1": Profile(
        "2.8.1",
        legacy=False,
        egress=True,
        and_peers=True,
        ipblock=True,
        physdev=True,
        named_port_rejected=True,
    ),
    # the rajch fork: same policy code as 2.8.1 (docs/weave-facts.md#fork)
    "2.9.0": Profile(
        "2.9.0",
        legacy=False,
        egress=True,
        and_peers=True,
        ipblock=True,
        physdev=True,
        named_port_rejected=True,
    ),
}

_TAG = re.compile(r":v?(\d+\.\d+\.\d+)(?:[-@].*)?$")


def profile_for(version: str) -> Profile:
    """The profile for `2.8.1`, `v2.8.1` or an image reference like `weaveworks/weave-npc:2.1.3`."""
    match = _TAG.search(version)
    key = match.group(1) if match else version.removeprefix("v")
    try:
        return PROFILES[key]
    except KeyError:
        raise UsageError(f"unknown weave-npc version {version!r}; known: {', '.join(PROFILES)}") from None
