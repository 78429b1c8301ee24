"""One NetworkPolicy validation: the STATE parser and the embedded API server's admission agree.

Both call `netpolcheck.model.apivalidation`; here every bad policy of the hostile-input cases is given
to both, and both must refuse it on the same field with the same message.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from netpolcheck.errors import UsageError
from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.admission import admit
from netpolcheck.hollow.api.errors import ApiError
from netpolcheck.model.state import parse_state
from tests.model.builders import one_policy_world
from tests.model.test_hostile_input import CASES


def _policy_cases() -> list[tuple[str, Any]]:
    out = []
    for name, mutate, _ in CASES:
        doc = one_policy_world(externals=[{"name": "world", "ip": "203.0.113.7"}])
        before = copy.deepcopy(doc["policies"])
        mutate(doc)
        # the API server takes the namespace from the URL and checks it there, not in admission
        if doc["policies"] != before and "policy namespace" not in name:
            out.append((name, doc))
    return out


POLICY_CASES = _policy_cases()


def test_there_are_policy_cases() -> None:
    assert len(POLICY_CASES) >= 30


@pytest.mark.parametrize("doc", [d for _, d in POLICY_CASES], ids=[n for n, _ in POLICY_CASES])
def test_state_parser_and_admission_refuse_the_same_field(doc: dict[str, Any]) -> None:
    with pytest.raises(UsageError) as model_error:
        parse_state(doc)
    policy = copy.deepcopy(doc["policies"][0])
    with pytest.raises(ApiError) as api_error:
        admit(r.NETWORKPOLICIES, policy, None)
    details = api_error.value.details or {}
    field, message = details["causes"][0]["field"], details["causes"][0]["message"]
    assert f": {field}: {message}" in str(model_error.value)
