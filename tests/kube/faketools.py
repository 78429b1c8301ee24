"""Fake `kind`, `docker` and `kops` executables that record their argv (one JSON list a line).

They behave just enough for the provisioners: `kind create cluster --kubeconfig=P`, `kind export
kubeconfig ... --kubeconfig P` and `kops export kubeconfig ... --kubeconfig P` copy $FAKE_KUBECONFIG
to P (a real cluster's kubeconfig: the embedded cluster's, so the Weave install that follows is real);
`docker info` fails like a client without a daemon when FAKE_DOCKER_DAEMON=down; `kops version` prints
$FAKE_KOPS_VERSION.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCRIPT = """#!{python}
import json, os, shutil, sys
argv = [os.path.basename(sys.argv[0]), *sys.argv[1:]]
with open(os.environ["FAKE_TOOL_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
args = sys.argv[1:]
def kubeconfig_target():
    for i, a in enumerate(args):
        if a.startswith("--kubeconfig="):
            return a.split("=", 1)[1]
        if a == "--kubeconfig":
            return args[i + 1]
if argv[0] == "docker" and args[:1] == ["info"] and os.environ.get("FAKE_DOCKER_DAEMON") == "down":
    sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                     "Is the docker daemon running?\\n")
    sys.exit(1)
if argv[0] == "kops" and args[:1] == ["version"]:
    print("Client version: " + os.environ.get("FAKE_KOPS_VERSION", "1.30.1"))
if args[:2] in (["create", "cluster"], ["export", "kubeconfig"]) and kubeconfig_target():
    shutil.copyfile(os.environ["FAKE_KUBECONFIG"], kubeconfig_target())
"""


def install(bin_dir: Path, *tools: str) -> Path:
    """Write the fake `tools` into `bin_dir` (0700); returns bin_dir."""
    bin_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for tool in tools:
        path = bin_dir / tool
        path.write_text(SCRIPT.format(python=sys.executable))
        path.chmod(0o700)
    return bin_dir


def recorded(log: Path) -> list[list[str]]:
    """Every recorded command, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]
