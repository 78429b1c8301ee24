"""The resident agent in probe pods of the embedded cluster, through `KubeDriver` (exec + the relay).

A probe request is answered by the agent `serve` started with the pod; a settle request reports when
each cell showed its wanted verdict on this machine's clock; when the agent is gone (its socket removed,
as in a pod whose serve has none), probing falls back to one-shot and every result says so, and a
settle request raises NoResidentAgent (the engine then probes in rounds and records it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from netpolcheck.kube import execing, namespaces
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.provisioners import Cluster
from netpolcheck.verdict.driver import NoResidentAgent, PodSpec, ResidentDriver, Stagger
from netpolcheck.verdict.kubedriver import KubeDriver
from tests.kube.embedded import embedded_cluster

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

POD_CIDR = "10.52.0.0/14"  # inside this area's range (10.48.0.0/12), away from the suites' default
IMAGE = "netpolcheck/netpolcheck-probe:dev"
STAGGER = Stagger(timeout=0.05, interval=0.01, silence=0.3)
SOCKET = "/tmp/netpolcheck-probe/agent"  # the agent's directory beside the default journal


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, KubeApi]]:
    with embedded_cluster(tmp_path_factory.mktemp("resident"), POD_CIDR, nodes=1) as made:
        yield made


@pytest.fixture
def driver(embedded: tuple[Cluster, KubeApi]) -> Iterator[KubeDriver]:
    run = namespaces.Run()
    made = KubeDriver(embedded[1], "hollow", run, IMAGE)
    try:
        yield made
    finally:
        made.close()
        namespaces.cleanup(embedded[1], run)


def pod_ips(driver: KubeDriver, namespace: str) -> dict[str, str]:
    return {p["name"]: str(p["ip"]) for p in driver.snapshot([namespace])["pods"]}


def test_a_resident_agent_answers_in_a_hollow_pod_and_the_fallback_is_recorded(
    driver: KubeDriver, tmp_path: Path
) -> None:
    assert isinstance(driver, ResidentDriver) and driver.shared_clock
    namespace = f"resident-{time.time_ns() % 10**8}"
    driver.create_namespace(namespace, {})
    driver.create_pods([PodSpec(namespace, "a"), PodSpec(namespace, "b")])
    ip = pod_ips(driver, namespace)["b"]
    targets = [
        {"id": "open", "ip": ip, "port": 80, "protocol": "TCP"},
        {"id": "closed", "ip": ip, "port": 82, "protocol": "TCP"},
    ]

    results = driver.probe(namespace, "a", targets, 0.5)
    assert [(r["id"], r["verdict"], r["agent"]) for r in results] == [
        ("open", "allowed", "resident"),
        ("closed", "refused", "resident"),
    ]
    assert all("fallback" not in r for r in results)

    before = time.time()
    wanted = [{**targets[0], "id": "0", "want": ["allowed"]}]
    answer = driver.settle(namespace, "a", wanted, STAGGER, 30.0, None)
    (settled,) = answer.document["results"]
    assert (settled["settled"], settled["verdict"]) == (True, "allowed")
    # the pod's clock is this machine's: its times fall between the exec's own
    assert before <= answer.sent <= settled["settled_at"] <= answer.returned

    # one watch, each cell at its own cadence, continued by a settle that confirms in the same exec
    cadenced = [{**targets[0], "id": "0", "interval": 0.1}, {**targets[1], "id": "1"}]
    watch = driver.watch(namespace, "a", cadenced, STAGGER, 30.0).document["watch"]
    wants = [{**cadenced[0], "want": ["allowed"]}, {**cadenced[1], "want": ["refused"]}]
    confirmed = driver.settle(namespace, "a", wants, STAGGER, 30.0, watch, confirm=0.5).document
    assert confirmed["continued"] == 2 and all(r["settled"] for r in confirmed["results"])
    assert [(r["id"], r["verdict"]) for r in confirmed["confirm"]] == [("0", "allowed"), ("1", "refused")]

    # a long step's watch, read back as each cell's runs of one verdict, stops it (KubeDriver.timeline)
    watch = driver.watch(namespace, "a", cadenced, STAGGER, 30.0).document["watch"]
    timeline = driver.timeline(namespace, "a", watch).document
    assert timeline["failure"] is None and timeline["started_at"] <= timeline["ended_at"]
    runs = {t["id"]: [run[0] for run in t["runs"]] for t in timeline["targets"]}
    assert runs == {"0": ["allowed"], "1": ["refused"]}  # answered at once: judged before the stop
    with pytest.raises(execing.ExecError, match="no watch"):
        driver.timeline(namespace, "a", watch)

    # a request the agent refuses fails with its reason, through the relay (which copies answers unread)
    refused = pytest.raises(execing.ExecError, match="refused the nonsense request: op")
    with driver.exec_client() as api, refused:
        execing.ask(api, (namespace, "a"), {"op": "nonsense"})

    # the agent goes away (as in a pod whose serve runs without one): probing falls back, and says so
    with driver.exec_client() as api:
        gone = execing.exec_in(api, (namespace, "a"), ["rm", "-r", SOCKET])
    assert gone.exit_code == 0, gone.stderr
    results = driver.probe(namespace, "a", targets, 0.5)
    assert [(r["id"], r["verdict"], r["agent"]) for r in results] == [
        ("open", "allowed", "one-shot"),
        ("closed", "refused", "one-shot"),
    ]
    assert all("no resident agent at" in r["fallback"] for r in results)
    with pytest.raises(NoResidentAgent, match="no resident agent"):
        driver.settle(namespace, "a", wanted, STAGGER, 5.0, None)


def test_exec_clients_are_reused_across_rounds_not_made_per_thread(driver: KubeDriver) -> None:
    """The probers make a thread pool per round: a client per thread would pile up (and cost a TLS
    handshake each); the driver hands the same few clients out again."""
    namespace = f"clients-{time.time_ns() % 10**8}"
    driver.create_namespace(namespace, {})
    driver.create_pods([PodSpec(namespace, "a"), PodSpec(namespace, "b")])
    target = [{"id": "open", "ip": pod_ips(driver, namespace)["b"], "port": 80, "protocol": "TCP"}]
    for _ in range(5):
        with ThreadPoolExecutor(max_workers=3) as pool:
            rounds = [pool.submit(driver.probe, namespace, "a", target, 0.5) for _ in range(3)]
            assert all(r.result()[0]["verdict"] == "allowed" for r in rounds)
    assert 1 <= len(driver._exec_clients) <= 3  # at most as many as ever ran at once, not 15
