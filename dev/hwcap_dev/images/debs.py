"""Debian packages as image content: ``apt-get download`` the .debs, unpack them with ``dpkg-deb -x``.

No chroot and no maintainer scripts: a workload image only needs the files (a static busybox, libc and
libssl for the dynamically linked programs, openssl). What went in (name, version, architecture) is read
from each .deb's control fields so the SBOM lists exactly the unpacked packages.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class DebError(RuntimeError):
    """apt-get or dpkg-deb failed; the message quotes their output."""


@dataclass(frozen=True)
class DebPackage:
    """One unpacked Debian package, for the SBOM."""

    name: str
    version: str
    architecture: str

    @property
    def purl(self) -> str:
        """The package URL (``pkg:deb/debian/<name>@<version>?arch=<arch>``)."""
        return f"pkg:deb/debian/{self.name}@{self.version}?arch={self.architecture}"


def _run(cmd: Sequence[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DebError(f"`{' '.join(cmd)}` exited {proc.returncode}: {(proc.stdout + proc.stderr)[-800:]}")
    return proc.stdout


def download(names: Sequence[str], into: Path) -> list[Path]:
    """The .debs of ``names`` at the candidate version apt knows, downloaded once into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    found: list[Path] = []
    for name in names:
        existing = sorted(into.glob(f"{name}_*.deb"))
        if not existing:
            try:
                _run(["apt-get", "download", "-q", name], cwd=into)
            except DebError:  # no package lists yet (a fresh container clears them): fetch them once, retry
                _run(["apt-get", "update", "-qq"])
                _run(["apt-get", "download", "-q", name], cwd=into)
            existing = sorted(into.glob(f"{name}_*.deb"))
        if not existing:
            raise DebError(f"apt-get download {name} left no {name}_*.deb in {into}")
        found.append(existing[-1])
    return found


def unpack(deb: Path, root: Path) -> DebPackage:
    """Extract ``deb``'s files under ``root`` and return what it was."""
    root.mkdir(parents=True, exist_ok=True)
    _run(["dpkg-deb", "-x", str(deb), str(root)])
    fields = _run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"])
    values = dict(line.split(": ", 1) for line in fields.strip().splitlines())
    return DebPackage(values["Package"], values["Version"], values["Architecture"])
