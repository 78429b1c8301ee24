"""The one formatter of `reason` strings: the per-cell evaluator, `ReasonWriter` and `RowReasons` all
word their reasons here, so the three can only differ in what they decide, never in how they say it."""

from __future__ import annotations

from collections.abc import Sequence

OUTSIDE = "not policed ({} outside the pod network)"
HOST_NETWORK = "not policed (hostNetwork pods are never selected)"
NOT_ISOLATED = "not isolated"


def not_policed_by(deviation_id: str) -> str:
    """The note of a direction a profile deviation exempts from policy."""
    return f"not policed ({deviation_id})"


def legacy_isolator(namespace: str) -> str:
    """What isolates a pod under legacy (2.0.x) semantics: its namespace's annotation."""
    return f"namespace {namespace} annotation DefaultDeny"


def isolator(policy: str, rules_dropped_by: str | None = None) -> str:
    """A policy that isolates a pod, as a reason names it; one whose allow rules the implementation
    did not install says which deviation dropped them."""
    if rules_dropped_by is None:
        return policy
    return f"{policy} ({rules_dropped_by}: none of its allow rules installed)"


def allowed_by(direction: str, policy: str, rule: str) -> str:
    return f"{direction} allowed by {policy} {rule}"


def direction(name: str, isolated: Sequence[str], match: str = "", note: str = "") -> str:
    """One half of a reason: `match` is "POLICY RULE" of the first rule that admits, if any."""
    if not isolated:
        return f"{name} {note or NOT_ISOLATED}"
    if match:
        return f"{name} allowed by {match}"
    return f"{name} denied: isolated by {', '.join(isolated)} and no rule allows it"


def decided_by(deviation_id: str) -> str:
    """The reason of a cell a deviation allows outright."""
    return f"allowed: {deviation_id} (implementation deviation)"


def cell(egress_isolated: bool, egress: str, ingress_isolated: bool, ingress: str) -> str:
    """A whole reason from its two halves: "not isolated" when neither side is."""
    return f"{egress}; {ingress}" if egress_isolated or ingress_isolated else NOT_ISOLATED
