"""Root conftest: command-line options and plugin registration only (see DESIGN.md).

The fixtures live in `fixtures/` and are registered here as plugins as the suites that need them land.
"""

from __future__ import annotations

pytest_plugins: list[str] = ["fixtures.verdict"]
