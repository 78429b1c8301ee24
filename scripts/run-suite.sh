#!/usr/bin/env bash
# The main command: set up a fresh Debian/Ubuntu machine (as root) and run the whole conformance suite on
# the embedded cluster with the reference controller. Arguments go to pytest, e.g.
#   bash scripts/run-suite.sh --profile spec      bash scripts/run-suite.sh -k tutorial -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
exec python3 -m tox -e hollow -- "$@"
