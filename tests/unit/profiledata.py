"""Access to the real CPU dumps in tests/data/profiles (shared by the unit tests and conftest)."""

from __future__ import annotations

from pathlib import Path

PROFILES = Path(__file__).resolve().parent.parent / "data" / "profiles"
#: Files in PROFILES that are reference tables, not one machine's cpuinfo/lscpu dump.
TABLE_FILES = frozenset({"arm64-hwcap-bits.txt", "arm64-aws-graviton-hwcap-table.txt", "README.md"})


def dump_names(prefix: str = "") -> list[str]:
    """Names of the cpuinfo/lscpu dump files (optionally only those starting with ``prefix``)."""
    return sorted(p.name for p in PROFILES.iterdir() if p.name not in TABLE_FILES and p.name.startswith(prefix))


def read_profile(name: str) -> str:
    """Text of one file of tests/data/profiles."""
    return (PROFILES / name).read_text()


def raw_feature_words(name: str) -> set[str]:
    """Independent expectation: the tokens of the dump's first Features/flags/features line, by str.split.

    Deliberately does not use the parser under test.
    """
    for line in read_profile(name).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in {"features", "flags"}:
            return set(value.split())
    raise AssertionError(f"{name}: no feature line")
