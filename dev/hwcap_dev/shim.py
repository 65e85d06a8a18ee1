"""Locate the ``hwcap-exec`` init-step binary, building it from a source checkout when needed.

The webhook's init container copies this binary into the pod; the tests and the kernel lab run it. One
lookup order everywhere, so every caller runs the same file:

1. ``$HWCAP_EXEC`` — an explicit path (the operator image sets it to its installed copy);
2. a source checkout (``src/shim/hwcap-exec.c`` next to this package): ``make -C src/shim``
   (a no-op when up to date; musl from Debian's ``musl-tools``) and its ``build/hwcap-exec``;
3. ``hwcap-exec`` on ``$PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

from hwcap_dev import paths

#: Environment variable naming the binary explicitly.
ENV_VAR: Final = "HWCAP_EXEC"
#: ``src/shim`` in the source checkout the development tools run from.
SOURCE_DIR: Final = paths.SHIM_SOURCE_DIR
BINARY_NAME: Final = "hwcap-exec"


class ShimNotFound(RuntimeError):
    """No usable hwcap-exec: the message says where it looked and why each place failed."""


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def build_shim(source_dir: Path = SOURCE_DIR) -> Path:
    """Run ``make`` in ``source_dir`` and return the built binary; a failed build raises with make's output."""
    proc = subprocess.run(["make", "-s", "-C", str(source_dir)], capture_output=True, text=True, check=False)
    out = source_dir / "build" / BINARY_NAME
    if proc.returncode != 0 or not _is_executable(out):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ShimNotFound(f"building {out} with make failed (exit {proc.returncode}):\n{tail}")
    return out


def shim_path(*, build: bool = True) -> Path:
    """The hwcap-exec to run; with ``build`` a source checkout's binary is (re)built by make first."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        path = Path(explicit)
        if not _is_executable(path):
            raise ShimNotFound(f"{ENV_VAR}={explicit}: not an executable file")
        return path
    if (SOURCE_DIR / "hwcap-exec.c").is_file():
        if build:
            return build_shim(SOURCE_DIR)
        built = SOURCE_DIR / "build" / BINARY_NAME
        if _is_executable(built):
            return built
    found = shutil.which(BINARY_NAME)
    if found:
        return Path(found)
    raise ShimNotFound(
        f"{BINARY_NAME} not found: set {ENV_VAR}, build it with 'make shim' in a source checkout, or put it on PATH"
    )
