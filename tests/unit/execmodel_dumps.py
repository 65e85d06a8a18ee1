"""Independent expectations for the exec-model tests, read from the real dumps in tests/data/profiles.

HWCAP words are computed from a dump's ``Features`` line and the kernel's own bit table
(``arm64-hwcap-bits.txt``: uapi/asm/hwcap.h + cpuinfo.c), *not* through the catalog under test.
"""

from __future__ import annotations

from tests.support.profiles import raw_feature_words, read_profile

_WORD = {"AT_HWCAP": 0, "AT_HWCAP2": 1, "AT_HWCAP3": 2}


def _arm64_bits() -> dict[str, tuple[int, int]]:
    bits: dict[str, tuple[int, int]] = {}
    for line in read_profile("arm64-hwcap-bits.txt").splitlines():
        cols = line.split()
        if cols and cols[0] in _WORD:
            bits[cols[4]] = (_WORD[cols[0]], int(cols[1]))
    return bits


ARM64_BITS = _arm64_bits()


def arm64_words(name: str) -> tuple[int, int, int]:
    """(AT_HWCAP, AT_HWCAP2, AT_HWCAP3) of an arm64 dump."""
    words = [0, 0, 0]
    for token in raw_feature_words(name):
        word, bit = ARM64_BITS[token]
        words[word] |= 1 << bit
    return words[0], words[1], words[2]


def arm64_names(words: tuple[int, ...]) -> set[str]:
    return {n for n, (w, b) in ARM64_BITS.items() if w < len(words) and words[w] >> b & 1}


GRAVITON2 = "arm64-aws-graviton2-neoverse-n1.txt"
GRAVITON3 = "arm64-aws-graviton3-neoverse-v1.txt"
GRAVITON4 = "arm64-aws-graviton4-neoverse-v2.txt"
ZEN2 = "x86_64-amd-zen2-rome-epyc7742.txt"
ZEN4 = "x86_64-amd-zen4-genoa-epyc9654.txt"

#: docs/kernel.md#security-features: the arm64 security-relevant features (cpuinfo names).
ARM64_SECURITY = {"paca", "pacg", "gcs", "bti", "mte", "mte3", "mtefar", "mtestoreonly", "poe", "ssbs", "sb", "dit"}

#: docs/kernel.md#arm64-compat-hwcap: a few AArch32 COMPAT_HWCAP bits (neon 12, vfpv4 16, idiva 17, lpae 20) and
#: COMPAT_HWCAP2 bits (aes 0, crc32 4) — a plausible AArch32 view of a Neoverse core.
COMPAT_WORDS = ((1 << 12) | (1 << 16) | (1 << 17) | (1 << 20), (1 << 0) | (1 << 4), 0)
