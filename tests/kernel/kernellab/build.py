"""Build (and cache) the lab's kernels from Debian's linux-source-6.12 package.

Why a cache keyed by content: a kernel build takes minutes on the CI machine, so a kernel is rebuilt
only when the source package version, our patch, the config fragments or this recipe change.
Everything lives under ~/.cache/hwcap-operator/kernel/, never in the repository.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from .paths import CACHE_ROOT, CONFIG_DIR, PATCH_DIR

#: Bump when the build recipe below changes in a way that changes the kernel.
RECIPE_VERSION = "1"
SOURCE_PACKAGE = "linux-source-6.12"
SOURCE_TARBALL = Path("/usr/src/linux-source-6.12.tar.xz")
JOBS = os.environ.get("HWCAP_LAB_JOBS", "2")


class LabError(RuntimeError):
    """A lab step failed; the message says which step and why."""


@dataclass(frozen=True)
class ArchSpec:
    """How to build and name a kernel for one architecture."""

    arch: str  # GOARCH spelling
    kbuild_arch: str
    cross_compile: str
    image: str  # path of the boot image inside the build directory


ARCHES: dict[str, ArchSpec] = {
    "arm64": ArchSpec("arm64", "arm64", "aarch64-linux-gnu-", "arch/arm64/boot/Image"),
    "amd64": ArchSpec("amd64", "x86_64", "", "arch/x86/boot/bzImage"),
}

#: variant name -> patch files applied in order
VARIANTS: dict[str, tuple[str, ...]] = {
    "none": (),
    "v5": ("0001-exec-inherit-hwcaps-v5.patch",),
    # v5 with the v5 base's PR_SET_MM_AUXV (copies len bytes, keeps the old tail)
    "v5-lencopy": ("0001-exec-inherit-hwcaps-v5.patch", "0002-prctl-set-auxv-copy-len.patch"),
}
#: variants built only for some arches (the copy-length rule is arch independent: arm64 shows it)
VARIANT_ARCHES: dict[str, tuple[str, ...]] = {"v5-lencopy": ("arm64",)}


@dataclass(frozen=True)
class KernelBuild:
    """A built kernel: where its image is and what it is."""

    arch: str
    variant: str
    key: str
    directory: Path
    image: Path
    source_version: str
    build_seconds: float
    cached: bool
    #: True when prctl(PR_SET_MM_AUXV) copies the whole zero-filled buffer (Debian 6.12.117), read
    #: from the kernel/sys.c the kernel was built from.
    auxv_whole_buffer_copy: bool
    #: AT_VECTOR_SIZE in unsigned longs, computed from the source headers and the config.
    at_vector_size: int


def source_version() -> str:
    """The installed linux-source-6.12 package version (the cache key's first part)."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", SOURCE_PACKAGE],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise LabError(
            f"Debian package {SOURCE_PACKAGE} is not installed (run tools/ensure-system-packages.sh): {exc}"
        ) from exc
    return out.stdout.strip()


def _safe(version: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]", "_", version)


def source_tree() -> Path:
    """Unpack the Debian source tarball once into the cache; returns the pristine tree."""
    version = source_version()
    dest = CACHE_ROOT / f"src-{_safe(version)}"
    if (dest / "Makefile").is_file() and (dest / ".unpacked").is_file():
        return dest
    if not SOURCE_TARBALL.is_file():
        raise LabError(f"{SOURCE_TARBALL} missing although {SOURCE_PACKAGE} {version} is installed")
    tmp = CACHE_ROOT / f".unpack-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(SOURCE_TARBALL) as tar:
        tar.extractall(tmp, filter="tar")
    (inner,) = list(tmp.iterdir())
    shutil.rmtree(dest, ignore_errors=True)
    inner.rename(dest)
    tmp.rmdir()
    (dest / ".unpacked").write_text(version + "\n")
    return dest


def _patches(variant: str) -> list[Path]:
    try:
        names = VARIANTS[variant]
    except KeyError:
        raise LabError(f"unknown kernel variant {variant!r}; known: {sorted(VARIANTS)}") from None
    return [PATCH_DIR / n for n in names]


def _fragments(arch: str) -> list[Path]:
    return [CONFIG_DIR / "common.config", CONFIG_DIR / f"{ARCHES[arch].kbuild_arch}.config"]


def cache_key(arch: str, variant: str) -> str:
    """Content hash of everything that determines the kernel binary."""
    h = hashlib.sha256()
    h.update(f"recipe={RECIPE_VERSION}\narch={arch}\nsource={source_version()}\n".encode())
    for p in _patches(variant) + _fragments(arch):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def patched_tree(variant: str) -> Path:
    """A hard-linked copy of the pristine tree with the variant's patches applied (cached)."""
    src = source_tree()
    patches = _patches(variant)
    if not patches:
        return src
    h = hashlib.sha256(b"".join(p.read_bytes() for p in patches)).hexdigest()[:12]
    dest = CACHE_ROOT / f"tree-{src.name[4:]}-{variant}-{h}"
    if (dest / ".patched").is_file():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    # cp -al: GNU patch replaces files by rename, so the pristine tree's inodes stay untouched.
    subprocess.run(["cp", "-al", str(src), str(tmp)], check=True)
    (tmp / ".unpacked").unlink(missing_ok=True)
    for p in patches:
        r = subprocess.run(
            ["patch", "-p1", "--no-backup-if-mismatch", "-i", str(p)],
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise LabError(f"patch {p.name} does not apply to {src.name}:\n{r.stdout}{r.stderr}")
    (tmp / ".patched").write_text("\n".join(p.name for p in patches) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def _required_options(arch: str) -> list[str]:
    opts = []
    for frag in _fragments(arch):
        for line in frag.read_text().splitlines():
            if line.startswith("CONFIG_") and line.endswith("=y"):
                opts.append(line)
    return opts


def _make(tree: Path, out: Path, spec: ArchSpec, *targets: str, log: Path) -> None:
    cmd = ["make", "-C", str(tree), f"O={out}", f"ARCH={spec.kbuild_arch}", f"-j{JOBS}"]
    if spec.cross_compile:
        cmd.append(f"CROSS_COMPILE={spec.cross_compile}")
    cmd.extend(targets)
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise LabError(f"kernel build step `make {' '.join(targets)}` failed (log {log}):\n{tail}")


def _auxv_whole_buffer_copy(tree: Path) -> bool:
    text = (tree / "kernel/sys.c").read_text()
    m = re.search(r"static int prctl_set_auxv\(.*?\n}\n", text, re.S)
    if not m:
        raise LabError(f"prctl_set_auxv not found in {tree}/kernel/sys.c")
    body = m.group(0)
    if "memcpy(mm->saved_auxv, user_auxv, sizeof(user_auxv))" in body:
        return True
    if "memcpy(mm->saved_auxv, user_auxv, len)" in body:
        return False
    raise LabError(f"cannot tell how prctl_set_auxv copies the vector in {tree}/kernel/sys.c")


def _at_vector_size(tree: Path, spec: ArchSpec, dotconfig: str) -> int:
    """AT_VECTOR_SIZE = 2*(AT_VECTOR_SIZE_ARCH + AT_VECTOR_SIZE_BASE + 1), read from the headers."""
    base_m = re.search(r"#define AT_VECTOR_SIZE_BASE (\d+)", (tree / "include/linux/auxvec.h").read_text())
    if not base_m:
        raise LabError("AT_VECTOR_SIZE_BASE not found in include/linux/auxvec.h")
    base = int(base_m.group(1))
    if spec.kbuild_arch == "arm64":
        hdr = (tree / "arch/arm64/include/uapi/asm/auxvec.h").read_text()
        am = re.search(r"#define AT_VECTOR_SIZE_ARCH (\d+)", hdr)
        if not am:
            raise LabError("AT_VECTOR_SIZE_ARCH not found for arm64")
        arch_n = int(am.group(1))
    else:
        hdr = (tree / "arch/x86/include/uapi/asm/auxvec.h").read_text()
        nums = [int(x) for x in re.findall(r"# define AT_VECTOR_SIZE_ARCH (\d+)", hdr)]
        if len(nums) != 2:
            raise LabError("unexpected AT_VECTOR_SIZE_ARCH layout in arch/x86/include/uapi/asm/auxvec.h")
        ia32 = "CONFIG_IA32_EMULATION=y" in dotconfig
        arch_n = max(nums) if ia32 else min(nums)
    return 2 * (arch_n + base + 1)


def build(arch: str, variant: str, *, verbose: bool = True) -> KernelBuild:
    """Return the cached kernel for (arch, variant), building it first if needed.

    A lock file per cache key makes a second lab process (another pytest, ``make kernels``) wait for the
    build in progress instead of building into the same directory.
    """
    if arch not in ARCHES:
        raise LabError(f"unknown arch {arch!r}; the lab builds {sorted(ARCHES)}")
    key = cache_key(arch, variant)
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with (CACHE_ROOT / f".lock-{arch}-{variant}-{key}").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(arch, variant, key, verbose=verbose)


def _build_locked(arch: str, variant: str, key: str, *, verbose: bool) -> KernelBuild:
    spec = ARCHES[arch]
    out = CACHE_ROOT / f"build-{arch}-{variant}-{key}"
    meta_path = out / "lab-meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        return KernelBuild(
            arch=arch,
            variant=variant,
            key=key,
            directory=out,
            image=out / spec.image,
            source_version=meta["source_version"],
            build_seconds=meta["build_seconds"],
            cached=True,
            auxv_whole_buffer_copy=meta["auxv_whole_buffer_copy"],
            at_vector_size=meta["at_vector_size"],
        )
    if spec.cross_compile and not shutil.which(spec.cross_compile + "gcc"):
        raise LabError(f"cross compiler {spec.cross_compile}gcc not found (Debian gcc-aarch64-linux-gnu)")
    with (CACHE_ROOT / ".lock-trees").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tree = patched_tree(variant)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    log = out / "lab-build.log"
    if verbose:
        print(f"[kernellab] building {arch}/{variant} kernel ({key}) in {out}, log {log}", file=sys.stderr)
    t0 = time.monotonic()
    cpu0 = _children_cpu()
    _make(tree, out, spec, "tinyconfig", log=log)
    merge = tree / "scripts/kconfig/merge_config.sh"
    with log.open("a") as fh:
        r = subprocess.run(
            ["sh", str(merge), "-m", "-O", str(out), str(out / ".config"), *map(str, _fragments(arch))],
            cwd=tree,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ARCH": spec.kbuild_arch},
        )
    if r.returncode != 0:
        raise LabError(f"merge_config.sh failed for {arch} (log {log})")
    _make(tree, out, spec, "olddefconfig", log=log)
    dotconfig = (out / ".config").read_text()
    missing = [o for o in _required_options(arch) if o not in dotconfig.splitlines()]
    if missing:
        raise LabError(f"{arch} kernel config lost required options (unmet dependencies?): {missing}")
    _make(tree, out, spec, Path(spec.image).name, log=log)
    seconds = round(time.monotonic() - t0, 1)
    cpu_seconds = round(_children_cpu() - cpu0, 1)
    image = out / spec.image
    if not image.is_file():
        raise LabError(f"build finished but {image} is missing (log {log})")
    kb = KernelBuild(
        arch=arch,
        variant=variant,
        key=key,
        directory=out,
        image=image,
        source_version=source_version(),
        build_seconds=seconds,
        cached=False,
        auxv_whole_buffer_copy=_auxv_whole_buffer_copy(tree),
        at_vector_size=_at_vector_size(tree, spec, dotconfig),
    )
    meta_path.write_text(
        json.dumps(
            {
                "source_version": kb.source_version,
                "build_seconds": seconds,
                # CPU time of the build: divided by the job count it estimates the wall time on an idle
                # machine (the wall time above includes whatever else the machine was doing).
                "cpu_seconds": cpu_seconds,
                "jobs": JOBS,
                "auxv_whole_buffer_copy": kb.auxv_whole_buffer_copy,
                "at_vector_size": kb.at_vector_size,
                "variant": variant,
                "patches": [p.name for p in _patches(variant)],
            },
            indent=1,
        )
    )
    # Keep only what booting needs; object files are hundreds of MB.
    _prune(out, spec)
    if verbose:
        print(f"[kernellab] built {arch}/{variant} kernel in {seconds} s ({cpu_seconds} s CPU)", file=sys.stderr)
    return kb


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _prune(out: Path, spec: ArchSpec) -> None:
    keep = {out / spec.image, out / ".config", out / "lab-build.log", out / "lab-meta.json"}
    image_tmp = out.parent / (out.name + ".image")
    shutil.copy2(out / spec.image, image_tmp)
    for child in out.iterdir():
        if child in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    (out / spec.image).parent.mkdir(parents=True, exist_ok=True)
    image_tmp.replace(out / spec.image)
