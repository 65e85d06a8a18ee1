"""Reliability: fault and bad-input classes, counted. Every class writes its result (trials, losses) with
``hwcap_dev.reliability.record``; ``make reliability`` runs them at full scale (HWCAP_RELIABILITY=full) and
renders docs/reliability.md; the regular suite runs the same tests with small counts (the CI subset).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hwcap_dev import reliability


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where this run's results go: build/reliability for ``make reliability``, a temporary directory otherwise
    (a CI run must not overwrite the full run's numbers)."""
    if reliability.full_scale():
        yield reliability.results_dir()
    else:
        yield tmp_path_factory.mktemp("reliability")
