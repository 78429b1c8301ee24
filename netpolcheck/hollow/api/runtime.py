"""What the API server needs from the kubelet (docs/hollow-internals.md, "Pod runtime")."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Protocol


class ExecError(Exception):
    """The runtime cannot exec into that container; the message goes back to the client."""


class PodRuntime(Protocol):
    def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> subprocess.Popen[bytes]: ...

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None: ...
