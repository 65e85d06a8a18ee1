"""hwcap_dev.shim: which hwcap-exec callers get, and what a broken build or a bad path reports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hwcap_dev import shim


def _source_copy(tmp_path: Path) -> Path:
    src = tmp_path / "shim"
    src.mkdir()
    for name in ("hwcap-exec.c", "proc_stat.h", "Makefile"):
        shutil.copy(shim.SOURCE_DIR / name, src / name)
    return src


def test_explicit_path_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exe = tmp_path / "my-hwcap-exec"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv(shim.ENV_VAR, str(exe))
    assert shim.shim_path() == exe


def test_explicit_path_that_is_not_executable_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "not-exec"
    bad.write_text("")
    monkeypatch.setenv(shim.ENV_VAR, str(bad))
    with pytest.raises(shim.ShimNotFound, match=rf"HWCAP_EXEC={bad}: not an executable file"):
        shim.shim_path()


@pytest.mark.needs_binaries
def test_source_checkout_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(shim.ENV_VAR, raising=False)
    path = shim.shim_path()
    assert path == shim.SOURCE_DIR / "build" / "hwcap-exec"
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("hwcap-exec ")


@pytest.mark.needs_binaries
def test_a_failed_build_reports_the_compiler_error(tmp_path: Path) -> None:
    src = _source_copy(tmp_path)
    with (src / "hwcap-exec.c").open("a") as f:
        f.write("\nint broken_on_purpose(void) { return undeclared_name; }\n")
    with pytest.raises(shim.ShimNotFound, match=r"(?s)building .*failed.*undeclared_name"):
        shim.build_shim(src)


@pytest.mark.needs_binaries
def test_a_fresh_copy_builds_into_its_own_build_dir(tmp_path: Path) -> None:
    src = _source_copy(tmp_path)
    built = shim.build_shim(src)
    assert built == src / "build" / "hwcap-exec"
    assert subprocess.run([str(built), "--help"], capture_output=True, check=False).returncode == 0
