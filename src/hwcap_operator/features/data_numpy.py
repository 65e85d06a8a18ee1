"""numpy's runtime dispatch targets on x86 and the features each needs: the NPY_DISABLE_CPU_FEATURES names.

numpy compiles some loops several times and picks one at import from its own CPUID probe;
``NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL ..."`` removes targets from that choice. Three facts shape
what the webhook writes (checked against numpy 2.4.6 and 2.2.6 on this project's CI machine):

- disabling a target does not disable the targets above it (X86_V4 off leaves AVX512_ICL on), so every
  target that needs a dropped feature is named;
- the target names changed: numpy >= 2.4 groups by level (X86_V3, X86_V4, AVX512_ICL, AVX512_SPR; baseline
  X86_V2), numpy < 2.4 by feature (AVX2, AVX512F, AVX512_SKX, ...; baseline SSE3). Names a numpy does not
  know are ignored, so both sets are written;
- naming a *baseline* feature stops numpy from importing ("You cannot disable CPU feature ..., since it is
  part of the baseline optimizations"), and builds differ in their baseline: only targets at AVX and above
  are written (no numpy build uses them as baseline; a node without AVX cannot run a numpy built so anyway).

Sources: numpy/_core/meson.build and numpy/_core/src/common/npy_cpu_features.c (feature groups of the
2.4 and 2.2 releases).
"""

from __future__ import annotations

from collections.abc import Iterable

_V3 = frozenset({"avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe"})
_V4 = _V3 | {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}
_ICL = _V4 | {"avx512ifma", "avx512vbmi", "avx512_vbmi2", "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq",
              "vaes", "gfni", "vpclmulqdq"}  # fmt: skip
_SPR = _ICL | {"avx512_fp16"}
_SKX_OLD = frozenset({"avx", "f16c", "fma", "avx2", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})

#: numpy target -> the features it needs (implied ones included).
NUMPY_TARGETS: dict[str, frozenset[str]] = {
    # numpy >= 2.4
    "X86_V3": _V3,
    "X86_V4": _V4,
    "AVX512_ICL": _ICL,
    "AVX512_SPR": _SPR,
    # numpy < 2.4
    "AVX": frozenset({"avx"}),
    "F16C": frozenset({"avx", "f16c"}),
    "FMA3": frozenset({"avx", "f16c", "fma"}),
    "AVX2": frozenset({"avx", "f16c", "fma", "avx2"}),
    "AVX512F": frozenset({"avx", "f16c", "fma", "avx2", "avx512f"}),
    "AVX512CD": frozenset({"avx", "f16c", "fma", "avx2", "avx512f", "avx512cd"}),
    "AVX512_SKX": _SKX_OLD,
    "AVX512_CLX": _SKX_OLD | {"avx512_vnni"},
    "AVX512_CNL": _SKX_OLD | {"avx512ifma", "avx512vbmi"},
    # AVX512_ICL and AVX512_SPR exist in both (numpy < 2.4 with fewer needs: the 2.4 sets are supersets)
}


def numpy_disable(dropped: Iterable[str]) -> tuple[str, ...]:
    """The numpy targets that need any of ``dropped`` (catalog names), in table order."""
    names = set(dropped)
    return tuple(target for target, needs in NUMPY_TARGETS.items() if needs & names)


def numpy_covers(name: str) -> bool:
    """True when some numpy target is switched off for feature ``name``."""
    return any(name in needs for needs in NUMPY_TARGETS.values())
