"""`pods/{name}/exec` over websocket: the channel.k8s.io protocols v1..v5, on top of PodRuntime.exec.

Each binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error/status,
4 resize (ignored: no terminal sizes here). From v4 the status is a JSON Status (NonZeroExitCode
with the exit code in details.causes); v5 adds channel 255 "close this stream" (stdin EOF).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import BadRequest
from netpolcheck.hollow.api.websocket import OP_BINARY, OP_TEXT, WebSocket, WebSocketClosed

if TYPE_CHECKING:
    from netpolcheck.hollow.api.rest import Target
    from netpolcheck.hollow.api.server import ApiServer, RequestHandler

log = logging.getLogger(__name__)

# Server preference, best first.
PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
POLL_SECONDS = 0.25
OUTPUT_DRAIN_SECONDS = 2.0  # after exit, how long to wait for pipes held open by leftover children


def choose_protocol(offered_header: str) -> str | None:
    offered = {p.strip() for p in offered_header.split(",") if p.strip()}
    return next((p for p in PROTOCOLS if p in offered), None)


def _exit_status(code: int, command: list[str]) -> dict[str, Any]:
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command {command}, "
        f"exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _failure_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500}


def _container_name(api: ApiServer, t: Target, requested: str | None) -> str:
    assert t.name is not None
    pod = api.store.get(r.PODS, t.namespace, t.name)
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    ephemeral = [c.get("name") for c in spec.get("ephemeralContainers") or []]
    if requested:
        if requested not in names + ephemeral:
            raise BadRequest(f"container {requested} is not valid for pod {t.name}")
        return requested
    if len(names) == 1:
        return str(names[0])
    raise BadRequest(
        f"a container name must be specified for pod {t.name}, choose one of: [{' '.join(names)}]"
    )


def handle(api: ApiServer, h: RequestHandler, t: Target) -> None:
    command = h.params("command")
    if not command:
        raise BadRequest("you must specify at least 1 command")
    container = _container_name(api, t, h.param("container"))
    if "websocket" not in (h.headers.get("Upgrade") or "").lower():
        raise BadRequest("Upgrade request required (this server speaks exec over websocket only)")
    if api.runtime is None:
        raise BadRequest("this cluster has no pod runtime to exec into")
    protocol = choose_protocol(h.headers.get("Sec-WebSocket-Protocol") or "")
    ws = h.upgrade_websocket(protocol)
    session = _ExecSession(
        api,
        ws,
        protocol or "channel.k8s.io",
        command,
        want_stdin=h.flag("stdin"),
        want_stdout=h.flag("stdout") or not h.param("stdout"),
        want_stderr=h.flag("stderr"),
        tty=h.flag("tty"),
    )
    assert t.name is not None and t.namespace is not None
    session.run(t.namespace, t.name, container)


class _ExecSession:
    def __init__(
        self,
        api: ApiServer,
        ws: WebSocket,
        protocol: str,
        command: list[str],
        *,
        want_stdin: bool,
        want_stdout: bool,
        want_stderr: bool,
        tty: bool,
    ) -> None:
        self.api, self.ws, self.protocol, self.command = api, ws, protocol, command
        self.want_stdin, self.want_stdout, self.want_stderr, self.tty = (
            want_stdin,
            want_stdout,
            want_stderr,
            tty,
        )
        self.client_gone = threading.Event()

    def _send(self, channel: int, data: bytes) -> None:
        try:
            self.ws.send(OP_BINARY, bytes([channel]) + data)
        except (OSError, WebSocketClosed):
            self.client_gone.set()

    def _send_status(self, status: dict[str, Any]) -> None:
        if self.protocol in ("v4.channel.k8s.io", "v5.channel.k8s.io"):
            self._send(ERROR, json.dumps(status).encode())
        elif status["status"] != "Success":
            self._send(ERROR, status["message"].encode())

    def run(self, namespace: str, pod: str, container: str) -> None:
        assert self.api.runtime is not None
        for channel in (STDOUT, STDERR, ERROR):
            self._send(channel, b"")  # an empty message tells old clients each channel is open
        try:
            proc = self.api.runtime.exec(
                namespace, pod, container, self.command, stdin=self.want_stdin, tty=self.tty
            )
        except Exception as exc:  # ExecError, or the OS refusing to start the program
            self._send_status(_failure_status(str(exc) or type(exc).__name__))
            self.ws.close()
            return
        pumps = [threading.Thread(target=self._read_client, args=(proc,), daemon=True, name="exec-stdin")]
        outputs = []
        for stream, channel, wanted in (
            (proc.stdout, STDOUT, self.want_stdout),
            (proc.stderr, STDERR, self.want_stderr),
        ):
            if stream is not None:
                outputs.append(
                    threading.Thread(
                        target=self._pump,
                        args=(stream, channel, wanted),
                        daemon=True,
                        name=f"exec-out-{channel}",
                    )
                )
        for thread in pumps + outputs:
            thread.start()
        code = self._wait(proc)
        drain_until = time.monotonic() + OUTPUT_DRAIN_SECONDS
        for thread in outputs:
            thread.join(max(0.0, drain_until - time.monotonic()))
        if code is not None:
            self._send_status(_exit_status(code, self.command))
        self.ws.close()

    def _wait(self, proc: subprocess.Popen[bytes]) -> int | None:
        """Exit code, or None when the client left or the server stops (then the process is ended)."""
        while True:
            try:
                return proc.wait(timeout=POLL_SECONDS)
            except subprocess.TimeoutExpired:
                if self.client_gone.is_set() or self.api.stopping.is_set():
                    break
        proc.terminate()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=2)
        return None

    def _pump(self, stream: Any, channel: int, wanted: bool) -> None:
        fd = stream.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            if wanted:
                self._send(channel, data)
        stream.close()

    def _read_client(self, proc: subprocess.Popen[bytes]) -> None:
        stdin = proc.stdin
        try:
            while True:
                opcode, message = self.ws.recv()
                if opcode not in (OP_BINARY, OP_TEXT) or not message:
                    continue
                channel, payload = message[0], message[1:]
                if channel == STDIN and stdin is not None and not stdin.closed:
                    try:
                        stdin.write(payload)
                        stdin.flush()
                    except (BrokenPipeError, ValueError):
                        pass
                elif channel == CLOSE and payload[:1] == bytes([STDIN]) and stdin is not None:
                    stdin.close()
        except (WebSocketClosed, OSError):
            if proc.poll() is None:
                self.client_gone.set()
        finally:
            if stdin is not None and not stdin.closed:
                with contextlib.suppress(BrokenPipeError):
                    stdin.close()
