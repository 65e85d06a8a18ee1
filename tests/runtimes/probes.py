"""Build the runtime probes once into the project cache and run real runtimes under a given environment.

The probes are tiny programs that print what a runtime itself decided about the CPU: glibc's
``CPU_FEATURE_ACTIVE`` (probes/glibc_cpu.c), Go's x/sys/cpu fields and TLS suite choice (goprobe/). They
are built with the machine's own compilers into ``<cache root>/runtimes-<hash of sources and toolchain>``,
so a session builds each once and a source change rebuilds it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwcap_dev.devcluster.build import cache_root

HERE = Path(__file__).parent
GLIBC_PROBE_SOURCE = HERE / "probes" / "glibc_cpu.c"
GO_PROBE_DIR = HERE / "goprobe"
LD_SO = "/lib64/ld-linux-x86-64.so.2"


def _tool_version(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def _cache_dir(name: str, sources: list[Path], toolchain: str) -> Path:
    digest = hashlib.sha256(toolchain.encode())
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return cache_root() / f"runtimes-{name}-{digest.hexdigest()[:12]}"


def _build_once(target: Path, build: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> Path:
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent test sessions build once
        if not target.exists():
            partial = target.with_suffix(".partial")
            result = subprocess.run(
                [*build, "-o", str(partial)], cwd=cwd, capture_output=True, text=True, env=env, check=False
            )
            if result.returncode != 0:
                raise RuntimeError(f"building {target.name} failed:\n{result.stdout}{result.stderr}")
            partial.rename(target)
    return target


def glibc_probe() -> Path:
    """The compiled glibc probe (cc against this machine's glibc headers)."""
    toolchain = _tool_version(["cc", "--version"]) + _tool_version([LD_SO, "--version"])
    target = _cache_dir("glibc", [GLIBC_PROBE_SOURCE], toolchain) / "glibc_cpu"
    return _build_once(target, ["cc", "-O1", str(GLIBC_PROBE_SOURCE)], HERE)


def go_probe(goarch: str = "amd64") -> Path:
    """The Go probe, built with the installed Go (never a downloaded toolchain) and x/sys pinned in go.mod."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the Go toolchain is not on PATH (the machine image provides /usr/local/go)")
    sources = sorted(p for p in GO_PROBE_DIR.iterdir() if p.is_file())
    target = _cache_dir("go", sources, _tool_version([go, "version"])) / f"goprobe-{goarch}"
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod -buildvcs=false", "CGO_ENABLED": "0",
           "GOARCH": goarch}  # fmt: skip
    return _build_once(target, [go, "build", "-trimpath"], GO_PROBE_DIR, env)


def run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with exactly the runtime variables in ``env`` added to a minimal environment."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(argv, env={**base, **env}, capture_output=True, text=True, check=True, timeout=60)


def glibc_features(env: Mapping[str, str]) -> dict[str, tuple[bool, bool]]:
    """glibc's view: ``{NAME: (present, active)}``."""
    out = run([str(glibc_probe())], env).stdout
    return {name: (p == "1", a == "1") for name, p, a in (line.split() for line in out.splitlines())}


def glibc_hwcaps_subdirs(env: Mapping[str, str]) -> dict[str, bool]:
    """``ld.so --help``'s glibc-hwcaps subdirectories: ``{"x86-64-v4": supported?, ...}``."""
    text = run([LD_SO, "--help"], env).stdout
    section = text.split("Subdirectories of glibc-hwcaps directories", 1)[1].split("\n\n", 1)[0]
    out: dict[str, bool] = {}
    for line in section.splitlines()[1:]:
        name, _, rest = line.strip().partition(" ")
        out[name] = "supported" in rest
    return out


def glibc_diagnostics(env: Mapping[str, str]) -> dict[str, str]:
    """``ld.so --list-diagnostics`` as key -> value (e.g. ``dl_hwcaps_subdirs_active``, ``x86.cpu_features.isa_1``)."""
    text = run([LD_SO, "--list-diagnostics"], env).stdout
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def go_report(env: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """The Go probe's JSON report and its stderr (where Go warns about GODEBUG keys it does not know)."""
    result = run([str(go_probe())], env)
    return json.loads(result.stdout), result.stderr


QEMU_AARCH64 = "qemu-aarch64-static"


def go_report_arm64(cpu_model: str, env: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    """The arm64 Go probe under qemu-user with ``-cpu cpu_model`` (qemu fills AT_HWCAP from the model)."""
    qemu = shutil.which(QEMU_AARCH64)
    if qemu is None:
        raise RuntimeError(f"{QEMU_AARCH64} is missing: tools/system-packages.txt installs qemu-user-static")
    result = run([qemu, "-cpu", cpu_model, str(go_probe("arm64"))], env)
    return json.loads(result.stdout), result.stderr


def openssl_ia32cap(env: Mapping[str, str]) -> tuple[int, int]:
    """The capability vectors LV0, LV1 OpenSSL uses after reading OPENSSL_ia32cap (``openssl info``)."""
    text = run(["openssl", "info", "-cpusettings"], env).stdout.strip()
    value = text.split("OPENSSL_ia32cap=", 1)[1].split()[0]
    lv0, lv1 = value.split(":")[:2]
    return int(lv0, 16), int(lv1, 16)
