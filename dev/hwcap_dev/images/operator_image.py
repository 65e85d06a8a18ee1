"""The operator image without an engine: Debian's Python 3.11 + the product wheel, for linux/amd64 and linux/arm64.

What the Dockerfile's ``runtime`` stage makes with ``docker buildx``, assembled from parts instead:

* Python from Debian bookworm .debs (``python3.11-minimal``, ``libpython3.11-stdlib`` and their dependency
  closure), downloaded per architecture through a private apt state (``-o APT::Architecture=<arch>``), so the
  host needs no foreign dpkg architecture; unpacked with ``dpkg-deb -x`` (:mod:`.debs`), no maintainer scripts.
* The product wheel and its dependencies as binary wheels for the target platform
  (``pip install --target --platform manylinux… --only-binary=:all:``): pip picks each architecture's
  compiled wheels (pydantic-core, orjson, aiohttp, PyYAML) without running anything of them.
* The static ``hwcap-exec`` per architecture (the init image's binaries) and the product's console scripts
  (``hwcap-operator``, ``hwcapctl``, ``kubectl-hwcap``) at ``/usr/local/bin``.

ENTRYPOINT ``hwcap-operator``, user 65532, the runtime stage's OCI labels; a CycloneDX SBOM lists every
.deb and every Python distribution (version, and the SHA-256 of the wheel it came from).
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from hwcap_dev import paths
from hwcap_dev.devcluster.build import locked

from . import debs, sbom
from .oci import Image, Platform, build_image, build_index
from .recipes import VERSION, BuiltImage, ImageBuildError, hwcap_exec_binaries

REPO = "hwcap/hwcap-operator"
ARCHES = ("amd64", "arm64")
PYTHON_DEBS = ("python3.11-minimal", "libpython3.11-stdlib")
MIRRORS = (
    "http://deb.debian.org/debian bookworm main",
    "http://deb.debian.org/debian bookworm-updates main",
    "http://deb.debian.org/debian-security bookworm-security main",
)
#: The closure apt computes includes packages a container never uses (debconf and mailcap pull perl, tzdata's
#: configuration); leaving them out keeps the image to what Python loads.
SKIP_DEBS = frozenset({"debconf", "perl-base", "dpkg", "tar", "install-info", "perl", "perl-modules-5.36",
                       "libperl5.36", "libgdbm-compat4", "mailcap", "mime-support"})
_MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
SITE_PACKAGES = "usr/local/lib/python3.11/dist-packages"  # on Debian's sys.path for a local install
SCRIPT = """#!/usr/bin/python3.11
import sys
from {module} import {attr}
sys.exit({attr}())
"""
ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONDONTWRITEBYTECODE=1",  # read-only root filesystem in the pods
    "PYTHONUNBUFFERED=1",
)
#: The Dockerfile runtime stage's LABELs (tests/unit/test_images_operator.py checks they agree).
LABELS = {
    "org.opencontainers.image.title": "hwcap-operator",
    "org.opencontainers.image.description": "Kubernetes operator, node agent and init step (hwcap-exec) that "
                                            "start every container of a migration domain under a common HWCAP mask",
    "org.opencontainers.image.version": VERSION,
    "org.opencontainers.image.source": "https://github.com/hwcap-dev/hwcap-operator",
    "org.opencontainers.image.url": "https://github.com/hwcap-dev/hwcap-operator",
    "org.opencontainers.image.documentation": "https://github.com/hwcap-dev/hwcap-operator/blob/main/docs/chart.md",
    "org.opencontainers.image.licenses": "Apache-2.0",
    "org.opencontainers.image.vendor": "hwcap-dev",
}
USER = "65532:65532"
PASSWD = "root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532::/nonexistent:/usr/sbin/nologin\n"
GROUP = "root:x:0:\nnonroot:x:65532:\n"


@dataclass(frozen=True)
class PythonDist:
    """One installed Python distribution, for the SBOM."""

    name: str
    version: str
    wheel: str | None  # the file it was installed from
    wheel_sha256: str | None


def _run(cmd: Sequence[str], cwd: Path | None = None, **env: str) -> str:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False, env={**os.environ, **env})
    if proc.returncode != 0:
        raise ImageBuildError(f"`{' '.join(cmd)}` exited {proc.returncode}: {(proc.stdout + proc.stderr)[-1200:]}")
    return proc.stdout


def _apt(state: Path, arch: str) -> list[str]:
    return [
        "-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures={arch}",
        "-o", f"Dir::Etc::sourcelist={state / 'sources.list'}", "-o", "Dir::Etc::sourceparts=-",
        "-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::State::status={state / 'status'}",
        "-o", f"Dir::Cache={state / 'cache'}", "-o", "Debug::NoLocking=1", "-o", "Acquire::Languages=none", "-q",
    ]


def download_python_debs(arch: str, cache: Path) -> list[Path]:
    """Debian's Python 3.11 and its dependency closure for ``arch``, cached under ``cache/<arch>``."""
    state = cache / arch / "apt"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    (state / "sources.list").write_text("".join(f"deb [arch={arch}] {m}\n" for m in MIRRORS))
    into = cache / arch / "debs"
    into.mkdir(parents=True, exist_ok=True)
    if not any(state.glob("lists/*Packages*")):
        _run(["apt-get", *_apt(state, arch), "update"])
    out = _run(["apt-cache", *_apt(state, arch), "depends", "--recurse", "--no-recommends", "--no-suggests",
                "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends",
                *PYTHON_DEBS])
    names = sorted({line.strip() for line in out.splitlines()
                    if line and not line.startswith((" ", "<")) and line.strip() not in SKIP_DEBS})
    found: list[Path] = []
    for name in names:
        existing = sorted(into.glob(f"{name}_*_{arch}.deb")) + sorted(into.glob(f"{name}_*_all.deb"))
        if not existing:
            _run(["apt-get", *_apt(state, arch), "download", name], cwd=into)
            existing = sorted(into.glob(f"{name}_*_{arch}.deb")) + sorted(into.glob(f"{name}_*_all.deb"))
        if not existing:
            raise ImageBuildError(f"apt-get download {name} ({arch}) left no .deb in {into}")
        found.append(existing[-1])
    return found


def product_wheel(cache: Path) -> Path:
    """The hwcap-operator wheel built from this checkout (pure Python, the same for every platform)."""
    into = cache / "product"
    shutil.rmtree(into, ignore_errors=True)
    # Fixed zip timestamps (setuptools honours SOURCE_DATE_EPOCH; zip starts at 1980): same checkout, same wheel.
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(into), str(paths.REPO_ROOT)],
         SOURCE_DATE_EPOCH="315532800")
    (wheel,) = into.glob("hwcap_operator-*.whl")
    return wheel


def _platform_tags(arch: str) -> list[str]:
    """Wheel tags that run on bookworm (glibc 2.36): every manylinux tag up to 2_36."""
    machine = _MACHINE[arch]
    return [f"manylinux_2_{minor}_{machine}" for minor in range(36, 16, -1)] + [
        f"manylinux2014_{machine}", f"linux_{machine}"]


def _drop_scripts(site: Path) -> None:
    """Remove the console scripts pip wrote (their shebang names the build host's Python) and their RECORD lines,
    so RECORD lists what the image holds and the layer does not depend on which interpreter ran pip."""
    shutil.rmtree(site / "bin", ignore_errors=True)
    for record in site.glob("*.dist-info/RECORD"):
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        record.write_text("".join(line for line in lines if not line.startswith("../../bin/")), encoding="utf-8")


def install_wheels(arch: str, product: Path, cache: Path, site: Path) -> list[PythonDist]:
    """Download the product's dependency wheels for ``arch`` (cached) and install them all into ``site``."""
    wheels = cache / arch / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    target = [f"--platform={tag}" for tag in _platform_tags(arch)] + [
        "--python-version=3.11", "--implementation=cp", "--abi=cp311", "--abi=abi3", "--abi=none",
        "--only-binary=:all:"]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "download", "-q", *target, "-d", str(wheels), str(product)])
    site.mkdir(parents=True, exist_ok=True)
    # By name from the wheel directory, not by path: a path install records it (direct_url.json) in the image.
    shutil.copyfile(product, wheels / product.name)  # pip download keeps an older copy of the same file name
    name, version = product.name.split("-")[:2]
    _run([*pip, "install", "-q", "--no-index", "--find-links", str(wheels), "--no-compile", *target,
          "--target", str(site), f"{name}=={version}"])
    _drop_scripts(site)
    by_file = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in [*wheels.glob("*.whl"), product]}
    dists: list[PythonDist] = []
    for info in sorted(site.glob("*.dist-info")):
        meta = HeaderParser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
        name, version = meta["Name"], meta["Version"]
        stem = f"{name.replace('-', '_').replace('.', '_').lower()}-{version}-"
        wheel = next((f for f in by_file if f.lower().startswith(stem)), None)
        dists.append(PythonDist(name, version, wheel, by_file[wheel] if wheel else None))
    return dists


def _write_product_scripts(site: Path, bindir: Path) -> None:
    """The product's console scripts (hwcap-operator, hwcapctl, kubectl-hwcap) as pip would write them for the
    image's own interpreter, read from the installed entry_points.txt."""
    (dist_info,) = site.glob("hwcap_operator-*.dist-info")
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.read_string((dist_info / "entry_points.txt").read_text(encoding="utf-8"))
    for name, target in parser["console_scripts"].items():
        module, attr = (part.strip() for part in target.split(":"))
        (bindir / name).write_text(SCRIPT.format(module=module, attr=attr))
        os.chmod(bindir / name, 0o755)


def _merged_usr(tree: Path) -> None:
    for merged in ("bin", "lib", "lib64", "sbin"):  # Debian's merged /usr, as base-files makes it
        if (tree / "usr" / merged).is_dir() and not (tree / merged).exists():
            (tree / merged).symlink_to(f"usr/{merged}")


def _rootfs(arch: str, debs_: Sequence[Path], product: Path, shim: Path, out: Path, cache: Path,
            ) -> tuple[Path, list[debs.DebPackage], list[PythonDist]]:
    tree = out / "operator" / arch / "rootfs"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    packages = [debs.unpack(deb, tree) for deb in debs_]
    _merged_usr(tree)
    for doc in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/locale"):
        shutil.rmtree(tree / doc, ignore_errors=True)
    (tree / "usr/bin/python3").symlink_to("python3.11")
    dists = install_wheels(arch, product, cache, tree / SITE_PACKAGES)
    bindir = tree / "usr/local/bin"
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shim, bindir / "hwcap-exec")
    os.chmod(bindir / "hwcap-exec", 0o755)
    _write_product_scripts(tree / SITE_PACKAGES, bindir)
    (tree / "etc").mkdir(exist_ok=True)
    (tree / "etc/passwd").write_text(PASSWD)
    (tree / "etc/group").write_text(GROUP)
    (tree / "tmp").mkdir(exist_ok=True)
    os.chmod(tree / "tmp", 0o1777)
    return tree, packages, dists


def _python_component(dist: PythonDist) -> sbom.Component:
    purl = f"pkg:pypi/{re.sub(r'[-_.]+', '-', dist.name).lower()}@{dist.version}"  # PEP 503 normalized
    if dist.wheel and not dist.wheel.endswith("-none-any.whl"):  # compiled: one component per platform's wheel
        purl += f"?file_name={dist.wheel}"
    kind = "application" if dist.name == "hwcap-operator" else "library"
    return sbom.Component(kind, dist.name, dist.version, purl, dist.wheel_sha256)


def build_operator(out: Path, cache: Path) -> BuiltImage:
    """The operator image as an OCI index for linux/amd64 and linux/arm64, with its SBOM at
    ``<out>/hwcap-operator.cdx.json``; downloads are cached under ``cache``."""
    shims = hwcap_exec_binaries(out)
    images: list[Image] = []
    components: list[sbom.Component] = []
    # The product wheel and the downloads in ``cache`` are rewritten by every build: two builds at once (two test
    # runs on one machine) took each other's wheel away mid-build. The trees themselves live in ``out``.
    with locked(cache / ".lock-operator-image"):
        product = product_wheel(cache)
        built = [(arch, *_rootfs(arch, download_python_debs(arch, cache), product, shims[arch], out, cache))
                 for arch in ARCHES]  # fmt: skip
    for arch, tree, packages, dists in built:
        components += [sbom.deb_component(p) for p in packages]
        components += [_python_component(d) for d in dists]
        components.append(sbom.file_component(f"hwcap-exec ({arch})", VERSION, shims[arch]))
        images.append(build_image(Platform(arch), [tree], entrypoint=["hwcap-operator"], cmd=["--help"], env=ENV,
                                  user=USER, workdir="/", labels=LABELS,
                                  annotations={**LABELS, "dev.hwcap.sbom": "hwcap-operator.cdx.json"}))
    unique = list({c.purl or c.name: c for c in components}.values())  # pure wheels are the same file twice
    path = sbom.write_bom(out / "hwcap-operator.cdx.json", sbom.bom(REPO, VERSION, unique))
    index = build_index(images, annotations={**LABELS, "dev.hwcap.sbom": path.name})
    return BuiltImage(REPO, VERSION, tuple(images), index, path)
