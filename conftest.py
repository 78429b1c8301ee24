"""Root conftest: command-line options and plugin registration only (see docs/design.md#layout).

The options live in fixtures/options.py, the fixtures in the other fixtures/ modules.
"""

from __future__ import annotations

pytest_plugins: list[str] = [
    "fixtures.interrupt",  # SIGTERM and SIGHUP stop the run with its clean-up, as Ctrl-C does
    "fixtures.progress",  # what the run is doing, printed live (case, step, what it waits for)
    "fixtures.options",
    "fixtures.cluster",
    "fixtures.weave",
    "fixtures.topology",
    "fixtures.policies",
    "fixtures.verdict",
    "fixtures.parallel",
]
