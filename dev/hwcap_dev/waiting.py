"""Polling until something holds: the one loop the demo and the test suite share.

Readiness has no event to wait on (an apiserver that answers, a condition the operator writes, a port that
opens), so callers poll. The probe runs once more after the deadline, so a slow last step is not lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """``probe`` never returned something truthy in time; ``last`` is what it returned the last time."""

    def __init__(self, what: str, timeout: float, last: Any) -> None:
        super().__init__(f"timed out after {timeout:.0f}s waiting for {what}")
        self.what, self.timeout, self.last = what, timeout, last


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.3) -> T:
    """Poll ``probe`` every ``interval`` seconds until it returns something truthy, and return that.

    :raises WaitTimeout: naming ``what`` once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(what, timeout, value)
        time.sleep(interval)
