"""Documented deviations the model cannot predict, and whether a state triggers them.

A cell that depends on one of these is not a clean expectation: the explanation says so, so a
suite can report it as a known hazard instead of a verdict.
"""

from __future__ import annotations

from netpolcheck.model import profiles as dev
from netpolcheck.model.ipset_clash import clash_losers
from netpolcheck.model.policy import Policy
from netpolcheck.model.profiles import Deviation, Profile
from netpolcheck.model.state import State


def _named_port_policies(policies: tuple[Policy, ...]) -> list[str]:
    return [p.key for p in policies if p.named_ports]


def unpredictable(state: State, profile: Profile) -> list[tuple[Deviation, str]]:
    """(deviation, which policies trigger it) for every unmodelled deviation this state triggers."""
    found = []
    for deviation in profile.deviations:
        if deviation.modelled:
            continue
        if deviation.id == dev.NAMED_PORT_UNMODELLED:
            keys = _named_port_policies(state.policies)
        elif deviation.id == dev.IPSET_NAME_CLASH_FATAL:
            keys = sorted(clash_losers(state.policies, lambda _policy: False))
        else:
            keys = []
        if keys:
            found.append((deviation, "policies " + ", ".join(keys)))
    return found
