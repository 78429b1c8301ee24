"""Case builder for the policy catalog: the 3 namespaces x 3 pods topology (x, y, z; a, b, c; pods
spread over the nodes; TCP and UDP on 80 and 81), a policy or a few steps, one case per behaviour."""

from __future__ import annotations

from typing import Any

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import probes, xyz_namespaces, xyz_pods


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
