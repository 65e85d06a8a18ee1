"""OpenJDK HotSpot flags that keep the JIT and its intrinsics off x86 features a mask drops.

HotSpot probes CPUID itself (vm_version_x86.cpp) and then trims what it uses by its own flags, which the
webhook can pass through ``JAVA_TOOL_OPTIONS`` (read by every JVM, at the price of one "Picked up
JAVA_TOOL_OPTIONS: ..." line on stderr at start). Two flags are levels, the rest are booleans:

- ``UseAVX`` 0..3: 3 uses AVX-512 (EVEX, with VAES/VPCLMULQDQ/GFNI forms), 2 AVX2, 1 AVX. Setting it
  lower makes HotSpot clear the higher features from its own feature set (``-Xlog:os+cpu`` shows them gone).
- ``UseSSE`` 0..4: 4 uses SSE4.1/4.2, 3 SSE3/SSSE3. (x86-64 always has SSE2, so it never goes below 3.)
- booleans: AES, SHA (HotSpot turns the matching intrinsics off with them), CLMUL, FMA, BMI1/2, POPCNT,
  LZCNT, TZCNT. Only product flags: a diagnostic one (UseAESIntrinsics) stops the JVM unless unlocked.

Only flags that exist on x86 in every JDK from 11 to 25 are used (src/hotspot/cpu/x86/globals_x86.hpp and
src/hotspot/share/runtime/globals.hpp): an unknown -XX flag stops the JVM from starting.
tests/runtimes/test_openjdk.py checks each against the installed JDK with ``-XX:+PrintFlagsFinal``.
"""

from __future__ import annotations

from collections.abc import Iterable

#: UseAVX level -> features that level uses (dropping any caps UseAVX below the level).
USE_AVX_NEEDS: dict[int, frozenset[str]] = {
    3: frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512ifma", "avx512vbmi",
                  "avx512_vbmi2", "avx512_vnni", "avx512_bitalg", "avx512_vpopcntdq", "avx512_bf16",
                  "avx512_fp16", "vaes", "vpclmulqdq", "gfni"}),
    2: frozenset({"avx2"}),
    1: frozenset({"avx"}),
}  # fmt: skip
#: UseSSE level -> features that level uses.
USE_SSE_NEEDS: dict[int, frozenset[str]] = {4: frozenset({"sse4_1", "sse4_2"}), 3: frozenset({"pni", "ssse3"})}
#: Feature -> boolean flags to switch off.
BOOLEAN_FLAGS: dict[str, tuple[str, ...]] = {
    "aes": ("UseAES",),  # HotSpot then turns its AES intrinsics off (they are diagnostic flags: not settable)
    "sha_ni": ("UseSHA",),
    "pclmulqdq": ("UseCLMUL",),
    "fma": ("UseFMA",),
    "bmi1": ("UseBMI1Instructions", "UseCountTrailingZerosInstruction"),
    "bmi2": ("UseBMI2Instructions",),
    "popcnt": ("UsePopCountInstruction",),
    "abm": ("UseCountLeadingZerosInstruction",),
}


def hotspot_options(dropped: Iterable[str]) -> tuple[str, ...]:
    """The ``-XX:`` options for x86 features ``dropped`` (catalog names), levels first, in a stable order."""
    names = set(dropped)
    options: list[str] = []
    for flag, levels in (("UseAVX", USE_AVX_NEEDS), ("UseSSE", USE_SSE_NEEDS)):
        capped = [level - 1 for level, needs in levels.items() if needs & names]
        if capped:
            options.append(f"-XX:{flag}={min(capped)}")
    for name, flags in BOOLEAN_FLAGS.items():
        if name in names:
            options.extend(f"-XX:-{f}" for f in flags)
    return tuple(options)


def hotspot_covers(name: str) -> bool:
    """True when some HotSpot flag keeps the JVM off feature ``name``."""
    return name in BOOLEAN_FLAGS or any(name in needs for needs in (*USE_AVX_NEEDS.values(), *USE_SSE_NEEDS.values()))
