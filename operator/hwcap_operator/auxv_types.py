"""Auxiliary-vector entry types (``AT_*``), defined once for the whole package.

Values are the kernel's uapi numbers (``include/uapi/linux/auxvec.h``; table in kernel-facts §2.1). The
exec model, the auxv parsers and the agent all speak these numbers; nobody else re-types them.
"""

from __future__ import annotations

from typing import Final

from hwcap_operator.arch import Arch

AT_NULL: Final = 0
AT_IGNORE: Final = 1
AT_EXECFD: Final = 2
AT_PHDR: Final = 3
AT_PHENT: Final = 4
AT_PHNUM: Final = 5
AT_PAGESZ: Final = 6
AT_BASE: Final = 7
AT_FLAGS: Final = 8
AT_ENTRY: Final = 9
AT_NOTELF: Final = 10
AT_UID: Final = 11
AT_EUID: Final = 12
AT_GID: Final = 13
AT_EGID: Final = 14
AT_PLATFORM: Final = 15
AT_HWCAP: Final = 16
AT_CLKTCK: Final = 17
AT_SECURE: Final = 23
AT_BASE_PLATFORM: Final = 24
AT_RANDOM: Final = 25
AT_HWCAP2: Final = 26
AT_RSEQ_FEATURE_SIZE: Final = 27
AT_RSEQ_ALIGN: Final = 28
AT_HWCAP3: Final = 29
AT_HWCAP4: Final = 30
AT_EXECFN: Final = 31
AT_SYSINFO: Final = 32
AT_SYSINFO_EHDR: Final = 33
AT_MINSIGSTKSZ: Final = 51

#: The HWCAP entry types by word index 0..3 (the project-wide convention: word i is ``HWCAP_TYPES[i]``).
HWCAP_TYPES: Final[tuple[int, int, int, int]] = (AT_HWCAP, AT_HWCAP2, AT_HWCAP3, AT_HWCAP4)

#: How many HWCAP words each arch's kernel provides (ELF_HWCAPn defined), kernel-facts.md §2.5/§3: the
#: loader emits AT_HWCAP..HWCAP_TYPES[n-1] and nothing else. arm64: ELF_HWCAP..ELF_HWCAP3 (no ELF_HWCAP4);
#: x86: ELF_HWCAP + ELF_HWCAP2; powerpc: HWCAP + HWCAP2 (whether newer powerpc defines HWCAP3/4 is
#: unverified, §7); s390x and riscv: AT_HWCAP only.
KERNEL_HWCAP_WORDS: Final[dict[Arch, int]] = {"arm64": 3, "amd64": 2, "ppc64le": 2, "s390x": 1, "riscv64": 1}

#: Names for rendering (``AT_HWCAP2`` rather than ``26``) in traces and ``--print`` output.
AT_NAMES: Final[dict[int, str]] = {
    value: name
    for name, value in globals().items()
    if name.startswith("AT_") and name != "AT_NAMES" and isinstance(value, int)
}


def at_name(entry_type: int) -> str:
    """``AT_HWCAP2`` for 26; ``AT_0x2a`` for a type we have no name for (unknown types are kept, not hidden)."""
    return AT_NAMES.get(entry_type, f"AT_{entry_type:#x}")


def hwcap_word_index(entry_type: int) -> int | None:
    """0..3 for AT_HWCAP..AT_HWCAP4, else None."""
    try:
        return HWCAP_TYPES.index(entry_type)
    except ValueError:
        return None
