"""oneMKL's code paths (``MKL_ENABLE_INSTRUCTIONS``) on Intel CPUs and the features each one may use.

MKL dispatches to a CPU-specific library (``libmkl_mc3`` SSE4.2, ``libmkl_avx2``, ``libmkl_avx512``,
``libmkl_avx10``, ...) from its own CPUID probe. The variable sets the *latest* ISA it may dispatch to (oneMKL
Developer Reference 2024-2025, "mkl_enable_instructions" and "Instruction Set Specific Dispatching"):
SSE4_2, AVX2, AVX512 (Skylake-SP), AVX512_E1 (+ VNNI), AVX512_E2 (Ice Lake: + VAES, VPCLMULQDQ and the other
ICX instructions), AVX512_E3 (+ BF16), AVX512_E4 (+ AMX, FP16). AVX2_E1 (AVX-VNNI) is not part of this
chain and is not written. On non-Intel CPUs MKL ignores the variable and takes its generic path (measured:
libmkl_def on an AMD EPYC); tests/runtimes/test_mkl.py therefore runs MKL 2026.2 under qemu-x86_64 with an
Intel CPU model.
"""

from __future__ import annotations

from collections.abc import Iterable

from hwcap_operator.features.isa_levels import Levels, cap_below_dropped, covers, cumulative

MKL_LEVELS: Levels = cumulative((
    ("SSE4_2", ("ssse3", "sse4_1", "sse4_2", "popcnt")),
    ("AVX2", ("avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe")),
    ("AVX512", ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")),
    ("AVX512_E1", ("avx512_vnni",)),
    ("AVX512_E2", ("vaes", "vpclmulqdq", "gfni", "avx512ifma", "avx512vbmi", "avx512_vbmi2", "avx512_bitalg",
                   "avx512_vpopcntdq")),
    ("AVX512_E3", ("avx512_bf16",)),
    ("AVX512_E4", ("amx_tile", "amx_int8", "amx_bf16", "avx512_fp16")),
))  # fmt: skip


def mkl_max_instructions(dropped: Iterable[str]) -> str | None:
    """The MKL_ENABLE_INSTRUCTIONS value for features ``dropped``; None when no path needs one of them."""
    return cap_below_dropped(MKL_LEVELS, dropped)


def mkl_covers(name: str) -> bool:
    """True when capping MKL's dispatch keeps it off feature ``name``."""
    return covers(MKL_LEVELS, name)
