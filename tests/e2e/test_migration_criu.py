"""CRIU for migration: the pinned Debian trixie 4.1.1 in its private prefix passes ``criu check`` here.

Bookworm's 3.17.1 (the system package) fails on this kernel ("Unexpected rt vDSO area bounds"); the wrapper
runs trixie's criu with trixie's own loader and libc, so what is checked is exactly what runc is given.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from hwcap_dev.devcluster import criu

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_binaries]


@pytest.fixture(scope="module")
def installed() -> criu.CriuInstall:
    if os.geteuid() != 0:
        pytest.fail("criu check needs root (run the needs_root tests as root)")
    return criu.ensure_criu()


def test_pinned_criu_says_looks_good_on_this_kernel(installed: criu.CriuInstall) -> None:
    ok, output = criu.criu_check(installed.criu)
    assert ok, output
    # "Looks good." last, or followed by the TCP-socket shutdown probe's line (seen inside the full suite only)
    assert output.splitlines()[-1] == "Looks good." or criu.TCP_SHUTDOWN_PROBE in output, output
    assert installed.check_ok, installed.check_output  # the verdict recorded at install time agrees


def test_wrapper_runs_the_pinned_version_from_its_private_prefix(installed: criu.CriuInstall) -> None:
    version = subprocess.run([str(installed.criu), "--version"], capture_output=True, text=True, check=True).stdout
    assert f"Version: {criu.CRIU_PINS.criu}" in version
    maps = subprocess.run(
        [str(installed.criu), "exec-helper-that-does-not-exist"], capture_output=True, text=True, check=False,
    )
    assert maps.returncode != 0  # a bad verb is refused by criu itself, not by a missing library
    assert "error while loading shared libraries" not in maps.stderr
    # the system's libc is untouched: dpkg still reports bookworm's
    system_libc = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libc6"], capture_output=True,
                                 text=True, check=True).stdout
    assert not system_libc.startswith("2.41"), system_libc


def test_a_second_install_reuses_the_cache(installed: criu.CriuInstall) -> None:
    again = criu.ensure_criu()
    assert again.cached and again.criu == installed.criu
