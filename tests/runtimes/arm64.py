"""Run real arm64 runtimes from the Debian sysroot under qemu-user, with the CPU model's HWCAPs.

``qemu-aarch64-static -cpu MODEL`` fills AT_HWCAP/AT_HWCAP2 from the model it emulates, so a runtime's own
detection sees that CPU; ``-d in_asm`` additionally logs every block qemu translates, which shows which
instructions a program actually ran (e.g. ``sha256h`` or ``aese``): a code path, not a report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from hwcap_operator.features import find
from hwcap_operator.mask import FeatureMask
from tests.runtimes.probes import HERE, QEMU_AARCH64, _build_once, _cache_dir, _tool_version, go_report_arm64, run
from tests.runtimes.sysroot import arm64_sysroot

#: x/sys/cpu spells two arm64 features unlike /proc/cpuinfo (and the catalog).
_XSYS_SPELLING = {"evstrm": "evtstrm", "asimrdm": "asimdrdm"}


def qemu(cpu_model: str, *qemu_args: str) -> list[str]:
    """The qemu-user command prefix for the sysroot's programs on ``cpu_model``."""
    binary = shutil.which(QEMU_AARCH64)
    if binary is None:
        raise RuntimeError(f"{QEMU_AARCH64} is missing: tools/system-packages.txt installs qemu-user-static")
    return [binary, "-L", str(arm64_sysroot()), "-cpu", cpu_model, *qemu_args]


def sysroot_path(relative: str) -> str:
    return str(arm64_sysroot() / relative)


@cache
def arm64_node(cpu_model: str) -> FeatureMask:
    """The emulated CPU's features as another runtime reads them from AT_HWCAP (the Go probe's x/sys/cpu)."""
    report, _ = go_report_arm64(cpu_model, {})
    names = [_XSYS_SPELLING.get(k, k) for k, v in report["xsysArm64"].items() if v]
    return FeatureMask.from_names("arm64", [n for n in names if find("arm64", n) is not None])


def openssl_armcap(cpu_model: str, env: Mapping[str, str]) -> tuple[int, str]:
    """(OPENSSL_armcap_P as OpenSSL reports it, the whole report line) from the arm64 ``openssl info``."""
    line = run([*qemu(cpu_model), sysroot_path("usr/bin/openssl"), "info", "-cpusettings"], env).stdout.strip()
    match = re.search(r"OPENSSL_armcap=0x([0-9a-f]+)", line)
    assert match is not None, line
    return int(match[1], 16), line


def executed_instructions(cpu_model: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> set[str]:
    """The mnemonics qemu translated while running the sysroot program ``argv`` (``-d in_asm``)."""
    run([*qemu(cpu_model, "-d", "in_asm", "-D", str(log)), sysroot_path(argv[0]), *argv[1:]], env)
    mnemonics = set()
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split(":", 1)
        if len(parts) == 2 and parts[0].startswith("0x"):
            fields = parts[1].split()
            if len(fields) >= 2:
                mnemonics.add(fields[1])  # "0x...:  d5033fdf  isb" -> encoding, mnemonic
    return mnemonics


def java(cpu_model: str, args: Sequence[str], env: Mapping[str, str],
         check: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """The sysroot's OpenJDK 17 ``java`` under qemu."""
    argv = [*qemu(cpu_model), sysroot_path("usr/lib/jvm/java-17-openjdk-arm64/bin/java"), *args]
    if check:
        return run(argv, env)
    return subprocess.run(argv, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, check=False,
                          timeout=120)  # fmt: skip


OPENBLAS_PROBE_SOURCE = HERE / "probes" / "openblas_corename.c"
CROSS_CC = "aarch64-linux-gnu-gcc"
OPENBLAS_ARM64 = "usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0"


def openblas_corename(cpu_model: str, env: Mapping[str, str]) -> tuple[str, str]:
    """(the sysroot OpenBLAS's core name on ``cpu_model``, its stderr with OPENBLAS_VERBOSE=2)."""
    toolchain = _tool_version([CROSS_CC, "--version"])
    probe = _build_once(_cache_dir("openblas-arm64", [OPENBLAS_PROBE_SOURCE], toolchain) / "openblas_corename",
                        [CROSS_CC, "-O1", str(OPENBLAS_PROBE_SOURCE), "-ldl"], HERE)  # fmt: skip
    result = run([*qemu(cpu_model), str(probe), f"/{OPENBLAS_ARM64}"], {"OPENBLAS_VERBOSE": "2", **env})
    return result.stdout.strip(), result.stderr
