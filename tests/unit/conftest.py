"""Fixtures for pure-logic unit tests: the real CPU dumps in tests/data/profiles."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.support.profiles import read_profile


@pytest.fixture
def profile() -> Callable[[str], str]:
    """``profile(name)`` returns the text of tests/data/profiles/<name>."""
    return read_profile
