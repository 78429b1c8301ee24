"""The requests `KubeDriver` hands the resident agents (through the relay, one exec each): a watch, a
settle with its confirmation in the same request, a stop; an agent older than the confirmation ignores
the field and answers without `confirm` (the engine then confirms with a round of its own), and a refusal
still fails the settle. The execs are scripted here; the real ones run in test_resident_hollow.py."""

from __future__ import annotations

from typing import Any

import pytest

from netpolcheck.kube import execing, namespaces
from netpolcheck.kube.connection import KubeApi
from netpolcheck.verdict.driver import AgentAnswer, Stagger
from netpolcheck.verdict.kubedriver import KubeDriver

STAGGER = Stagger(timeout=0.05, interval=0.01, silence=0.3)
TARGETS = [{"id": "0", "ip": "10.32.0.7", "port": 80, "protocol": "TCP", "want": ["allowed"]}]


class ScriptedExecs(KubeDriver):
    """KubeDriver whose relay execs are answered by an agent that knows `confirm_timeout` or not."""

    def __init__(self, knows_confirm: bool = True, refusal: str | None = None) -> None:
        super().__init__(KubeApi.__new__(KubeApi), "hollow", namespaces.Run())
        self.knows_confirm = knows_confirm
        self.refusal = refusal
        self.execs: list[tuple[dict[str, Any], float]] = []

    def _ask(self, namespace: str, pod: str, request: dict[str, Any], wait: float) -> AgentAnswer:
        self.execs.append((request, wait))
        if self.refusal is not None:
            raise execing.ExecError(f"the resident agent in {namespace}/{pod} refused: {self.refusal}")
        document: dict[str, Any] = {"agent": "resident", "results": []}
        if "confirm_timeout" in request and self.knows_confirm:
            document["confirm"] = []
        return AgentAnswer(document, 0.0, 0.0)


def test_a_settle_asks_for_the_confirmation_in_the_same_request_and_waits_for_it() -> None:
    driver = ScriptedExecs()
    answer = driver.settle("x", "a", TARGETS, STAGGER, 15.0, "w1", confirm=0.3)
    assert "confirm" in answer.document
    ((request, wait),) = driver.execs
    assert request == {
        "op": "settle",
        "targets": TARGETS,
        "timeout": 0.05,
        "interval": 0.01,
        "silence": 0.3,
        "deadline": 15.0,
        "limit": 15.0 + 0.3 + 5,
        "watch": "w1",
        "confirm_timeout": 0.3,
        "retries": 7,
    }
    assert wait == pytest.approx(15.0 + 0.3 + 0.3 * 4)  # the settle's wait plus the probe's


def test_a_watch_and_a_stop_are_one_request_each() -> None:
    driver = ScriptedExecs()
    driver.watch("x", "a", TARGETS, STAGGER, 60.0)
    driver.stop_watch("x", "a", "w1")
    assert driver.execs == [
        (
            {
                "op": "watch",
                "targets": TARGETS,
                "timeout": 0.05,
                "interval": 0.01,
                "silence": 0.3,
                "limit": 60.0,
            },
            0.0,
        ),
        ({"op": "stop", "watch": "w1"}, 0.0),
    ]


def test_an_agent_older_than_the_confirmation_answers_without_it_in_one_exec() -> None:
    driver = ScriptedExecs(knows_confirm=False)
    first = driver.settle("x", "a", TARGETS, STAGGER, 15.0, None, confirm=0.3)
    assert "confirm" not in first.document  # the engine then confirms with a full round of its own
    assert len(driver.execs) == 1 and "watch" not in driver.execs[0][0]


def test_a_refusal_still_fails_the_settle() -> None:
    driver = ScriptedExecs(refusal="op must be one of probe, watch, settle, stop")
    with pytest.raises(execing.ExecError, match="refused"):
        driver.settle("x", "a", TARGETS, STAGGER, 15.0, None, confirm=0.3)
    assert len(driver.execs) == 1
