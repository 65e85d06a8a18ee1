"""oneDNN's x86-64 ISA levels (``ONEDNN_MAX_CPU_ISA``) and the features each one's JIT code may use.

oneDNN generates its kernels at run time for the highest ISA its own CPUID probe finds; the variable sets a
*maximum* (``src/cpu/x64/cpu_isa_traits.cpp``: read once, names compared case-insensitively, an unknown
name ignored). Levels and what ``mayiuse()`` requires for each (``cpu_isa_traits.hpp``): SSE41; AVX; AVX2
(oneDNN's AVX2 kernels use FMA); AVX512_CORE (AVX-512 F, BW, VL, DQ; CD too); AVX512_CORE_VNNI;
AVX512_CORE_BF16. The FP16/AMX levels are not written: their names changed (AVX512_CORE_FP16 became
AVX10_1_512 in later releases), and a cap is only ever needed below them. AVX2_VNNI (AVX-VNNI, not on any
AVX-512 part's path) is left out of the chain, so a dropped avx_vnni is reported as not covered.
Checked against oneDNN 3.2 (PyPI onednn-cpu-gomp 2023.2.0) by tests/runtimes/test_onednn.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from hwcap_operator.features.isa_levels import Levels, cap_below_dropped, covers, cumulative

ONEDNN_ISAS: Levels = cumulative((
    ("SSE41", ("sse4_1",)),
    ("AVX", ("avx",)),
    ("AVX2", ("avx2", "fma")),
    ("AVX512_CORE", ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd")),
    ("AVX512_CORE_VNNI", ("avx512_vnni",)),
    ("AVX512_CORE_BF16", ("avx512_bf16",)),
    ("AVX512_CORE_FP16", ("avx512_fp16",)),
    ("AVX512_CORE_AMX", ("amx_tile", "amx_int8", "amx_bf16")),
))  # fmt: skip
#: Levels written only as a reason to cap below them, never as a value (their spelling depends on the version).
NOT_WRITTEN = frozenset({"AVX512_CORE_FP16", "AVX512_CORE_AMX"})


def onednn_max_isa(dropped: Iterable[str]) -> str | None:
    """The ONEDNN_MAX_CPU_ISA value for features ``dropped``; None when no level needs one of them."""
    cap = cap_below_dropped(ONEDNN_ISAS, dropped)
    while cap in NOT_WRITTEN:
        cap = ONEDNN_ISAS[[n for n, _ in ONEDNN_ISAS].index(cap) - 1][0]
    return cap


def onednn_covers(name: str) -> bool:
    """True when capping oneDNN's ISA keeps its JIT off feature ``name``."""
    return covers(ONEDNN_ISAS, name)
