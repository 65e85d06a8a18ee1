"""Waiting in tests: the development tooling's polling loop, failing as a test failure with the last value seen."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hwcap_dev import waiting

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 45.0, interval: float = 0.25) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` and the last value seen."""
    try:
        return waiting.wait_for(what, probe, timeout, interval)
    except waiting.WaitTimeout as err:
        raise AssertionError(f"{err}; last seen: {err.last!r}") from None
