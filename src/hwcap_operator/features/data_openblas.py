"""OpenBLAS's core types (``OPENBLAS_CORETYPE``) on x86-64 and arm64 and the features each one's kernels may use.

A DYNAMIC_ARCH OpenBLAS (numpy's and scipy's bundled ``scipy-openblas``, Debian's libopenblas0-pthread) picks a
kernel family at load from its own CPUID probe (``driver/others/dynamic.c``: ``get_coretype``). The variable
*forces* a family: ``force_coretype`` compares the name case-insensitively against its ``corename`` table and
does **not** check that the CPU has the family's instructions; an unknown name is reported ("Core not found",
with OPENBLAS_VERBOSE=2) and ignored. So the webhook writes the highest family whose needs the *mask keeps*
(every member has them), and only when some family would use a feature the mask drops.

Needs: the compiler flags ``kernel/Makefile`` gives each family's kernels in OpenBLAS 0.3.x (Haswell ``-mavx2
-mfma``, SkylakeX ``-march=skylake-avx512``, Cooperlake ``-march=cooperlake``), read as the features code
generated with them may use. SapphireRapids is not written: ``force_coretype`` of 0.3.x scans only indexes
1..25 of its table and never matches it. Checked against OpenBLAS 0.3.31 (numpy 2.4.6's bundled
scipy-openblas64) by tests/runtimes/test_openblas.py.

On arm64 OpenBLAS picks the family from MIDR (``driver/others/dynamic_arm64.c``), a channel a mask never
closes: a process started on a Neoverse-V1 runs SVE kernels wherever it migrates. ``Makefile.arm64``: ARMV8 and
the Cortex families are ``-march=armv8-a``; NEOVERSEN1 is ``-mcpu=neoverse-n1`` (GCC >= 9: Armv8.2-A with
LSE, RDM, CRC32, FP16, dot product, RCpc); NEOVERSEV1 and NEOVERSEN2 add SVE (and SVE2, BF16, I8MM). Only
ARMV8 and NEOVERSEN1 are written: the SVE families are reasons to force a lower one, and cannot be shown
under qemu 7.2 (it has no Neoverse-V1/N2 model). Checked against Debian bookworm's arm64 OpenBLAS 0.3.21
(libopenblas0-pthread, DYNAMIC_ARCH) under qemu-user by tests/runtimes/test_openblas_arm64.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from hwcap_operator.features.isa_levels import Levels, covers, cumulative, highest_within

_SKYLAKE_AVX512_EXTRA = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "f16c", "bmi1", "bmi2", "abm",
                         "movbe", "adx")  # fmt: skip

OPENBLAS_CORETYPES: Levels = cumulative((
    ("Prescott", ("pni",)),  # SSE3
    ("Core2", ("ssse3",)),
    ("Nehalem", ("sse4_1", "sse4_2", "popcnt")),
    ("Sandybridge", ("avx",)),
    ("Haswell", ("avx2", "fma")),
    ("SkylakeX", _SKYLAKE_AVX512_EXTRA),
    ("Cooperlake", ("avx512_vnni", "avx512_bf16")),
))  # fmt: skip


OPENBLAS_CORETYPES_ARM64: Levels = cumulative((
    ("ARMV8", ("fp", "asimd")),
    ("NEOVERSEN1", ("atomics", "crc32", "asimdrdm", "fphp", "asimdhp", "asimddp", "lrcpc")),
    ("NEOVERSEV1", ("sve", "jscvt", "fcma", "ilrcpc", "flagm", "dit", "uscat")),
    ("NEOVERSEN2", ("sve2", "bf16", "i8mm")),
))  # fmt: skip
#: Families only ever a reason to force a lower one (see the module docstring).
NOT_WRITTEN = frozenset({"NEOVERSEV1", "NEOVERSEN2"})
CORETYPES: dict[str, Levels] = {"amd64": OPENBLAS_CORETYPES, "arm64": OPENBLAS_CORETYPES_ARM64}


def openblas_coretype(dropped: Iterable[str], kept: Iterable[str], arch: str = "amd64") -> str | None:
    """The core type to force for a mask keeping ``kept`` that drops ``dropped``; None when none is needed."""
    levels = CORETYPES.get(arch, ())
    lost = set(dropped)
    if not any(needs & lost for _, needs in levels):
        return None
    return highest_within(tuple(lv for lv in levels if lv[0] not in NOT_WRITTEN), kept)


def openblas_covers(name: str, arch: str = "amd64") -> bool:
    """True when forcing a lower core type keeps OpenBLAS off feature ``name``."""
    return covers(CORETYPES.get(arch, ()), name)
