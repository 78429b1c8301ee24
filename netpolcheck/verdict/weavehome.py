"""Where Weave goes back to after a case that moved it, and when (docs/verdict.md, "Putting Weave back").

Without a `WeaveHome`, a case that installs or upgrades Weave rolls it back at its own end. On the
embedded cluster that is one more node-by-node rollout (the manifest's `minReadySeconds: 5` a node,
about 18 s for 3 nodes), paid even when nothing else runs on the cluster afterwards. With one, the
runner leaves Weave where the case put it; the next case that runs on the session's version puts it
back before it starts, and the session's end does when the cluster outlives the session.

Only without pytest-xdist: there a cluster-wide case runs alone for its own duration only, so it must
put Weave back before it ends (the runner without a `WeaveHome`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netpolcheck.verdict.driver import Driver


@dataclass
class WeaveHome:
    """The Weave version the session found on its cluster (None: no Weave found, nothing to restore)."""

    version: str | None

    def moved(self, driver: Driver) -> str | None:
        """The version Weave runs now when it is not the session's, else None."""
        now = driver.info().weave_version
        return now if self.version is not None and now != self.version else None

    def bring_back(self, driver: Driver, progress: Callable[[str], None], why: str) -> bool:
        """Put Weave back on the session's version if a case moved it; whether it did."""
        now = self.moved(driver)
        if now is None or self.version is None:
            return False
        progress(f"putting Weave back from {now} to {self.version} ({why})")
        driver.upgrade_weave(self.version)
        return True
