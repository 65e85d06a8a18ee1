"""The byte layout of ``mm->saved_auxv``: native ``unsigned long`` pairs or packed compat ``u32`` pairs.

``saved_auxv`` is ``unsigned long saved_auxv[AT_VECTOR_SIZE]`` (kernel-facts §2.2), but what is stored in
it depends on who wrote it: the native ``create_elf_tables`` writes 64-bit (type, value) pairs; the compat
instance (``fs/compat_binfmt_elf.c``, 32-bit ``elf_addr_t``) writes packed 32-bit pairs into the same bytes
(§2.5); prctl writes whatever bytes userspace handed in (§2.4). The model therefore keeps the raw bytes and
reads them through an explicit layout, exactly as the kernel does (v5 ``inherit_hwcap`` picks the layout from
``in_compat_syscall()``; v4 always reads native pairs; ``auxv_read`` always scans native words).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from hwcap_operator.auxv_types import AT_NULL

ByteOrder = Literal["little", "big"]
Pair = tuple[int, int]


@dataclass(frozen=True)
class Layout:
    """How (type, value) pairs are encoded: word width in bytes (8 native, 4 compat) and byte order."""

    width: int
    byteorder: ByteOrder

    @property
    def mask(self) -> int:
        """Truncation a store through ``elf_addr_t`` of this width applies (compat values are u32)."""
        return (1 << (8 * self.width)) - 1

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
    """Packed ``compat_uptr_t`` (u32) pairs, as the compat loader stores them (§2.5)."""
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
