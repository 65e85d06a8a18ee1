"""OpenSSL's arm64 capability word ``OPENSSL_armcap_P``: which bit is which feature, and what the env does.

``crypto/armcap.c`` (OpenSSL 1.1.1 to 3.x) reads the variable before any probe and *replaces* the detected
word with it (``OPENSSL_armcap_P = strtoul(getenv("OPENSSL_armcap"), NULL, 0)``; there is no ``~`` form, unlike
``OPENSSL_ia32cap``; "~0x.." would parse as 0 and switch every accelerated path off). So the webhook writes the
whole word: the bits of the features the mask *keeps*, which every member has. A bit OpenSSL does not know
is never tested; a bit for a kept feature OpenSSL would not have detected is still present on every member.

Bit meanings: ``crypto/arm_arch.h`` of OpenSSL 3.0 (bits 0-7: ARMV7_NEON, ARMV7_TICK, ARMV8_AES, ARMV8_SHA1,
ARMV8_SHA256, ARMV8_PMULL, ARMV8_SHA512, ARMV8_CPUID; 3.0's armcap.c reads AT_HWCAP only, as Debian's 3.0.22
binary shows), of 3.1 (ARMV8_RNG 8, from AT_HWCAP2) and of 3.2 and later (ARMV8_SM3 9, ARMV8_SM4 10,
ARMV8_SHA3 11, ARMV8_SVE 13, ARMV8_SVE2 14). Bits 12, 15 and 16 (UNROLL8_EOR3, HAVE_SHA3_AND_WORTH_USING,
UNROLL12_EOR3) are tuning choices OpenSSL derives from MIDR, not features: never written (a slower schedule,
never a missing instruction). ARMV7_TICK is AArch32 only. ARMV8_CPUID lets OpenSSL read MIDR_EL1 with MRS:
written only while the mask keeps HWCAP_CPUID. tests/runtimes/test_openssl_arm64.py checks the bits OpenSSL 3.0
detects against qemu's CPU models and that the written word is the one OpenSSL uses.
"""

from __future__ import annotations

from collections.abc import Iterable

#: arm64 catalog name -> bit of OPENSSL_armcap_P.
ARMCAP_BITS: dict[str, int] = {
    "asimd": 0,  # ARMV7_NEON (set from HWCAP_ASIMD on AArch64)
    "aes": 2,
    "sha1": 3,
    "sha2": 4,  # ARMV8_SHA256
    "pmull": 5,
    "sha512": 6,
    "cpuid": 7,
    "rng": 8,
    "sm3": 9,
    "sm4": 10,
    "sha3": 11,
    "sve": 13,
    "sve2": 14,
}
#: The bits OpenSSL 3.0 itself detects (the version Debian bookworm ships and the suite runs).
OPENSSL_3_0_DETECTS: frozenset[str] = frozenset({"asimd", "aes", "sha1", "sha2", "pmull", "sha512", "cpuid"})


def armcap_word(names: Iterable[str]) -> int:
    """The OPENSSL_armcap bits of ``names`` (catalog names): the word to write for the features a mask keeps."""
    word = 0
    for name in names:
        bit = ARMCAP_BITS.get(name)
        if bit is not None:
            word |= 1 << bit
    return word


def armcap_covers(name: str) -> bool:
    """True when OpenSSL has a capability bit for arm64 feature ``name``."""
    return name in ARMCAP_BITS
