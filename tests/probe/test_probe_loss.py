"""10% packet loss on every path, each direction: 20 runs of the 9 x 9 matrix (324 probes each).

Loss can only take answers away, so the only wrong verdict it may cause is `dropped` where an answer was
due, and only when all of a probe's attempts lost their packet or its answer. With 8 attempts that is
(1 - 0.9 ** 2) ** 8 = 1.7e-6 per answered probe, about 0.01 expected over the whole test: some run out of
a hundred would see one. The test therefore fails on any other kind of wrong verdict at once, and on more
lost probes than that rate allows (at most 2: more happens by chance with a probability below 2e-7).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.probe.matrix import build_matrix
from tests.probe.netlab import Lab, Pod

RUNS = 20
LOSS = 0.1  # per packet, each direction
TIMEOUT, RETRIES = "1", 7  # the agent's defaults, named here because the bound below depends on them
CHANCE_BOUND = 2e-7  # the test may fail by chance alone at most this often


def add_ten_percent_loss(lab: Lab, pods: list[Pod]) -> str:
    """Make each direction of every pod-to-pod path lose 10% of its packets, independently at random.

    `tc netem loss 10%` on each pod's eth0 where the kernel has netem; where it has not (CONFIG_NET_SCH_NETEM
    is off on this project's build machines), the same Bernoulli loss with the `statistic` match on the
    bridged FORWARD path of the hub namespace (br_netfilter), which every pod-to-pod packet crosses once.
    """
    first = lab.run(pods[0], "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "10%", check=False)
    if first.returncode == 0:
        for pod in pods[1:]:
            lab.run(pod, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "10%")
        return "tc netem loss 10% on every pod's eth0"
    assert "unknown" in first.stderr.lower(), first.stderr
    hub = Pod(lab.hub, "", "")
    lab.run(hub, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1")
    lab.iptables(
        hub, "-A", "FORWARD", "-m", "statistic", "--mode", "random", "--probability", str(LOSS), "-j", "DROP"
    )
    return "iptables statistic 10% DROP on the hub's bridged FORWARD path (no netem in this kernel)"


def allowed_losses(probes: int, per_probe: float, bound: float = CHANCE_BOUND) -> int:
    """The fewest lost probes k with P(more than k) <= bound, for `probes` independent probes each lost
    with probability `per_probe` (the Poisson tail: the count is binomial with a tiny rate)."""
    rate = probes * per_probe
    k, term, below = 0, math.exp(-rate), math.exp(-rate)
    while 1.0 - below > bound:
        k += 1
        term *= rate / k
        below += term
    return k


def test_allowed_losses_follows_the_poisson_tail() -> None:
    assert allowed_losses(5600, 1.7e-6) == 2
    assert allowed_losses(10, 0.5) >= 10  # a lossy rate allows many
    assert allowed_losses(1, 0.0) == 0


def lost_to_loss(expected: str, result: dict[str, object]) -> bool:
    """A wrong verdict loss can explain: an answer was due and every attempt went unanswered."""
    return (
        expected != "dropped" and result.get("verdict") == "dropped" and result.get("attempts") == RETRIES + 1
    )


@pytest.mark.netns
@pytest.mark.slow
def test_ten_percent_loss_gives_no_wrong_verdict(lab: Lab, tmp_path: Path) -> None:
    matrix = build_matrix(lab, tmp_path)
    print(f"loss emulated with: {add_ten_percent_loss(lab, matrix.pods)}")
    answered = sum(1 for verdict in matrix.expected.values() if verdict != "dropped") * RUNS
    per_probe = (1.0 - (1.0 - LOSS) ** 2) ** (RETRIES + 1)
    allowed = allowed_losses(answered, per_probe)
    retried, lost = 0, []
    for run in range(RUNS):
        results, _ = matrix.run("--timeout", TIMEOUT, "--retries", str(RETRIES))
        wrong = matrix.wrong(results)
        cells = [
            cell
            for cell, verdict in matrix.expected.items()
            if results.get(cell, {}).get("verdict") != verdict
        ]
        not_loss = [
            line
            for cell, line in zip(cells, wrong, strict=True)
            if not lost_to_loss(matrix.expected[cell], results.get(cell, {}))
        ]
        assert not_loss == [], f"run {run + 1}/{RUNS}: wrong verdicts loss cannot cause: {not_loss[:5]}"
        lost += [f"run {run + 1}: {line}" for line in wrong]
        retried += sum(1 for r in results.values() if r["verdict"] != "dropped" and r["attempts"] != 1)
    print(f"{answered} answered probes, {len(lost)} lost every attempt (expected {answered * per_probe:.3f})")
    assert len(lost) <= allowed, (
        f"{len(lost)} probes lost all {RETRIES + 1} attempts, more than chance allows ({allowed}): {lost[:5]}"
    )
    # the loss must have bitten (answers that needed a retry), or this test proved nothing
    assert retried > 0.05 * RUNS * len(matrix.expected) * 0.5, retried
