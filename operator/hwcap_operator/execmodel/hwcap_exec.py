"""What the init binary ``hwcap-exec`` does, run on the simulated kernel (issue 5's contract).

The C binary and this function must agree; its tests compare the real auxv after the prctl with
:func:`masked_vector`. Steps: read the own saved_auxv (PR_GET_AUXV), AND each HWCAP word with the mask,
keep exactly one entry per HWCAP type and add the missing ones (a missing word becomes 0 in children and a
duplicate eats into ``inherit_hwcap``'s ``n``, §1.7.3), apply with PR_SET_MM_MAP (no capability; address
fields from /proc/self/stat), fall back to PR_SET_MM_AUXV with the full buffer size when that fails and
CAP_SYS_RESOURCE is held (a full-size write replaces the whole vector on every kernel, §2.4), then exec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hwcap_operator.auxv_types import AT_NULL, HWCAP_TYPES
from hwcap_operator.execmodel.auxv import Pair, hwcap_entries, terminated
from hwcap_operator.execmodel.kernel import CAP_SYS_RESOURCE, Binary, Kernel, PrctlMmMap


def masked_vector(pairs: Sequence[Pair], mask: Sequence[int]) -> list[Pair]:
    """The vector hwcap-exec writes: ``mask[k]`` ANDed into AT_HWCAP(k+1), one entry per type, AT_NULL last.

    ``mask`` holds the words given on the command line (``--hwcap``, ``--hwcap2``, ...); a type that is absent
    from ``pairs`` is added with the mask word itself (the kernel ANDs with ELF_HWCAP at the next exec).
    """
    wanted = dict(zip(HWCAP_TYPES, mask, strict=False))
    last = hwcap_entries(pairs, tuple(wanted))
    out: list[Pair] = []
    for entry_type, value in pairs:
        if entry_type == AT_NULL:
            break
        if entry_type not in wanted:
            out.append((entry_type, value))
        elif all(t != entry_type for t, _ in out):
            out.append((entry_type, last[entry_type] & wanted[entry_type]))
    out += [(t, m) for t, m in wanted.items() if t not in last]
    return terminated(out)


@dataclass(frozen=True)
class ApplyResult:
    """How the mask was applied: ``method`` is "PR_SET_MM_MAP", "PR_SET_MM_AUXV" or "" (not applied)."""

    method: str
    map_result: int
    auxv_result: int | None

    @property
    def applied(self) -> bool:
        return bool(self.method)


def apply_mask(kernel: Kernel, tid: int, mask: Sequence[int]) -> ApplyResult:
    """Run hwcap-exec's apply step in task ``tid``; the kernel's trace records each syscall."""
    task = kernel.task(tid)
    layout = kernel.config.layout(task.abi)
    size, raw = kernel.prctl_get_auxv(tid)
    vector = layout.encode(masked_vector(layout.pairs(raw), mask))
    map_result = kernel.prctl_set_mm_map(tid, PrctlMmMap(kernel.proc_stat_layout(tid), vector))
    if map_result == 0:
        return ApplyResult("PR_SET_MM_MAP", map_result, None)
    if CAP_SYS_RESOURCE not in task.creds.caps:  # capget(): the effective set, as the C binary sees it
        return ApplyResult("", map_result, None)
    full = vector + bytes(size - len(vector))
    auxv_result = kernel.prctl_set_mm_auxv(tid, full, size)
    return ApplyResult("PR_SET_MM_AUXV" if auxv_result == 0 else "", map_result, auxv_result)


def hwcap_exec(kernel: Kernel, tid: int, mask: Sequence[int], program: Binary) -> ApplyResult:
    """``hwcap-exec --hwcap .. -- PROGRAM``: apply, then exec PROGRAM (also when applying failed: warn mode)."""
    result = apply_mask(kernel, tid, mask)
    kernel.execve(tid, program)
    return result
