"""Fixtures for the probe agent tests: a lab of pod namespaces on a bridge, torn down whatever happens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.probe.netlab import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    created = Lab().start()
    try:
        yield created
    finally:
        created.close()
