"""Exec in a pod over the API's websocket: stdout, stderr and the exit code; the probe agent on top.

`_preload_content=False` is required: the client's default returns stdout and stderr mixed into one
string and no exit code. stdin is ended with the v5 protocol's close frame; a server that only speaks
v4 gets the input through `sh -c` instead (the probe image has a shell).
"""

from __future__ import annotations

import ast
import functools
import json
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.stream import stream

from netpolcheck.kube.connection import KubeApi

V5 = "v5.channel.k8s.io"
STDIN = 0


class ExecError(RuntimeError):
    """The exec itself failed (the command did not finish in time, or the agent's output was unusable)."""


@dataclass(frozen=True)
class ExecResult:
    stdout: str
    stderr: str
    exit_code: int | None  # None: the command did not finish within the timeout

    def check(self, what: str) -> ExecResult:
        """This result, or ExecError naming `what`, the exit code and the end of stderr."""
        if self.exit_code != 0:
            raise ExecError(f"{what} exited with {self.exit_code}: {self.stderr.strip()[-500:]}")
        return self


def split_ref(pod_ref: str | tuple[str, str]) -> tuple[str, str]:
    """('ns', 'name') from 'ns/name' or a tuple."""
    if isinstance(pod_ref, tuple):
        return pod_ref
    namespace, _, name = pod_ref.partition("/")
    if not name:
        raise ValueError(f"pod reference {pod_ref!r} is not NAMESPACE/NAME")
    return namespace, name


def exec_in(
    api: KubeApi,
    pod_ref: str | tuple[str, str],
    command: Sequence[str],
    stdin: str | None = None,
    container: str | None = None,
    timeout: float = 60.0,
) -> ExecResult:
    """Run `command` in the pod (its first container unless `container`); wait at most `timeout` s."""
    namespace, name = split_ref(pod_ref)
    kwargs: dict[str, Any] = {"container": container} if container else {}
    ws = stream(
        api.core.connect_get_namespaced_pod_exec,
        name,
        namespace,
        command=list(command),
        stdin=stdin is not None,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
        **kwargs,
    )
    try:
        if stdin is not None:
            if ws.subprotocol != V5:
                ws.close()
                wrapped = f"printf %s {shlex.quote(stdin)} | {shlex.join(command)}"
                return exec_in(api, pod_ref, ["sh", "-c", wrapped], None, container, timeout)
            ws.write_stdin(stdin)
            ws.close_channel(STDIN)
        deadline = time.monotonic() + timeout
        while ws.is_open() and time.monotonic() < deadline:
            ws.update(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
        code = ws.returncode if not ws.is_open() else None
        return ExecResult(ws.read_stdout() or "", ws.read_stderr() or "", code)
    finally:
        ws.close()


PROBE_PARTIAL = 3  # the agent stopped early: unfinished targets have verdict "error" with the reason
NO_AGENT = 4  # the relay (or `ask`): no resident agent in the pod, nothing ran
AGENT = ["python", "-m", "netpolcheck.probe"]


class NoResidentAgent(ExecError):
    """The pod has no resident agent (an old image, or its serve runs without one): the reason."""


@dataclass(frozen=True)
class AgentAnswer:
    """The resident agent's answer, and when the exec was sent and returned (this machine's Unix time)."""

    document: dict[str, Any]
    sent: float
    returned: float

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self.document.get("results") or [])


def _where(pod_ref: str | tuple[str, str]) -> str:
    return pod_ref if isinstance(pod_ref, str) else "/".join(pod_ref)


RELAY_FILE = Path(__file__).resolve().parents[1] / "probe" / "relay.py"


def _is_docstring(node: ast.AST) -> bool:
    value = node.value if isinstance(node, ast.Expr) else None
    return isinstance(value, ast.Constant) and isinstance(value.value, str)


@functools.cache
def relay_code() -> str:
    """The relay (netpolcheck/probe/relay.py), read as text, never imported: the engine's client of a
    pod's agent, run as `python -I -S -c CODE` so no site-packages and nothing of this package load in
    the pod. Docstrings and comments are left out: the code travels in the exec's URL."""
    tree = ast.parse(RELAY_FILE.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            body[0] = ast.Pass()
    return ast.unparse(tree)


def ask(
    api: KubeApi,
    pod_ref: str | tuple[str, str],
    request: Mapping[str, Any],
    wait: float = 0.0,
    container: str | None = None,
) -> AgentAnswer:
    """One exec of the relay handing `request` (the agent's JSON request, docs/probe.md) to the pod's
    resident agent; `wait`: how long the agent may take to answer, beyond the usual.

    NoResidentAgent when the pod has none (the relay exits 4 and nothing ran)."""
    seconds = wait + 30.0
    command = ["python", "-I", "-S", "-c", relay_code(), f"{seconds:g}"]
    sent = time.time()
    result = exec_in(api, pod_ref, command, json.dumps(dict(request)), container, timeout=seconds + 30)
    returned = time.time()
    where, op = _where(pod_ref), request.get("op")
    if result.exit_code == NO_AGENT:
        raise NoResidentAgent(f"no resident agent in {where}: {result.stderr.strip()[-300:]}")
    result.check(f"the relay of a {op} request in {where}")
    try:
        document = json.loads(result.stdout)
        if not isinstance(document, dict):
            raise TypeError("not an object")
    except (ValueError, TypeError) as exc:
        raise ExecError(
            f"the agent's answer is not the expected JSON ({exc}): {result.stdout[:300]!r}"
        ) from None
    if "error" in document:
        raise ExecError(f"the resident agent in {where} refused the {op} request: {document['error']}")
    return AgentAnswer(document, sent, returned)


def _in_order(results: list[dict[str, Any]], targets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        by_id = {r["id"]: r for r in results}
        return [by_id[str(t["id"])] for t in targets]
    except (KeyError, TypeError) as exc:
        raise ExecError(f"probe agent output lacks a target ({exc!r}): {results[:3]!r}") from None


def probe(
    api: KubeApi,
    pod_ref: str | tuple[str, str],
    targets: Sequence[dict[str, Any]],
    timeout: float = 1.0,
    retries: int = 7,
    container: str | None = None,
) -> list[dict[str, Any]]:
    """Probe `targets` from the pod: through its resident agent (`ask`), else the one-shot `probe`.

    Returns the agent's results (id, verdict, attempts, rtt_ms, evidence), in the targets' order; each
    says how it was probed: `agent` is "resident" or "one-shot", and a one-shot result carries
    `fallback`, the reason no resident agent answered (never silently)."""
    if not targets:
        return []
    request = {"op": "probe", "targets": list(targets), "timeout": timeout, "retries": retries}
    try:
        answer = ask(api, pod_ref, request, timeout * 4, container)
        kind, fallback = str(answer.document.get("agent", "resident")), answer.document.get("fallback")
        results = answer.results
    except NoResidentAgent as exc:
        kind, fallback = "one-shot", str(exc)
        options = ["--timeout", str(timeout), "--retries", str(retries)]
        results = one_shot(api, pod_ref, targets, options, timeout, container)
    ordered = _in_order(results, targets)
    for result in ordered:
        result["agent"] = kind
        if fallback:
            result["fallback"] = fallback
    return ordered


def one_shot(
    api: KubeApi,
    pod_ref: str | tuple[str, str],
    targets: Sequence[dict[str, Any]],
    options: list[str],
    timeout: float,
    container: str | None,
) -> list[dict[str, Any]]:
    """One exec of `python -m netpolcheck.probe probe` (what pods without `ask` understand)."""
    command = [*AGENT, "probe", *options]
    result = exec_in(api, pod_ref, command, json.dumps(list(targets)), container, timeout=timeout * 4 + 60)
    if result.exit_code != PROBE_PARTIAL:
        result.check(f"probe in {_where(pod_ref)}")
    try:
        document = json.loads(result.stdout)
    except ValueError as exc:
        raise ExecError(
            f"probe agent output is not the expected JSON ({exc!r}): {result.stdout[:300]!r}"
        ) from None
    return list(document) if isinstance(document, list) else []
