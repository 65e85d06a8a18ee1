"""OpenBLAS's x86-64 core types (``OPENBLAS_CORETYPE``) and the features each one's kernels may use.

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


def openblas_coretype(dropped: Iterable[str], kept: Iterable[str]) -> str | None:
    """The core type to force for a mask keeping ``kept`` that drops ``dropped``; None when none is needed."""
    lost = set(dropped)
    if not any(needs & lost for _, needs in OPENBLAS_CORETYPES):
        return None
    return highest_within(OPENBLAS_CORETYPES, kept)


def openblas_covers(name: str) -> bool:
    """True when forcing a lower core type keeps OpenBLAS off feature ``name``."""
    return covers(OPENBLAS_CORETYPES, name)
