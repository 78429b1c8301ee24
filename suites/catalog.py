"""Case builder for the policy catalog: the 3 namespaces x 3 pods topology (x, y, z; a, b, c; pods
spread over the nodes; TCP and UDP on 80 and 81), a policy or a few steps, one case per behaviour."""

from __future__ import annotations

from typing import Any

import pytest

from netpolcheck.model.profiles import LEGACY_ISOLATION
from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import probes, xyz_namespaces, xyz_pods
from netpolcheck.verdict.driver import Driver
from netpolcheck.verdict.profile import implementation_profile


def xyz_case(
    case_id: str,
    *steps: c.Step,
    check_first: bool = False,
    probed: tuple[c.ProbeDef, ...] | None = None,
    **kw: Any,
) -> c.Case:
    """A case on the xyz topology; its first check comes after the first step unless `check_first`;
    `probed` replaces the default probes (TCP and UDP on 80 and 81)."""
    return c.Case(case_id, xyz_namespaces(), xyz_pods(), tuple(steps), probed or probes(), check_first, **kw)


def apply(namespace: str, manifest: dict[str, Any]) -> c.ApplyPolicy:
    return c.ApplyPolicy(namespace, manifest)


def params(*cases: c.Case, marks: tuple[Any, ...] = ()) -> list[Any]:
    """pytest params whose ids are the case ids (they read as the behaviour)."""
    return [pytest.param(case, id=case.id, marks=marks) for case in cases]


def needs_isolation_by_policy(driver: Driver) -> None:
    """Skip, with the documented reason, a test whose point is a denied cell (how it is denied, that
    both allowed and denied cells exist) where the running Weave lets no policy deny anything: 2.0.x
    isolates only through the DefaultDeny namespace annotation (docs/weave-facts.md#legacy-isolation).
    The matrix of such a case would still be right there; what the test proves would not be."""
    version = driver.info().weave_version
    profile = implementation_profile(version)
    if profile is not None and profile.has(LEGACY_ISOLATION):
        deviation = profile.deviation(LEGACY_ISOLATION)
        pytest.skip(
            f"Weave {version}: a policy denies nothing here ({deviation.reason}; {deviation.provenance}), "
            "and this test needs a denied cell"
        )
