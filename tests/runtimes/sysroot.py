"""An arm64 Debian bookworm sysroot for running real arm64 runtimes under qemu-user, built once into the cache.

The .debs are downloaded through a private apt state for arm64 (the operator image's, so the host needs no
foreign dpkg architecture) at the version bookworm's mirrors offer, and unpacked with ``dpkg-deb -x``: no
maintainer scripts, only files. ``qemu-aarch64-static -L <sysroot>`` then finds the arm64 loader and
libraries there. The directory name carries a hash of the package list; ``packages.txt`` inside records what
was unpacked (name, version), and :func:`arm64_sysroot_packages` returns it for the tests to report.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

from hwcap_dev.devcluster.build import cache_root
from hwcap_dev.images import debs
from hwcap_dev.images.operator_image import MIRRORS, _apt

#: What the arm64 runtime tests run: OpenSSL 3.0 (openssl + libssl3), OpenJDK 17 (headless JRE) and OpenBLAS
#: 0.3.21 (pthread, DYNAMIC_ARCH) with the libraries they load (glibc, libstdc++, libgcc, zlib, libgfortran).
#: Dependencies that only packaging needs are left out.
ARM64_PACKAGES = ("libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libssl3", "openssl", "openjdk-17-jre-headless",
                  "libgfortran5", "libopenblas0-pthread")  # fmt: skip
ARCH = "arm64"


def _download(names: tuple[str, ...], into: Path, state: Path) -> list[Path]:
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    (state / "sources.list").write_text("".join(f"deb [arch={ARCH}] {m}\n" for m in MIRRORS))
    apt = _apt(state, ARCH)
    if not any(state.glob("lists/*Packages*")):
        subprocess.run(["apt-get", *apt, "update"], capture_output=True, text=True, check=True)
    into.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["apt-get", *apt, "download", *names], cwd=into, capture_output=True, text=True,
                            check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"apt-get download {' '.join(names)} ({ARCH}) failed:\n{result.stdout}{result.stderr}")
    return sorted(into.glob("*.deb"))


def arm64_sysroot() -> Path:
    """The unpacked arm64 sysroot (built on first use, then reused across sessions)."""
    root = cache_root() / f"runtimes-arm64-sysroot-{hashlib.sha256(' '.join(ARM64_PACKAGES).encode()).hexdigest()[:12]}"
    done = root / "packages.txt"
    if done.exists():
        return root / "root"
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent sessions build once
        if not done.exists():
            shutil.rmtree(root / "root", ignore_errors=True)
            downloaded = _download(ARM64_PACKAGES, root / "debs", root / "apt")
            unpacked = [debs.unpack(deb, root / "root") for deb in downloaded]
            shutil.rmtree(root / "debs")  # the unpacked files are what the tests use
            done.write_text("".join(f"{p.name} {p.version}\n" for p in unpacked))
    return root / "root"


def arm64_sysroot_packages() -> dict[str, str]:
    """``{package: version}`` of what the sysroot holds."""
    listing = arm64_sysroot().parent / "packages.txt"
    return dict(line.split(" ", 1) for line in listing.read_text().splitlines())
