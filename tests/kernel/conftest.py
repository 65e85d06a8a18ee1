"""Fixtures of the kernel conformance lab: the CI subset of the matrix, booted once per test session.

The subset (see README.md) is chosen to fit the CI budget; ``make conformance`` runs every CPU model.
``HWCAP_LAB_MODELS`` (comma list) overrides the subset, e.g. to try one model quickly.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kernellab.build import VARIANT_ARCHES, VARIANTS
from kernellab.guest import CpuModel, model_by_key
from kernellab.lab import ModelRun, boot_model

#: CI subset, four kernels (about 11 min cold on an idle 2-core machine, 320 s CPU per kernel at -j2):
#: the v5 kernel on all seven arm64 models (the issue's "six arm64 models"), the unpatched kernel on two of
#: them, the v5 kernel with the v5 base's PR_SET_MM_AUXV copy rule on max, and x86_64 Skylake-Server on v5.
#: `make conformance` runs every model on every kernel (x86_64 unpatched included).
CI_SUBSET: tuple[tuple[str, str], ...] = (
    *(("v5", m) for m in ("cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "neoverse-n1", "a64fx", "max")),
    ("none", "cortex-a53"),
    ("none", "max"),
    ("v5-lencopy", "max"),
    ("v5", "amd64/Skylake-Server"),
)


_TIMINGS: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Repeat the lab's build and boot times at the end of the run (CI logs: first build time)."""
    if _TIMINGS:
        terminalreporter.section("kernel lab")
        for line in _TIMINGS:
            terminalreporter.write_line(line)


def _subset() -> list[tuple[str, CpuModel]]:
    override = os.environ.get("HWCAP_LAB_MODELS")
    if override:
        models = [model_by_key(m) for m in override.split(",") if m]
        return [(v, m) for v in VARIANTS for m in models if m.arch in VARIANT_ARCHES.get(v, (m.arch,))]
    return [(v, model_by_key(m)) for v, m in CI_SUBSET]


@pytest.fixture(scope="session")
def lab_runs(pytestconfig: pytest.Config) -> Iterator[list[ModelRun]]:
    """Boot the subset once. Kernel builds and boot times go to the terminal even under output capture, so
    a CI log shows how long the first (cold) build took."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def log(msg: str) -> None:
        _TIMINGS.append(msg)
        if capture is None:
            print(msg, file=sys.stderr, flush=True)
            return
        with capture.global_and_fixture_disabled():
            print(msg, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    runs = [boot_model(variant, model, log=log) for variant, model in _subset()]
    log(f"[kernellab] {len(runs)} boots (with any kernel builds) took {time.monotonic() - t0:.0f} s")
    yield runs
