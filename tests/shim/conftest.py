"""Fixtures for the hwcap-exec tests: the built binary, a world-writable work dir, root and nobody.

A test that takes ``hwcap_exec`` (the built binary) or ``driver`` (a test program musl-gcc builds) is
``needs_binaries``; one that takes ``user`` runs the binary as root and as nobody: ``needs_root``. Tests that need
root or a compiler otherwise carry the mark themselves.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hwcap_exec_support import shared_tmpdir

from hwcap_dev.shim import shim_path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:
            continue
        fixtures = getattr(item, "fixturenames", ())
        if "hwcap_exec" in fixtures or "driver" in fixtures:  # the built binary, or a test driver musl-gcc builds
            item.add_marker(pytest.mark.needs_binaries)
        if "user" in fixtures:
            item.add_marker(pytest.mark.needs_root)


@pytest.fixture(scope="session")
def hwcap_exec() -> Path:
    """The binary under test, built from src/shim by make (as `make test` does)."""
    return shim_path()


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = shared_tmpdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["root", "nobody"])
def user(request: pytest.FixtureRequest) -> str:
    """Who runs the binary: root (CI) and uid/gid 65534 with no capabilities, via setpriv."""
    if os.geteuid() != 0:
        pytest.fail("the hwcap-exec tests start the binary as root and as nobody: run them as root (CI does)")
    return str(request.param)
