"""`KubeDriver.settle` with a confirmation, against a probe image whose `ask` predates the option: the
refused exec (argparse's exit 2, nothing ran) is retried without it, once per driver, and any other
failure still propagates. The execs are scripted here; the real ones run in test_resident_hollow.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from netpolcheck.kube import execing, namespaces
from netpolcheck.kube.connection import KubeApi
from netpolcheck.verdict.driver import AgentAnswer, ProbeTarget, Stagger
from netpolcheck.verdict.kubedriver import KubeDriver

STAGGER = Stagger(timeout=0.05, interval=0.01, silence=0.3)
TARGETS = [{"id": "0", "ip": "10.32.0.7", "port": 80, "protocol": "TCP", "want": ["allowed"]}]
# what `ask` of an image older than --confirm-timeout prints (its one-line usage error), exit 2
OLD_ASK = "netpolcheck.probe: error: netpolcheck.probe: unrecognized arguments: --confirm-timeout 0.3"


class ScriptedExecs(KubeDriver):
    """KubeDriver whose `ask` execs are answered by a pod image that knows --confirm-timeout or not."""

    def __init__(self, knows_confirm: bool, other_failure: str | None = None) -> None:
        super().__init__(KubeApi.__new__(KubeApi), "hollow", namespaces.Run())
        self.knows_confirm = knows_confirm
        self.other_failure = other_failure
        self.execs: list[tuple[list[str], float]] = []

    def _ask(
        self,
        namespace: str,
        pod: str,
        op: str,
        targets: Sequence[ProbeTarget] | None,
        options: list[str],
        wait: float,
    ) -> AgentAnswer:
        self.execs.append((options, wait))
        if self.other_failure is not None:
            raise execing.ExecError(f"ask --op {op} in {namespace}/{pod} exited with 2: {self.other_failure}")
        if "--confirm-timeout" in options and not self.knows_confirm:
            raise execing.ExecError(f"ask --op {op} in {namespace}/{pod} exited with 2: {OLD_ASK}")
        document: dict[str, Any] = {"agent": "resident", "results": []}
        if "--confirm-timeout" in options:
            document["confirm"] = []
        return AgentAnswer(document, 0.0, 0.0)


def test_a_settle_asks_for_the_confirmation_and_waits_for_it() -> None:
    driver = ScriptedExecs(knows_confirm=True)
    answer = driver.settle("x", "a", TARGETS, STAGGER, 15.0, "w1", confirm=0.3)
    assert "confirm" in answer.document
    ((options, wait),) = driver.execs
    assert options[-2:] == ["--confirm-timeout", "0.3"] and options[-4:-2] == ["--watch", "w1"]
    assert wait == pytest.approx(15.0 + 0.3 + 0.3 * 4)  # the settle's wait plus the probe's


def test_an_older_ask_is_asked_again_without_the_confirmation_once_per_driver() -> None:
    driver = ScriptedExecs(knows_confirm=False)
    first = driver.settle("x", "a", TARGETS, STAGGER, 15.0, None, confirm=0.3)
    assert "confirm" not in first.document  # the engine then confirms with a full round of its own
    assert [("--confirm-timeout" in options) for options, _ in driver.execs] == [True, False]
    driver.settle("x", "b", TARGETS, STAGGER, 15.0, None, confirm=0.3)
    assert [("--confirm-timeout" in options) for options, _ in driver.execs] == [True, False, False]


def test_any_other_refusal_still_fails_the_settle() -> None:
    driver = ScriptedExecs(knows_confirm=True, other_failure="error: the resident agent refused the request")
    with pytest.raises(execing.ExecError, match="refused the request"):
        driver.settle("x", "a", TARGETS, STAGGER, 15.0, None, confirm=0.3)
    assert len(driver.execs) == 1 and not driver.confirm_unknown
