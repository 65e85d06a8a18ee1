"""Ordered ISA levels of a library's own dispatcher, and the level a mask allows: shared by the level knobs.

OpenBLAS (``OPENBLAS_CORETYPE``), oneDNN (``ONEDNN_MAX_CPU_ISA``) and MKL (``MKL_ENABLE_INSTRUCTIONS``) each name
code paths in a fixed order, every path needing the features of the ones below it plus its own. Each table
is a tuple of ``(name, features the path may use)``, lowest first, the needs cumulative.
"""

from __future__ import annotations

from collections.abc import Iterable

Levels = tuple[tuple[str, frozenset[str]], ...]


def cumulative(steps: Iterable[tuple[str, Iterable[str]]]) -> Levels:
    """A level table from per-level additions (each level needs everything below it too)."""
    out: list[tuple[str, frozenset[str]]] = []
    needs: frozenset[str] = frozenset()
    for name, added in steps:
        needs = needs | frozenset(added)
        out.append((name, needs))
    return tuple(out)


def cap_below_dropped(levels: Levels, dropped: Iterable[str]) -> str | None:
    """The highest level below the first one that needs a dropped feature, for a knob that sets a *maximum*.

    None when no level needs a dropped feature (nothing to cap) or when even the lowest one does (the knob
    cannot go lower: the runtime is not covered for that feature).
    """
    names = set(dropped)
    for i, (_, needs) in enumerate(levels):
        if needs & names:
            return levels[i - 1][0] if i else None
    return None


def highest_within(levels: Levels, kept: Iterable[str]) -> str | None:
    """The highest level whose needs the mask keeps entirely, for a knob that *forces* a code path."""
    names = set(kept)
    fitting = [name for name, needs in levels if needs <= names]
    return fitting[-1] if fitting else None


def covers(levels: Levels, name: str) -> bool:
    """True when a level above the lowest needs feature ``name`` (capping below it keeps the runtime off it)."""
    return bool(levels) and name not in levels[0][1] and any(name in needs for _, needs in levels)


def rank(levels: Levels, name: str) -> int | None:
    """The position of level ``name`` (case-insensitive, as the libraries compare), None for an unknown name."""
    upper = name.strip().upper()
    return next((i for i, (level, _) in enumerate(levels) if level.upper() == upper), None)
