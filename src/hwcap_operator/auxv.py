"""The auxiliary vector, one codec for the whole project: entry types, byte layouts, parsing and encoding.

Entry types (``AT_*``) are the kernel's uapi numbers (``include/uapi/linux/auxvec.h``; docs/kernel.md#auxv-entry-types).
The bytes come in two shapes (docs/kernel.md#auxv-layout): native 64-bit ``unsigned long`` pairs, and the packed
32-bit pairs the compat loader stores for a 32-bit task, in either byte order. The kernel model
(``execmodel``), the parsers of dumps and ``/proc/PID/auxv`` (agent, ``hwcapctl auxv``) and the tests all read and
write vectors through this module; nobody else re-types a number or a layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast

from hwcap_operator.arch import Arch
from hwcap_operator.input_error import InputError

AT_NULL: Final = 0
AT_IGNORE: Final = 1
AT_EXECFD: Final = 2
AT_PHDR: Final = 3
AT_PHENT: Final = 4
AT_PHNUM: Final = 5
AT_PAGESZ: Final = 6
AT_BASE: Final = 7
AT_FLAGS: Final = 8
AT_ENTRY: Final = 9
AT_NOTELF: Final = 10
AT_UID: Final = 11
AT_EUID: Final = 12
AT_GID: Final = 13
AT_EGID: Final = 14
AT_PLATFORM: Final = 15
AT_HWCAP: Final = 16
AT_CLKTCK: Final = 17
AT_SECURE: Final = 23
AT_BASE_PLATFORM: Final = 24
AT_RANDOM: Final = 25
AT_HWCAP2: Final = 26
AT_RSEQ_FEATURE_SIZE: Final = 27
AT_RSEQ_ALIGN: Final = 28
AT_HWCAP3: Final = 29
AT_HWCAP4: Final = 30
AT_EXECFN: Final = 31
AT_SYSINFO: Final = 32
AT_SYSINFO_EHDR: Final = 33
AT_MINSIGSTKSZ: Final = 51

#: The HWCAP entry types by word index 0..3 (the project-wide convention: word i is ``HWCAP_TYPES[i]``).
HWCAP_TYPES: Final[tuple[int, int, int, int]] = (AT_HWCAP, AT_HWCAP2, AT_HWCAP3, AT_HWCAP4)

#: How many HWCAP words each arch's kernel provides (ELF_HWCAPn defined; docs/kernel.md#hwcap-words-per-arch):
#: the loader emits AT_HWCAP..HWCAP_TYPES[n-1] and nothing else. arm64: ELF_HWCAP..ELF_HWCAP3 (no ELF_HWCAP4);
#: x86: ELF_HWCAP + ELF_HWCAP2; powerpc: HWCAP + HWCAP2 (whether newer powerpc defines HWCAP3/4 is
#: unverified, docs/kernel.md#unverified); s390x and riscv: AT_HWCAP only.
KERNEL_HWCAP_WORDS: Final[dict[Arch, int]] = {"arm64": 3, "amd64": 2, "ppc64le": 2, "s390x": 1, "riscv64": 1}

#: Names for rendering (``AT_HWCAP2`` rather than ``26``) in traces and ``--print`` output.
AT_NAMES: Final[dict[int, str]] = {
    value: name
    for name, value in globals().items()
    if name.startswith("AT_") and name != "AT_NAMES" and isinstance(value, int)
}


def at_name(entry_type: int) -> str:
    """``AT_HWCAP2`` for 26; ``AT_0x2a`` for a type we have no name for (unknown types are kept, not hidden)."""
    return AT_NAMES.get(entry_type, f"AT_{entry_type:#x}")


def hwcap_word_index(entry_type: int) -> int | None:
    """0..3 for AT_HWCAP..AT_HWCAP4, else None."""
    try:
        return HWCAP_TYPES.index(entry_type)
    except ValueError:
        return None


# ---- byte layouts --------------------------------------------------------------------------------
ByteOrder = Literal["little", "big"]
Pair = tuple[int, int]
LayoutName = Literal["64le", "64be", "32le", "32be"]


@dataclass(frozen=True)
class Layout:
    """How (type, value) pairs are encoded: word width in bytes (8 native, 4 compat) and byte order."""

    width: int
    byteorder: ByteOrder

    @property
    def mask(self) -> int:
        """Truncation a store through ``elf_addr_t`` of this width applies (compat values are u32)."""
        return (1 << (8 * self.width)) - 1

    @property
    def name(self) -> LayoutName:
        """``64le``, ``32be``, ...: how users and dumps name the layout."""
        return cast(LayoutName, f"{8 * self.width}{'le' if self.byteorder == 'little' else 'be'}")

    def words(self, raw: bytes) -> list[int]:
        """``raw`` as an array of words of this layout (a trailing partial word is ignored)."""
        w = self.width
        return [int.from_bytes(raw[i : i + w], self.byteorder) for i in range(0, len(raw) - w + 1, w)]

    def encode(self, pairs: Iterable[Pair]) -> bytes:
        """Pairs to bytes, values truncated to the word width like a store through ``elf_addr_t``."""
        out = bytearray()
        for entry_type, value in pairs:
            out += (entry_type & self.mask).to_bytes(self.width, self.byteorder)
            out += (value & self.mask).to_bytes(self.width, self.byteorder)
        return bytes(out)

    def pairs(self, raw: bytes, *, stop_at_null: bool = True) -> list[Pair]:
        """Decode pairs; by default up to and including the first ``AT_NULL`` type (what every reader does)."""
        words = self.words(raw)
        out: list[Pair] = []
        for i in range(0, len(words) - 1, 2):
            out.append((words[i], words[i + 1]))
            if stop_at_null and words[i] == AT_NULL:
                break
        return out


def native_layout(byteorder: ByteOrder) -> Layout:
    """64-bit ``unsigned long`` pairs: every arch this project targets is 64-bit."""
    return Layout(8, byteorder)


def compat_layout(byteorder: ByteOrder) -> Layout:
    """Packed ``compat_uptr_t`` (u32) pairs, as the compat loader stores them (docs/kernel.md#compat-auxv)."""
    return Layout(4, byteorder)


def terminated(pairs: Sequence[Pair]) -> list[Pair]:
    """``pairs`` with exactly one trailing ``(AT_NULL, 0)``; entries after an earlier AT_NULL are kept as data."""
    out = list(pairs)
    if not out or out[-1][0] != AT_NULL:
        out.append((AT_NULL, 0))
    return out


def hwcap_entries(pairs: Sequence[Pair], hwcap_types: Sequence[int]) -> dict[int, int]:
    """The last value of each HWCAP type in ``pairs`` before the first AT_NULL (a reader's view)."""
    seen: dict[int, int] = {}
    for entry_type, value in pairs:
        if entry_type == AT_NULL:
            break
        if entry_type in hwcap_types:
            seen[entry_type] = value
    return seen


# ---- parsing dumps -------------------------------------------------------------------------------

#: Every layout a dump may be in, in the order ``parse_auxv(layout="auto")`` tries them.
LAYOUTS: Final[dict[LayoutName, Layout]] = {
    "64le": Layout(8, "little"), "64be": Layout(8, "big"), "32le": Layout(4, "little"), "32be": Layout(4, "big"),
}
#: Largest AT_* type in include/uapi/linux/auxvec.h is AT_MINSIGSTKSZ (51); anything far above
#: that means the bytes are being read with the wrong layout.
_MAX_PLAUSIBLE_TYPE = 64


class AuxvParseError(InputError):
    """Auxv bytes that cannot be read (empty, truncated, no plausible layout); names the input and the problem."""


@dataclass(frozen=True, slots=True)
class AuxvVector:
    """A decoded auxv: the entries up to AT_NULL, the HWCAP words and what was odd about it."""

    source: str
    layout: LayoutName
    entries: tuple[Pair, ...]
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


def _decode(data: bytes, layout: Layout) -> tuple[list[Pair], bool, int]:
    """Entries before AT_NULL, whether AT_NULL was seen, and the byte offset just after it."""
    pairs = layout.pairs(data)
    if pairs and pairs[-1][0] == AT_NULL:
        return pairs[:-1], True, len(pairs) * 2 * layout.width
    return pairs, False, len(data)


def _plausible(entries: list[Pair], terminated: bool) -> bool:
    return terminated and all(0 < t < _MAX_PLAUSIBLE_TYPE for t, _ in entries)


def parse_auxv(data: bytes, source: str = "<auxv>", layout: LayoutName | Literal["auto"] = "auto") -> AuxvVector:
    """Decode a dump or ``/proc/PID/auxv``; ``layout="auto"`` picks the first plausible of 64le, 64be, 32le, 32be.

    Duplicate HWCAP entries are legal input: the last one is kept, and a warning says so. That is what v5's
    inherit loop does only among the first n HWCAP entries it reads: every duplicate counts toward n, so it
    can end the scan before a later word, which a child then gets as 0 (docs/kernel.md#inherit-hwcap). A
    HWCAP word missing from the vector is absent from ``present`` because a child would inherit 0 for it.
    Raises :class:`AuxvParseError` for empty or truncated input or when no layout fits.
    """
    if not data:
        raise AuxvParseError(source, "", "empty auxv")
    if layout != "auto" and layout not in LAYOUTS:
        raise AuxvParseError(source, str(layout), f"unknown layout (expected auto or {', '.join(LAYOUTS)})")
    candidates: tuple[LayoutName, ...] = tuple(LAYOUTS) if layout == "auto" else (layout,)
    fitting = [name for name in candidates if len(data) % (2 * LAYOUTS[name].width) == 0]
    if not fitting:
        size = 2 * LAYOUTS[candidates[-1]].width
        raise AuxvParseError(source, f"{len(data)} bytes",
                             f"truncated: not a whole number of {size}-byte (type, value) pairs")
    chosen: LayoutName | None = None
    decoded: tuple[list[Pair], bool, int] = ([], False, 0)
    for name in fitting:
        decoded = _decode(data, LAYOUTS[name])
        if layout != "auto" or _plausible(decoded[0], decoded[1]):
            chosen = name
            break
    if chosen is None:
        raise AuxvParseError(source, f"{len(data)} bytes",
                             "no layout (64le/64be/32le/32be) gives a plausible, AT_NULL-terminated vector")
    entries, was_terminated, end = decoded
    warnings: list[str] = []
    if not was_terminated:
        warnings.append("no AT_NULL terminator: the kernel would read past this vector")
    if any(data[end:]):
        warnings.append(f"non-zero bytes after AT_NULL at offset {end} ignored (the kernel stops at AT_NULL)")
    words = [0] * len(HWCAP_TYPES)
    present: set[int] = set()
    for t, v in entries:
        w = hwcap_word_index(t)
        if w is not None:
            if w in present:
                warnings.append(
                    f"duplicate AT_HWCAP{'' if w == 0 else w + 1} entry: the last one is kept here; under the "
                    "series a duplicate uses up one of the HWCAP words a child inherits, so a later word can be "
                    "lost (docs/kernel.md#inherit-hwcap)"
                )
            present.add(w)
            words[w] = v
    return AuxvVector(source, chosen, tuple(entries), cast(tuple[int, int, int, int], tuple(words)),
                      frozenset(present), tuple(warnings))


def build_auxv(entries: Iterable[Pair], layout: LayoutName = "64le") -> bytes:
    """Encode ``entries`` plus the AT_NULL pair (the inverse of :func:`parse_auxv`)."""
    return LAYOUTS[layout].encode(terminated(list(entries)))
