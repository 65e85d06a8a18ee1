"""OpenJDK HotSpot flags that keep the AArch64 JIT and its stubs off features a mask drops.

On Linux/AArch64 HotSpot takes its features from AT_HWCAP/AT_HWCAP2 (``vm_version_linux_aarch64.cpp``), which
the mask hides only where the kernel carries it past the first exec; the flags below reach every JVM through
``JAVA_TOOL_OPTIONS`` on any kernel. From ``src/hotspot/cpu/aarch64/vm_version_aarch64.cpp`` and
``globals_aarch64.hpp`` of jdk17u (the JDK Debian bookworm ships, run by tests/runtimes/test_openjdk_arm64.py):

- ``UseSVE`` 0..2 (product): 2 uses SVE2, 1 SVE; lower is honoured, and HotSpot then emits NEON only.
- ``UseLSE`` (product): LSE atomics (HWCAP_ATOMICS).
- ``UseAES`` (product) turns the AES block intrinsics off, but *not* ``UseAESCTRIntrinsics``, which stays on
  whenever the CPU has AES (its stub uses AESE/AESMC): that one is diagnostic, so the options carry
  ``-XX:+UnlockDiagnosticVMOptions -XX:-UseAESCTRIntrinsics``.
- ``UseSHA`` (product) turns all SHA intrinsics off (SHA-1, SHA-256, SHA-512, SHA-3: the per-algorithm ones
  are diagnostic), so dropping any of sha1/sha2/sha512/sha3 switches all of them off.
- ``UseCRC32`` (product) for CRC32 instructions in java.util.zip.CRC32; CRC32C's stub uses them unconditionally,
  hence the diagnostic ``-XX:-UseCRC32CIntrinsics`` too.
- ``UseGHASHIntrinsics`` (diagnostic): GHASH with PMULL.

An unknown or misspelt -XX option stops every JVM: the test checks each against the real JDK under qemu.
"""

from __future__ import annotations

from collections.abc import Iterable

UNLOCK_DIAGNOSTIC = "-XX:+UnlockDiagnosticVMOptions"
#: arm64 feature -> (product flags, diagnostic flags) to switch off.
BOOLEAN_FLAGS_ARM64: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "atomics": (("UseLSE",), ()),
    "aes": (("UseAES",), ("UseAESCTRIntrinsics",)),
    "sha1": (("UseSHA",), ()),
    "sha2": (("UseSHA",), ()),
    "sha512": (("UseSHA",), ()),
    "sha3": (("UseSHA",), ()),
    "crc32": (("UseCRC32",), ("UseCRC32CIntrinsics",)),
    "pmull": ((), ("UseGHASHIntrinsics",)),
}
#: UseSVE level -> the feature that level uses.
USE_SVE_NEEDS: dict[int, str] = {2: "sve2", 1: "sve"}


def hotspot_options_arm64(dropped: Iterable[str]) -> tuple[str, ...]:
    """The ``-XX:`` options for arm64 features ``dropped`` (catalog names), in a stable order."""
    names = set(dropped)
    options: list[str] = []
    capped = [level - 1 for level, needs in USE_SVE_NEEDS.items() if needs in names]
    if capped:
        options.append(f"-XX:UseSVE={min(capped)}")
    product: dict[str, None] = {}
    diagnostic: dict[str, None] = {}
    for name, (flags, diag) in BOOLEAN_FLAGS_ARM64.items():
        if name in names:
            product.update(dict.fromkeys(flags))
            diagnostic.update(dict.fromkeys(diag))
    options.extend(f"-XX:-{f}" for f in product)
    if diagnostic:
        options.append(UNLOCK_DIAGNOSTIC)
        options.extend(f"-XX:-{f}" for f in diagnostic)
    return tuple(options)


def hotspot_arm64_covers(name: str) -> bool:
    """True when some HotSpot flag keeps the AArch64 JVM off feature ``name``."""
    return name in BOOLEAN_FLAGS_ARM64 or name in USE_SVE_NEEDS.values()


def hotspot_arm64_flags() -> frozenset[str]:
    """Every flag name the arm64 options may carry (for the check against the real JDK)."""
    names = {f for product, diag in BOOLEAN_FLAGS_ARM64.values() for f in (*product, *diag)}
    return frozenset(names | {"UseSVE", UNLOCK_DIAGNOSTIC.removeprefix("-XX:+")})
