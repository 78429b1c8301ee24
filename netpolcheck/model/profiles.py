"""Implementation profiles: `spec`, and one per Weave Net version, each a list of documented deviations.

Every deviation cites its section of docs/weave-facts.md (anchor = deviation id), and the
versions it applies to ([since, before)). The engine applies a profile by deviation id.
"""

from __future__ import annotations

from dataclasses import dataclass

from netpolcheck.model.errors import StateError

# Deviation ids the engine knows how to apply.
LEGACY_ISOLATION = "legacy-isolation"
LEGACY_EMPTY_LISTS = "legacy-empty-lists-match-nothing"
EGRESS_IGNORED = "egress-ignored"
EGRESS_ONLY_ISOLATES_INGRESS = "egress-only-policy-isolates-ingress"
RULES_IGNORE_POLICY_TYPES = "rules-ignore-policytypes"
INGRESS_IPBLOCK_ALLOWS_ALL = "ingress-ipblock-allows-all"
INGRESS_IPBLOCK_WITH_PORTS_ALLOWS_ALL = "ingress-ipblock-with-ports-allows-all"
NAMESPACE_SELECTOR_WINS = "pod-and-namespace-selector-as-namespace-selector"
POD_SELECTOR_WINS = "pod-and-namespace-selector-as-pod-selector"
NAMED_PORT_POLICY_SKIPPED = "named-port-policy-skipped"
NAMED_PORT_UNMODELLED = "named-port-unpredictable"
ENDPORT_IGNORED = "endport-ignored"
MULTICAST_ALLOWED = "multicast-always-allowed"
HOST_TO_LOCAL_POD = "host-to-local-pod-allowed"
EGRESS_TO_OWN_NODE = "egress-to-own-node-allowed"
SAME_SELECTOR_NO_ISOLATION = "same-source-and-target-selector-isolates-nothing"
DENIALS_DROPPED = "denials-dropped-not-rejected"
IPSET_NAME_CLASH = "ipset-name-clash"
IPSET_NAME_CLASH_FATAL = "ipset-name-clash-fatal"

Version = tuple[int, ...]


def parse_version(text: str) -> Version:
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True)
class Deviation:
    id: str
    reason: str
    provenance: str
    since: str | None = None
    before: str | None = None
    modelled: bool = True  # False: documented but not predictable; the explanation flags it

    def applies_to(self, version: str) -> bool:
        ver = parse_version(version)
        if self.since is not None and ver < parse_version(self.since):
            return False
        return self.before is None or ver < parse_version(self.before)

    @property
    def versions(self) -> str:
        if self.since and self.before:
            return f">={self.since}, <{self.before}"
        if self.since:
            return f">={self.since}"
        return f"<{self.before}" if self.before else "all"


WEAVE_DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        LEGACY_ISOLATION,
        "isolation only through the namespace annotation "
        "net.beta.kubernetes.io/network-policy DefaultDeny; policies only add allows",
        "docs/weave-facts.md#legacy-isolation",
        before="2.1.0",
    ),
    Deviation(
        LEGACY_EMPTY_LISTS,
        "legacy semantics: `from: []` or `ports: []` matches nothing",
        "docs/weave-facts.md#legacy-empty-lists-match-nothing",
        before="2.1.0",
    ),
    Deviation(
        EGRESS_IGNORED,
        "egress rules and policyTypes are not enforced before 2.4.0",
        "docs/weave-facts.md#egress-ignored",
        before="2.4.0",
    ),
    Deviation(
        EGRESS_ONLY_ISOLATES_INGRESS,
        "every policy isolates its targets for ingress, so an egress-only policy denies all ingress",
        "docs/weave-facts.md#egress-only-policy-isolates-ingress",
        since="2.1.0",
        before="2.4.0",
    ),
    Deviation(
        RULES_IGNORE_POLICY_TYPES,
        "ingress/egress rules are programmed whatever policyTypes says; only isolation follows policyTypes",
        "docs/weave-facts.md#rules-ignore-policytypes",
        since="2.4.0",
    ),
    Deviation(
        INGRESS_IPBLOCK_ALLOWS_ALL,
        "an ingress ipBlock peer leaves the source empty: it allows every source",
        "docs/weave-facts.md#ingress-ipblock-allows-all",
        before="2.5.0",
    ),
    Deviation(
        INGRESS_IPBLOCK_WITH_PORTS_ALLOWS_ALL,
        "an ingress ipBlock rule with ports allows every source on those ports",
        "docs/weave-facts.md#ingress-ipblock-with-ports-allows-all",
        since="2.5.0",
        before="2.6.0",
    ),
    Deviation(
        NAMESPACE_SELECTOR_WINS,
        "a peer with podSelector and namespaceSelector is read as its namespaceSelector alone",
        "docs/weave-facts.md#pod-and-namespace-selector-as-namespace-selector",
        before="2.1.0",
    ),
    Deviation(
        POD_SELECTOR_WINS,
        "a peer with podSelector and namespaceSelector is read as its "
        "podSelector alone, in the policy's namespace",
        "docs/weave-facts.md#pod-and-namespace-selector-as-pod-selector",
        since="2.1.0",
        before="2.6.0",
    ),
    Deviation(
        NAMED_PORT_UNMODELLED,
        "named ports go to iptables as /etc/services names (<2.5) or crash "
        "weave-npc (2.5.0-2.6.2): the verdict cannot be predicted",
        "docs/weave-facts.md#named-port-unpredictable",
        before="2.6.3",
        modelled=False,
    ),
    Deviation(
        NAMED_PORT_POLICY_SKIPPED,
        "a policy with a named port is rejected and skipped entirely: its targets stay open (fail open)",
        "docs/weave-facts.md#named-port-policy-skipped; observed: tests/data/observed-2.8.1/m-named-port",
        since="2.6.3",
    ),
    Deviation(
        ENDPORT_IGNORED,
        "endPort is ignored: only `port` is enforced",
        "docs/weave-facts.md#endport-ignored; observed: tests/data/observed-2.8.1/m-endport",
    ),
    Deviation(
        MULTICAST_ALLOWED,
        "destinations in 224.0.0.0/4 are always accepted (--allow-mcast)",
        "docs/weave-facts.md#multicast-always-allowed",
    ),
    Deviation(
        HOST_TO_LOCAL_POD,
        "host-network processes reach pods on their own node without policy",
        "docs/weave-facts.md#host-to-local-pod-allowed",
    ),
    Deviation(
        EGRESS_TO_OWN_NODE,
        "egress from a pod to its own node's addresses is never filtered",
        "docs/weave-facts.md#egress-to-own-node-allowed",
        since="2.5.1",
    ),
    Deviation(
        SAME_SELECTOR_NO_ISOLATION,
        "a policy whose from.podSelector equals its podSelector isolates nothing",
        "docs/weave-facts.md#same-source-and-target-selector-isolates-nothing",
        since="2.1.0",
        before="2.2.1",
    ),
    Deviation(
        IPSET_NAME_CLASH_FATAL,
        "peers {namespaceSelector: S} and {namespaceSelector: S, podSelector: {}} want one ipset name "
        "with two types; the failed create is fatal: weave-npc exits and restarts",
        "docs/weave-facts.md#ipset-name-clash-fatal",
        since="2.6.0",
        before="2.6.3",
        modelled=False,
    ),
    Deviation(
        IPSET_NAME_CLASH,
        "peers {namespaceSelector: S} and {namespaceSelector: S, podSelector: {}} want one ipset name "
        "with two types; the policy whose create fails installs none of its allow rules (it still "
        "isolates its targets when the failure comes after them, as inside one policy)",
        "docs/weave-facts.md#ipset-name-clash; observed: tests/data/observed-2.8.1/README.md",
        since="2.6.3",
    ),
    Deviation(
        DENIALS_DROPPED,
        "denied packets are dropped (client times out), never rejected",
        "docs/weave-facts.md#denials-dropped-not-rejected",
    ),
)

WEAVE_VERSIONS = ("2.0.5", "2.1.3", "2.8.1", "2.9.0")
DENIED_VERDICTS = frozenset({"dropped", "rejected"})
PERMITTED_VERDICTS = frozenset({"allowed", "refused"})


@dataclass(frozen=True)
class Profile:
    name: str
    deviations: tuple[Deviation, ...]
    version: str | None = None

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(d.id for d in self.deviations)

    def has(self, deviation_id: str) -> bool:
        return any(d.id == deviation_id for d in self.deviations)

    def deviation(self, deviation_id: str) -> Deviation:
        return next(d for d in self.deviations if d.id == deviation_id)

    @property
    def denied_verdicts(self) -> frozenset[str]:
        """How a denial may look to a probe; spec leaves drop vs reject to the implementation."""
        return frozenset({"dropped"}) if self.has(DENIALS_DROPPED) else DENIED_VERDICTS

    def without(self, deviation_id: str) -> Profile:
        kept = tuple(d for d in self.deviations if d.id != deviation_id)
        return Profile(f"{self.name}-without-{deviation_id}", kept, self.version)


SPEC = Profile("spec", ())


def weave_profile(version: str) -> Profile:
    return Profile(f"weave-{version}", tuple(d for d in WEAVE_DEVIATIONS if d.applies_to(version)), version)


PROFILES: dict[str, Profile] = {"spec": SPEC} | {f"weave-{v}": weave_profile(v) for v in WEAVE_VERSIONS}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise StateError("--profile", name, f"unknown profile; use one of {', '.join(PROFILES)}") from None
