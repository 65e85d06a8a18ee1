"""hwcap-exec builds warning-free (-Werror) and static with other toolchains: the kernel lab's arm64 guests
and 32-bit (AArch32 / armhf) userspace use these cross builds with Debian's static glibc."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from hwcap_dev.shim import SOURCE_DIR

pytestmark = pytest.mark.needs_binaries  # cross compilers

EM_ARM, EM_AARCH64 = 40, 183
ELFCLASS32, ELFCLASS64 = 1, 2


def _program_header_types(data: bytes) -> set[int]:
    if data[4] == ELFCLASS64:
        phoff = struct.unpack_from("<Q", data, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    else:
        phoff = struct.unpack_from("<I", data, 0x1C)[0]
        phentsize, phnum = struct.unpack_from("<HH", data, 0x2A)
    return {struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)}


@pytest.mark.parametrize(
    ("cc", "machine", "elfclass"),
    [("aarch64-linux-gnu-gcc", EM_AARCH64, ELFCLASS64), ("arm-linux-gnueabihf-gcc", EM_ARM, ELFCLASS32)],
)
def test_cross_build_is_static_and_warning_free(tmp_path: Path, cc: str, machine: int, elfclass: int) -> None:
    out = tmp_path / "hwcap-exec"
    proc = subprocess.run(
        ["make", "-s", "-C", str(SOURCE_DIR), f"CC={cc}", f"OUT={out}"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    data = out.read_bytes()
    assert data[:4] == b"\x7fELF"
    assert data[4] == elfclass
    assert struct.unpack_from("<H", data, 18)[0] == machine
    types = _program_header_types(data)
    assert 3 not in types and 2 not in types, "PT_INTERP/PT_DYNAMIC: not a static binary"
