"""Native libraries from pinned PyPI wheels (MKL, oneDNN), downloaded once and unpacked into the cache.

The wheels are fetched with pip (``--no-deps --only-binary=:all:``, the exact version) and only the shared
libraries a probe loads are kept; ``<cache>/runtimes-wheel-<name>-<version>/lib``. numpy's own bundled
OpenBLAS (``numpy.libs``) needs no download.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy

from hwcap_dev.devcluster.build import cache_root

#: distribution -> (pinned version, the shared libraries kept)
PINNED: dict[str, tuple[str, tuple[str, ...]]] = {
    # oneMKL: the runtime dispatcher, its sequential layer and LP64 interface, and every CPU-specific library
    "mkl": ("2026.2.0", ("libmkl_rt.so.3", "libmkl_core.so.3", "libmkl_sequential.so.3", "libmkl_intel_lp64.so.3",
                         "libmkl_def.so.3", "libmkl_mc3.so.3", "libmkl_avx2.so.3", "libmkl_avx512.so.3",
                         "libmkl_avx10.so.3")),
    # oneDNN 3.2 with GNU OpenMP (the newer "onednn" wheels need Intel's TBB, SYCL and compiler runtimes)
    "onednn-cpu-gomp": ("2023.2.0", ("libdnnl.so.3",)),
}  # fmt: skip


def wheel_libs(name: str) -> Path:
    """The directory holding the pinned wheel's kept libraries (downloaded on first use)."""
    version, keep = PINNED[name]
    root = cache_root() / f"runtimes-wheel-{name}-{version}"
    libs = root / "lib"
    if all((libs / so).exists() for so in keep):
        return libs
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all((libs / so).exists() for so in keep):
            return libs
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            result = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                                     "--no-deps", "--only-binary=:all:", f"{name}=={version}", "-d", tmp],
                                    capture_output=True, text=True, check=False)  # fmt: skip
            if result.returncode != 0:
                raise RuntimeError(f"pip download {name}=={version} failed:\n{result.stdout}{result.stderr}")
            (wheel,) = Path(tmp).glob("*.whl")
            partial = root / "lib.partial"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            with zipfile.ZipFile(wheel) as archive:
                members = {Path(m).name: m for m in archive.namelist() if "/lib/" in m}
                for so in keep:
                    (partial / so).write_bytes(archive.read(members[so]))
            shutil.rmtree(libs, ignore_errors=True)
            partial.rename(libs)
    return libs


def numpy_openblas() -> Path:
    """numpy's bundled OpenBLAS (scipy-openblas, DYNAMIC_ARCH)."""
    (lib,) = (Path(numpy.__file__).parent.parent / "numpy.libs").glob("libscipy_openblas*.so")
    return lib
