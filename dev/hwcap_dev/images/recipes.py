"""The dev cluster's images, assembled from what the machine already has (no engine, no base image pull).

* ``hwcap/pause`` — the pod sandbox: a tiny static C program (``src/pause.c``, musl).
* ``hwcap/hwcap-exec`` — the init image: ``FROM scratch`` + the static ``/usr/local/bin/hwcap-exec``, an OCI index for
  linux/amd64 (musl) and linux/arm64. The arm64 binary is cross-built with ``aarch64-linux-gnu-gcc`` and
  static **glibc**: Debian has no aarch64 musl cross toolchain, and the init step only copies a file and the
  wrapper calls a handful of syscalls, so glibc's larger static binary costs size, not behaviour.
* ``hwcap/sample`` — a workload that reports what real runtimes decide: busybox (static), glibc's loader
  (``ld.so --help`` lists the ``glibc-hwcaps`` levels it would search), ``openssl`` (its capability
  vector), and ``gocpu`` (static Go, what ``golang.org/x/sys/cpu`` detects), all unpacked from Debian
  .debs or built from ``src/gocpu`` with the pinned x/sys. Its ENTRYPOINT is ``cpu-report``, and it has no
  CMD, so a pod without ``command`` exercises the webhook's registry lookup.

Each image gets a CycloneDX SBOM (:mod:`.sbom`) from the inputs above, written to ``<out>/<name>.cdx.json``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwcap_dev import paths

from . import debs, sbom
from .oci import Blob, Image, Platform, build_image, build_index

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
VERSION = "dev"
SAMPLE_DEBS = ("busybox-static", "libc6", "libgcc-s1", "libssl3", "openssl")
BUSYBOX_APPLETS = ("sh", "cat", "echo", "grep", "sed", "ls", "id", "env", "pwd", "sleep", "head", "tr", "true")
SBOM_ANNOTATION = "dev.hwcap.sbom"
#: Where the init image holds the shim: the operator's default install command runs
#: ``/usr/local/bin/hwcap-exec --install ...`` (the same path as in the operator image).
INIT_SHIM_PATH = "usr/local/bin/hwcap-exec"

CPU_REPORT = """#!/bin/sh
# What the runtimes in this image decide about the CPU, each by its own detection.
echo "== glibc: ld.so --help (glibc-hwcaps levels it would search)"
/lib64/ld-linux-x86-64.so.2 --help | sed -n '/^Subdirectories of glibc-hwcaps/,/^$/p'
echo "== Go: gocpu"
/usr/local/bin/gocpu
echo "== OpenSSL: openssl version -c"
/usr/bin/openssl version -c
"""


class ImageBuildError(RuntimeError):
    """A compiler or packaging step failed; the message quotes it."""


@dataclass(frozen=True)
class BuiltImage:
    """One image ready to push: a single manifest or an index over several."""

    repo: str
    tag: str
    images: tuple[Image, ...]
    index: Blob | None
    sbom_path: Path

    @property
    def digest(self) -> str:
        """The digest a pod can pin (index when multi-platform)."""
        return (self.index or self.images[0].manifest).digest


def _run(cmd: list[str], **env: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, **env})
    if proc.returncode != 0:
        raise ImageBuildError(f"`{' '.join(cmd)}` exited {proc.returncode}: {(proc.stdout + proc.stderr)[-800:]}")


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _annotations(sbom_path: Path) -> dict[str, str]:
    return {SBOM_ANNOTATION: sbom_path.name, "org.opencontainers.image.version": VERSION}


def build_pause(out: Path) -> BuiltImage:
    """The sandbox image (linux/amd64)."""
    tree = _fresh(out / "pause" / "rootfs")
    _run(["musl-gcc", "-Os", "-static", "-s", "-o", str(tree / "pause"), str(SRC / "pause.c")])
    path = sbom.write_bom(out / "pause.cdx.json", sbom.bom("hwcap/pause", VERSION, [
        sbom.file_component("pause", VERSION, tree / "pause")]))
    image = build_image(Platform("amd64"), [tree], entrypoint=["/pause"], env=(), annotations=_annotations(path))
    return BuiltImage("hwcap/pause", VERSION, (image,), None, path)


def hwcap_exec_binaries(out: Path) -> dict[str, Path]:
    """The static hwcap-exec per architecture: musl on amd64, glibc cross-built on arm64 (see module doc)."""
    shim = paths.SHIM_SOURCE_DIR
    arm64 = out / "hwcap-exec" / "arm64" / "hwcap-exec"
    _run(["make", "-s", "-C", str(shim)])
    _run(["make", "-s", "-C", str(shim), "CC=aarch64-linux-gnu-gcc", f"OUT={arm64}"])
    return {"amd64": shim / "build" / "hwcap-exec", "arm64": arm64}


def build_init(out: Path) -> BuiltImage:
    """``FROM scratch`` + ``/hwcap-exec``, an index for linux/amd64 and linux/arm64."""
    binaries = hwcap_exec_binaries(out)
    components = [sbom.file_component(f"hwcap-exec ({arch})", VERSION, path) for arch, path in binaries.items()]
    path = sbom.write_bom(out / "hwcap-exec.cdx.json", sbom.bom("hwcap/hwcap-exec", VERSION, components))
    images = []
    for arch, binary in binaries.items():
        tree = _fresh(out / "hwcap-exec" / arch / "rootfs")
        (tree / INIT_SHIM_PATH).parent.mkdir(parents=True)
        shutil.copy2(binary, tree / INIT_SHIM_PATH)
        images.append(build_image(Platform(arch), [tree], entrypoint=[f"/{INIT_SHIM_PATH}"], env=(),
                                  annotations=_annotations(path)))
    index = build_index(images, annotations=_annotations(path))
    return BuiltImage("hwcap/hwcap-exec", VERSION, tuple(images), index, path)


def build_gocpu(out: Path) -> Path:
    """The static Go reporter, with the pinned golang.org/x/sys from ``src/gocpu/go.mod``."""
    binary = out / "gocpu" / "gocpu"
    binary.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "."],
                          cwd=SRC / "gocpu", capture_output=True, text=True, check=False,
                          env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOWORK": "off"})
    if proc.returncode != 0:
        raise ImageBuildError(f"go build gocpu: {proc.stderr[-800:]}")
    return binary


def build_sample(out: Path, deb_cache: Path) -> BuiltImage:
    """The workload image: Debian's busybox/libc/openssl unpacked, gocpu, and ``cpu-report`` as ENTRYPOINT."""
    tree = _fresh(out / "sample" / "rootfs")
    packages = [debs.unpack(deb, tree) for deb in debs.download(SAMPLE_DEBS, deb_cache)]
    for applet in BUSYBOX_APPLETS:
        (tree / "bin" / applet).symlink_to("busybox")
    for merged in ("lib", "lib64", "sbin"):  # Debian's merged /usr: /lib → usr/lib, as base-files makes it
        usr = tree / "usr" / merged
        if usr.is_dir() and not (tree / merged).exists():
            (tree / merged).symlink_to(f"usr/{merged}")
    (tree / "tmp").mkdir(mode=0o1777, exist_ok=True)
    os.chmod(tree / "tmp", 0o1777)
    gocpu = build_gocpu(out)
    bindir = tree / "usr" / "local" / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(gocpu, bindir / "gocpu")
    (bindir / "cpu-report").write_text(CPU_REPORT)
    (bindir / "cpu-report").chmod(0o755)
    components = [sbom.deb_component(p) for p in packages] + sbom.go_components(gocpu)
    components.append(sbom.file_component("cpu-report", VERSION, bindir / "cpu-report"))
    path = sbom.write_bom(out / "sample.cdx.json", sbom.bom("hwcap/sample", VERSION, components))
    image = build_image(Platform("amd64"), [tree], entrypoint=["/usr/local/bin/cpu-report"], user="65534",
                        workdir="/tmp", annotations=_annotations(path))
    return BuiltImage("hwcap/sample", VERSION, (image,), None, path)


RECIPES: dict[str, Callable[[Path, Path], BuiltImage]] = {
    "pause": lambda out, _debs: build_pause(out),
    "init": lambda out, _debs: build_init(out),
    "sample": build_sample,
}
