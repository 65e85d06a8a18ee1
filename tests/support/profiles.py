"""The real CPU dumps in tests/data/profiles: where they are, their names, their text, their own feature words.

The directory is the development tooling's ``PROFILES_DIR`` (the demo and the dev cluster's fake nodes read the
same files), so there is one definition of where the dumps live.
"""

from __future__ import annotations

from hwcap_dev.paths import PROFILES_DIR

__all__ = ["PROFILES_DIR", "TABLE_FILES", "dump_names", "raw_feature_words", "read_profile"]

#: Files in PROFILES_DIR that are reference tables, not one machine's cpuinfo/lscpu dump.
TABLE_FILES = frozenset({"arm64-hwcap-bits.txt", "arm64-aws-graviton-hwcap-table.txt", "README.md"})


def dump_names(prefix: str = "") -> list[str]:
    """Names of the cpuinfo/lscpu dump files (optionally only those starting with ``prefix``)."""
    return sorted(p.name for p in PROFILES_DIR.iterdir() if p.name not in TABLE_FILES and p.name.startswith(prefix))


def read_profile(name: str) -> str:
    """Text of one file of tests/data/profiles."""
    return (PROFILES_DIR / name).read_text()


def raw_feature_words(name: str) -> set[str]:
    """Independent expectation: the tokens of the dump's first Features/flags/features line, by str.split.

    Deliberately does not use the parser under test.
    """
    for line in read_profile(name).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in {"features", "flags"}:
            return set(value.split())
    raise AssertionError(f"{name}: no feature line")
