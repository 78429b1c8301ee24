"""What the cluster can probe, found once per cluster with a case of its own: SCTP.

The probe agent answers `unsupported` (with the reason) for an SCTP target when its pod's kernel has no
SCTP (docs/probe.md). `sctp_missing` runs a two-pod case on two nodes, without policies, probing SCTP
both ways, and says why SCTP cannot be probed there, or None when it can. The suites skip their SCTP
cases with that reason: a case that probed nothing is never reported as passed.
"""

from __future__ import annotations

from netpolcheck.verdict import case as c
from netpolcheck.verdict.driver import Driver
from netpolcheck.verdict.runner import CaseRunner, RunOptions

SCTP_DETECTION = c.Case(
    "sctp-detection",
    (c.NamespaceDef("s"),),
    (c.PodDef("s", "a", node=0), c.PodDef("s", "b", node=1)),
    (),
    (c.ProbeDef(80, "SCTP"),),
    check_first=True,
)


def sctp_missing(driver: Driver, options: RunOptions) -> str | None:
    """Why the cluster's pods cannot probe SCTP (the agent's evidence), or None when every probe pod
    sent its SCTP INIT. A failure of the case itself (pods that never start) raises as any case does."""
    result = CaseRunner(driver, options).run(SCTP_DETECTION)
    if result.error:
        raise RuntimeError(f"SCTP detection: {result.error}")
    observed = [cell for check in result.checks for cell in check.observed.values()]
    if not observed:
        raise RuntimeError("SCTP detection: no cell was probed")
    missing = [cell for cell in observed if cell.unsupported]
    if len(missing) < len(observed):
        return None  # at least one node can: the rest show as unsupported cells, noted per check
    return missing[0].evidence or "the probe agent reports SCTP unsupported"
