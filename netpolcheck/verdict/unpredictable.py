"""Cases a profile cannot judge: they apply a named port on a Weave version whose handling of it the
profile documents as unpredictable.

Before 2.6.3 weave-npc hands a named port (`port: serve-81-tcp`) to iptables as an /etc/services name
(an unknown one makes it exit) or rejects it fatally, so it crash-loops (docs/weave-facts.md,
"named-port-unpredictable"). The model then only warns: no cell of such a state has an expected
verdict a cluster could be held to, and a failed comparison would blame the cluster for the model's
guess. Such a case is skipped with this reason before it touches the cluster, never reported as passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from netpolcheck.errors import UsageError
from netpolcheck.model.profiles import NAMED_PORT_UNMODELLED
from netpolcheck.verdict.case import ApplyPolicy, Case, UpgradeWeave
from netpolcheck.verdict.profile import run_profile


def named_ports(manifest: Mapping[str, Any]) -> list[str]:
    """The port names a NetworkPolicy's rules use (numbers and missing ports left out)."""
    spec = manifest.get("spec") or {}
    rules = [*(spec.get("ingress") or []), *(spec.get("egress") or [])]
    return [
        port["port"]
        for rule in rules
        for port in (rule or {}).get("ports") or []
        if isinstance(port, Mapping) and isinstance(port.get("port"), str) and not port["port"].isdigit()
    ]


def weave_versions(case: Case, running: Callable[[], str | None]) -> list[str | None]:
    """The Weave versions the case's checks run on: where it starts (its own or what runs), then each
    upgrade's target."""
    first = case.weave_version or running()
    return [first, *(step.version for step in case.steps if isinstance(step, UpgradeWeave))]


def unpredictable(case: Case, profile_option: str, running: Callable[[], str | None]) -> str | None:
    """Why `case` cannot be judged under `--profile profile_option`, or None when it can.

    `running` gives the version the cluster runs; it is asked only for a case with named ports."""
    names = sorted(set(_policy_port_names(case.steps)))
    if not names:
        return None
    for version in weave_versions(case, running):
        try:
            profile = run_profile(profile_option, version)
        except UsageError:  # no Weave runs: the case's own check says so
            return None
        if profile.has(NAMED_PORT_UNMODELLED):
            deviation = profile.deviation(NAMED_PORT_UNMODELLED)
            return (
                f"the {profile.name} profile cannot predict a named port ({', '.join(names)}): "
                f"{deviation.reason} ({deviation.provenance})"
            )
    return None


def _policy_port_names(steps: Iterable[object]) -> Iterable[str]:
    for step in steps:
        if isinstance(step, ApplyPolicy):
            yield from named_ports(step.manifest)
