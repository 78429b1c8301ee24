"""Runs `python -m netpolcheck.npc` in a node namespace against tests/npc/nodeapi.py; stops it by PID."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from tests.npc.nodeapi import NodeApi


class ControllerProcess:
    def __init__(
        self,
        netns: str,
        node: str,
        api: NodeApi,
        version: str = "2.8.1",
        faults: tuple[str, ...] = (),
        extra: tuple[str, ...] = (),
    ) -> None:
        self.netns, self.node, self.api, self.version = netns, node, api, version
        self.faults, self.extra = faults, extra
        self.proc: subprocess.Popen[bytes] | None = None
        handle, name = tempfile.mkstemp(prefix="npcref-log-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)

    def start(self) -> ControllerProcess:
        argv = [
            "ip",
            "netns",
            "exec",
            self.netns,
            sys.executable,
            "-m",
            "netpolcheck.npc",
            "--node-name",
            self.node,
            "--version",
            self.version,
            "--serviceaccount-dir",
            str(self.api.dir),
            "--metrics-addr",
            "",
            "--watch-timeout",
            "30",
            *self.extra,
        ]
        for fault in self.faults:
            argv += ["--fault", fault]
        env = {**os.environ, "KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> ControllerProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)
