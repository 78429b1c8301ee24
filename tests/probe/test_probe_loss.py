"""10% packet loss on every link (tc netem): 20 runs of the 9 x 9 matrix must give no wrong verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.probe.matrix import build_matrix
from tests.probe.netlab import Lab, Pod

pytestmark = [pytest.mark.netns, pytest.mark.slow]
RUNS = 20


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
        hub, "-A", "FORWARD", "-m", "statistic", "--mode", "random", "--probability", "0.1", "-j", "DROP"
    )
    return "iptables statistic 10% DROP on the hub's bridged FORWARD path (no netem in this kernel)"


def test_ten_percent_loss_gives_no_wrong_verdict(lab: Lab, tmp_path: Path) -> None:
    matrix = build_matrix(lab, tmp_path)
    print(f"loss emulated with: {add_ten_percent_loss(lab, matrix.pods)}")
    retried = 0
    for run in range(RUNS):
        results, _ = matrix.run()
        wrong = matrix.wrong(results)
        assert wrong == [], f"run {run + 1}/{RUNS}: {len(wrong)} wrong verdicts: {wrong[:5]}"
        retried += sum(1 for r in results.values() if r["verdict"] != "dropped" and r["attempts"] != 1)
    # the loss must have bitten (answers that needed a retry), or this test proved nothing
    assert retried > 0.05 * RUNS * len(matrix.expected) * 0.5, retried
