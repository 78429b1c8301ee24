"""Exec in a pod over the API's websocket: stdout, stderr and the exit code; the probe agent on top.

`_preload_content=False` is required: the client's default returns stdout and stderr mixed into one
string and no exit code. stdin is ended with the v5 protocol's close frame; a server that only speaks
v4 gets the input through `sh -c` instead (the probe image has a shell).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
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


def probe(
    api: KubeApi,
    pod_ref: str | tuple[str, str],
    targets: Sequence[dict[str, Any]],
    timeout: float = 1.0,
    retries: int = 7,
    container: str | None = None,
) -> list[dict[str, Any]]:
    """One exec of `python -m netpolcheck.probe probe` in the source pod, targets as JSON on stdin.

    Returns the agent's results (id, verdict, attempts, rtt_ms, evidence), in the targets' order."""
    if not targets:
        return []
    command = [
        "python",
        "-m",
        "netpolcheck.probe",
        "probe",
        "--timeout",
        str(timeout),
        "--retries",
        str(retries),
    ]
    result = exec_in(api, pod_ref, command, json.dumps(list(targets)), container, timeout=timeout * 4 + 60)
    if result.exit_code != PROBE_PARTIAL:  # a partial result still lists every target (docs/probe.md)
        result.check(f"probe in {pod_ref if isinstance(pod_ref, str) else '/'.join(pod_ref)}")
    try:
        by_id = {r["id"]: r for r in json.loads(result.stdout)}
        return [by_id[str(t["id"])] for t in targets]
    except (ValueError, KeyError, TypeError) as exc:
        raise ExecError(
            f"probe agent output is not the expected JSON ({exc!r}): {result.stdout[:300]!r}"
        ) from None
