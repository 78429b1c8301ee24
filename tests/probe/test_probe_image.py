"""The probe pod template and image: placeholders, exactly the capabilities needed, only the agent."""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import pytest
import yaml

from netpolcheck.probe.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "manifests" / "probe" / "pod.yaml"
DOCKERFILE = ROOT / "images" / "probe" / "Dockerfile"


def render(**values: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(string.Template(TEMPLATE.read_text()).substitute(values))
    return document


@pytest.fixture
def pod() -> dict[str, Any]:
    return render(POD_NAME="a", NAMESPACE="x", PROBE_IMAGE="registry.example/netpolcheck-probe:0.1.0")


def test_placeholders_are_exactly_the_documented_ones() -> None:
    names = set(re.findall(r"\$\{?(\w+)", TEMPLATE.read_text()))  # ${NAME} and $NAME alike
    assert names == {"POD_NAME", "NAMESPACE", "PROBE_IMAGE"}
    with pytest.raises(KeyError):
        render(POD_NAME="a", NAMESPACE="x")  # a missing value is an error, never an empty image


def test_one_container_running_the_agent_with_only_net_raw_and_net_bind_service(pod: dict[str, Any]) -> None:
    spec = pod["spec"]
    assert pod["metadata"] == {"name": "a", "namespace": "x", "labels": {"netpolcheck.io/probe": "true"}}
    assert spec["hostNetwork"] is False, "a hostNetwork probe would bypass pod policy"
    (container,) = spec["containers"]
    assert "initContainers" not in spec
    assert container["image"] == "registry.example/netpolcheck-probe:0.1.0"
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW", "NET_BIND_SERVICE"]}
    assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False
    assert security["readOnlyRootFilesystem"] is True
    args = build_parser().parse_args(container["args"])  # the args are valid agent arguments
    assert (args.command, args.tcp, args.udp) == ("serve", [80, 81], [80, 81])
    assert container["readinessProbe"]["exec"]["command"] == ["python", "-m", "netpolcheck.probe", "ready"]
    declared = {(p["containerPort"], p["protocol"]) for p in container["ports"]}
    assert declared == {(80, "TCP"), (81, "TCP"), (80, "UDP"), (81, "UDP")}


def test_dockerfile_pins_scapy_like_the_project_and_runs_the_agent() -> None:
    text = DOCKERFILE.read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    (pin,) = re.findall(r"scapy==[\d.]+", pyproject)
    assert re.findall(r"scapy==[\d.]+", text) == [pin]
    assert 'ENTRYPOINT ["python", "-m", "netpolcheck.probe"]' in text
    assert "libpcap" in text
    copied = re.findall(r"^COPY (\S+)", text, flags=re.MULTILINE)
    assert copied == ["netpolcheck/__init__.py", "netpolcheck/probe/"], "the image carries the agent only"


def test_the_agent_imports_nothing_else_from_netpolcheck() -> None:
    for source in (ROOT / "netpolcheck" / "probe").glob("*.py"):
        for module in re.findall(
            r"^\s*(?:from|import) (netpolcheck[\w.]*)", source.read_text(), re.MULTILINE
        ):
            assert module == "netpolcheck.probe" or module.startswith("netpolcheck.probe."), (source, module)
