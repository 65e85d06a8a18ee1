"""Parse raw auxiliary-vector bytes (/proc/PID/auxv, PR_GET_AUXV buffers) into entries and HWCAP words.

Layouts: native 64-bit pairs of unsigned longs (little- or big-endian) and the packed 32-bit pairs of a
compat task's saved_auxv (kernel-facts.md §2.5, §5.1). The kernel copies the vector up to and including
AT_NULL; PR_GET_AUXV hands back the whole zero-padded array. Duplicate HWCAP entries are legal input:
the last one wins (what the v5 inherit loop does), and a warning says so. A HWCAP word missing from
the vector is reported in ``present`` because a child would inherit 0 for it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal, cast

from hwcap_operator.auxv_types import AT_NULL
from hwcap_operator.features.model import HWCAP_AUXV_TYPES, N_WORDS
from hwcap_operator.features.result import FeatureParseError

Layout = Literal["64le", "64be", "32le", "32be"]
LAYOUTS: tuple[Layout, ...] = ("64le", "64be", "32le", "32be")
_FORMATS: dict[Layout, str] = {"64le": "<QQ", "64be": ">QQ", "32le": "<II", "32be": ">II"}
#: Largest AT_* type in include/uapi/linux/auxvec.h is AT_MINSIGSTKSZ (51); anything far above
#: that means the bytes are being read with the wrong layout.
_MAX_PLAUSIBLE_TYPE = 64


class AuxvParseError(FeatureParseError):
    """Auxv bytes that cannot be read (empty, truncated, no plausible layout)."""


@dataclass(frozen=True, slots=True)
class AuxvVector:
    """A decoded auxv: the entries up to AT_NULL, the HWCAP words and what was odd about it."""

    source: str
    layout: Layout
    entries: tuple[tuple[int, int], ...]
    hwcap: tuple[int, int, int, int]
    present: frozenset[int]
    warnings: tuple[str, ...] = ()

    def get(self, at_type: int) -> int | None:
        """Value of the last entry of ``at_type`` (what the kernel's inherit loop would take), or None."""
        found = None
        for t, v in self.entries:
            if t == at_type:
                found = v
        return found


def _decode(data: bytes, layout: Layout) -> tuple[list[tuple[int, int]], bool, int]:
    """Entries before AT_NULL, whether AT_NULL was seen, and the byte offset just after it."""
    fmt = _FORMATS[layout]
    size = struct.calcsize(fmt)
    entries: list[tuple[int, int]] = []
    for off in range(0, len(data), size):
        t, v = struct.unpack_from(fmt, data, off)
        if t == AT_NULL:
            return entries, True, off + size
        entries.append((t, v))
    return entries, False, len(data)


def _plausible(entries: list[tuple[int, int]], terminated: bool) -> bool:
    return terminated and all(0 < t < _MAX_PLAUSIBLE_TYPE for t, _ in entries)


def parse_auxv(data: bytes, source: str = "<auxv>", layout: Layout | Literal["auto"] = "auto") -> AuxvVector:
    """Decode ``data``; ``layout="auto"`` picks the first plausible of 64le, 64be, 32le, 32be.

    Raises :class:`AuxvParseError` for empty or truncated input or when no layout fits.
    """
    if not data:
        raise AuxvParseError(source, "", "empty auxv")
    if layout != "auto" and layout not in LAYOUTS:
        raise AuxvParseError(source, str(layout), f"unknown layout (expected auto or {', '.join(LAYOUTS)})")
    candidates: tuple[Layout, ...] = LAYOUTS if layout == "auto" else (layout,)
    fitting = [lay for lay in candidates if len(data) % struct.calcsize(_FORMATS[lay]) == 0]
    if not fitting:
        size = struct.calcsize(_FORMATS[candidates[-1]])
        raise AuxvParseError(source, f"{len(data)} bytes",
                             f"truncated: not a whole number of {size}-byte (type, value) pairs")
    chosen: Layout | None = None
    decoded: tuple[list[tuple[int, int]], bool, int] = ([], False, 0)
    for lay in fitting:
        decoded = _decode(data, lay)
        if layout != "auto" or _plausible(decoded[0], decoded[1]):
            chosen = lay
            break
    if chosen is None:
        raise AuxvParseError(source, f"{len(data)} bytes",
                             "no layout (64le/64be/32le/32be) gives a plausible, AT_NULL-terminated vector")
    entries, terminated, end = decoded
    warnings: list[str] = []
    if not terminated:
        warnings.append("no AT_NULL terminator: the kernel would read past this vector")
    if any(data[end:]):
        warnings.append(f"non-zero bytes after AT_NULL at offset {end} ignored (the kernel stops at AT_NULL)")
    words = [0] * N_WORDS
    present: set[int] = set()
    for t, v in entries:
        if t in HWCAP_AUXV_TYPES:
            w = HWCAP_AUXV_TYPES.index(t)
            if w in present:
                warnings.append(f"duplicate AT_HWCAP{'' if w == 0 else w + 1} entry: the last one wins")
            present.add(w)
            words[w] = v
    return AuxvVector(source, chosen, tuple(entries), cast(tuple[int, int, int, int], tuple(words)),
                      frozenset(present), tuple(warnings))


def build_auxv(entries: list[tuple[int, int]], layout: Layout = "64le") -> bytes:
    """Encode ``entries`` plus the AT_NULL pair (the inverse of :func:`parse_auxv`; for tests/tools)."""
    fmt = _FORMATS[layout]
    return b"".join(struct.pack(fmt, t, v) for t, v in [*entries, (AT_NULL, 0)])
