"""The seed chapter ("Enforcing Network Security Policies with Weave Net"), step by step.

Weave 2.0.5 first (what kops 1.7 shipped), then the chapter's upgrade to 2.1.3 with its rollout. An
http-echo server and a busybox client in namespace ns-1 (the probe agent stands in for both: it serves
TCP 80 and probes), TCP 80 as in the chapter. The deny-all policy is applied on 2.0.5 first, where it
blocks nothing (2.0.x isolates only through the DefaultDeny namespace annotation), and blocks from the
upgrade to 2.1.3 on; then the chapter's allow-by-label policy (still blocked: busybox lacks the label)
and the relabel (allowed). Clean-up removes the namespace and puts Weave back on the version it found.
Every step's expected matrix comes from the model under the run's profile (`weave` follows the version
the cluster runs at each step), and its convergence time is a JUnit property.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy
from netpolcheck.verdict.results import CaseResult

pytestmark = [pytest.mark.tutorial, pytest.mark.upgrade, pytest.mark.cluster_wide]

NS = "ns-1"
HTTP_ECHO = c.PodDef(NS, "http-echo", {"run": "http-echo", "app": "http-echo"}, node=0)
BUSYBOX = c.PodDef(NS, "busybox", {"run": "busybox"}, node=1)
DENY_ALL = policy("deny-all-by-default")  # the chapter's template: podSelector {} and nothing else
ALLOW = policy("allow", labels(app="http-echo"), ingress=[{"from": [{"podSelector": labels(app="busybox")}]}])

WALKTHROUGH = c.Case(
    "seed-walkthrough",
    (c.NamespaceDef(NS),),
    (HTTP_ECHO, BUSYBOX),
    (
        c.ApplyPolicy(NS, DENY_ALL),  # on 2.0.5: blocks nothing
        c.UpgradeWeave("2.1.3"),  # the chapter's weavenet-update.yaml + rollout status: now it blocks
        c.DeletePolicy(NS, "deny-all-by-default"),
        c.ApplyPolicy(NS, ALLOW),  # busybox is not labelled app=busybox: still blocked
        c.LabelPod(NS, "busybox", {"app": "busybox"}),  # allowed
    ),
    probes=(c.ProbeDef(80, "TCP"),),
    weave_version="2.0.5",
)


def test_seed_walkthrough_from_weave_2_0_5_through_the_upgrade_to_2_1_3(
    verdict: Callable[[c.Case], CaseResult],
) -> None:
    result = verdict(WALKTHROUGH)
    # the chapter's story, cell busybox -> http-echo TCP 80, as the run's profile expected it
    story = [
        check.expectation.cells[
            next(k for k in check.expectation.cells if k.source.endswith("busybox"))
        ].allowed
        for check in result.checks
    ]
    if result.profile == "weave":
        # precheck allowed; deny-all on 2.0.5 allowed; after the upgrade denied; deleted + allow: denied;
        # relabelled: allowed
        assert story == [True, True, False, True, False, True]
