"""The seed chapter ("Enforcing Network Security Policies with Weave Net"), step by step.

Weave 2.0.5 first (what kops 1.7 shipped), then the chapter's upgrade to 2.1.3 with its rollout. An
http-echo server and a busybox client in namespace ns-1 (the probe agent stands in for both: it serves
TCP 80 and probes), TCP 80 as in the chapter. The deny-all policy is applied on 2.0.5 first, where it
blocks nothing (2.0.x isolates only through the DefaultDeny namespace annotation), and blocks from the
upgrade to 2.1.3 on; then the chapter's allow-by-label policy (still blocked: busybox lacks the label)
and the relabel (allowed). Clean-up removes the namespace and puts Weave back on the version it found.
Every step's expected matrix comes from the model under the run's profile (`weave` follows the version
the cluster runs at each step), and its convergence time is a JUnit property.

The chapter starts on a fresh cluster, and so does this case: a cluster that ran Weave 2.4 or later
keeps that router's egress hooks across a downgrade to 2.0.5 (2.0.5's router and controller neither
know nor remove them), and once 2.6+ has seen an egress policy they drop every new connection from a
pod (docs/verdict.md#fresh-clusters). On the embedded cluster it gets an embedded cluster of its own,
made with Weave 2.0.5 before the session's (marker `fresh_cluster`); on a real cluster it runs only
when the session installed 2.0.5 itself (`--weave-version 2.0.5`), and is skipped with that reason
otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest

from fixtures.cluster import api_of, provisioned, run_on
from fixtures.verdict import run_options
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.namespaces import Run
from netpolcheck.kube.provisioners import ClusterOptions
from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy
from netpolcheck.verdict.driver import Driver
from netpolcheck.verdict.kubedriver import KubeDriver
from netpolcheck.verdict.results import CaseResult
from netpolcheck.verdict.runner import RunOptions

pytestmark = [pytest.mark.tutorial, pytest.mark.upgrade, pytest.mark.cluster_wide, pytest.mark.fresh_cluster]

START = "2.0.5"  # what kops 1.7 shipped; the chapter's cluster never ran anything newer
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
    weave_version=START,
)


@pytest.fixture(scope="module")
def verdict_driver(
    request: pytest.FixtureRequest, cluster_options: ClusterOptions, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Driver]:
    """The engine's driver on a cluster that never ran a Weave newer than 2.0.5 (see the docstring)."""
    if cluster_options.kind != "hollow":
        if cluster_options.weave_version != START:
            pytest.skip(
                f"the seed chapter starts on a fresh cluster with Weave {START}: on --cluster "
                f"{cluster_options.kind} run it with --weave-version {START} (a cluster that ran Weave 2.4+ "
                "keeps its egress hooks across a downgrade, docs/verdict.md#fresh-clusters)"
            )
        # the session's cluster, made with 2.0.5 for this run; fresh_cluster tests run before the others
        api, run = request.getfixturevalue("kube_api"), request.getfixturevalue("run")
        yield from _driver(api, cluster_options.kind, run, cluster_options.probe_image)
        return
    work_dir = tmp_path_factory.mktemp("tutorial")
    # never kept: the session's cluster needs the same pod range after it
    options = dataclasses.replace(
        cluster_options, weave_version=START, upgrade_to=None, keep_cluster=False, work_dir=work_dir
    )
    with provisioned(options) as made, api_of(made) as api, run_on(api) as run:
        yield from _driver(api, made.kind, run, options.probe_image)


def _driver(api: KubeApi, kind: str, run: Run, probe_image: str) -> Iterator[Driver]:
    driver = KubeDriver(api, kind, run, probe_image=probe_image)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(scope="module")
def verdict_options(pytestconfig: pytest.Config, cluster_options: ClusterOptions) -> RunOptions:
    """The session's engine options, without making the session's cluster (only its kind matters)."""
    return run_options(pytestconfig, cluster_options.kind)


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
