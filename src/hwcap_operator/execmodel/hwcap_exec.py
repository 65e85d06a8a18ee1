"""What the init binary ``hwcap-exec`` does, run on the simulated kernel (issue 5's contract).

The C binary and this module must agree step for step (its header, "WHAT IS WRITTEN"); its tests compare the
binary's own ``build_masked`` and the real auxv after the prctl with :func:`masked_vector`. Steps: read the
own saved_auxv (PR_GET_AUXV), AND each HWCAP word with its mask, keep exactly one entry per HWCAP type (a
duplicate eats into ``inherit_hwcap``'s ``n``, docs/kernel.md#inherit-hwcap) and add a missing word only when
the kernel put it on the process's initial stack (a missing word becomes 0 in children; a word the kernel does
not provide, e.g. AT_HWCAP4 on arm64, is never added); refuse a vector larger than saved_auxv; apply with
PR_SET_MM_MAP (no capability; address fields from /proc/self/stat, with PR_SET_DUMPABLE 1 around the call when
a non-dumpable process reads an implausible layout there, a guard the measured kernels never need:
docs/kernel.md#non-dumpable-layout), fall back to PR_SET_MM_AUXV with the full buffer size when that fails and
CAP_SYS_RESOURCE is held (a full-size write replaces the whole vector on every kernel,
docs/kernel.md#prctl-set-mm-auxv), then exec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hwcap_operator.auxv import AT_NULL, HWCAP_TYPES, Pair, hwcap_entries, terminated
from hwcap_operator.execmodel.kernel import CAP_SYS_RESOURCE, Binary, Kernel, MmLayout, PrctlMmMap


def masked_vector(pairs: Sequence[Pair], mask: Sequence[int | None], provided: Mapping[int, int]) -> list[Pair]:
    """The vector hwcap-exec writes (``build_masked``): each HWCAP word ANDed with its mask, one entry per
    HWCAP type where it first stood with its last value, missing words the kernel provides appended, AT_NULL.

    ``mask[k]`` is the ``--hwcap{k+1}`` word; ``None`` or absent means the option was not given and the word
    is kept whole. ``provided`` maps the HWCAP types on the process's initial stack (what getauxval sees) to
    their values: a type missing from ``pairs`` is added as ``provided & mask`` only if it is there, because
    the patched kernel turns a missing word into 0 in children but ignores types without ELF_HWCAPn.
    """
    words = dict(zip(HWCAP_TYPES, mask, strict=False))

    def masked(entry_type: int, value: int) -> int:
        word = words.get(entry_type)
        return value if word is None else value & word

    last = hwcap_entries(pairs, HWCAP_TYPES)
    out: list[Pair] = []
    for entry_type, value in pairs:
        if entry_type == AT_NULL:
            break
        if entry_type not in HWCAP_TYPES:
            out.append((entry_type, value))
        elif all(t != entry_type for t, _ in out):
            out.append((entry_type, masked(entry_type, last[entry_type])))
    out += [(t, masked(t, provided[t])) for t in HWCAP_TYPES if t in provided and t not in last]
    return terminated(out)


@dataclass(frozen=True)
class ApplyResult:
    """How the mask was applied: ``method`` is "PR_SET_MM_MAP", "PR_SET_MM_AUXV" or "" (not applied).

    ``map_result``/``auxv_result`` are the prctl return values, None where the binary did not make that
    call; ``refused`` is why it made none or skipped PR_SET_MM_MAP (its own checks, before the kernel's).
    """

    method: str
    map_result: int | None
    auxv_result: int | None
    refused: str = ""
    #: PR_SET_DUMPABLE was set to 1 around PR_SET_MM_MAP because /proc/self/stat showed no plausible layout;
    #: never on the kernels measured, where a non-dumpable process reads its own (docs/kernel.md#non-dumpable-layout).
    dumpable_fixup: bool = False

    @property
    def applied(self) -> bool:
        return bool(self.method)


def _plausible(m: MmLayout) -> bool:
    """``layout_plausible()``: no address below 4096 and the pairs ordered (what a zeroed stat fails)."""
    return all(v >= 4096 for v in m.addresses()) and m.ordered()


def apply_mask(kernel: Kernel, tid: int, mask: Sequence[int | None]) -> ApplyResult:
    """Run hwcap-exec's apply step in task ``tid`` (its ``build_masked`` and ``apply``); the kernel's trace
    records each syscall."""
    task = kernel.task(tid)
    layout = kernel.config.layout(task.abi)
    size, raw = kernel.prctl_get_auxv(tid)
    # stack_find(): the last entry of each HWCAP type before AT_NULL on the task's own initial stack.
    provided = hwcap_entries(task.mm.stack_auxv, HWCAP_TYPES)
    vector = layout.encode(masked_vector(layout.pairs(raw), mask, provided))
    if len(vector) > size:  # build_masked refuses before any prctl
        return ApplyResult("", None, None, f"the masked auxv needs {len(vector)} bytes, saved_auxv holds {size}")
    stat = kernel.proc_stat_layout(tid)
    fixup = not _plausible(stat) and not task.mm.dumpable and kernel.prctl_set_dumpable(tid, 1) == 0
    if fixup:
        stat = kernel.proc_stat_layout(tid)
    map_result = None
    refused = "" if _plausible(stat) else "/proc/self/stat shows no plausible memory layout"
    if not refused:
        map_result = kernel.prctl_set_mm_map(tid, PrctlMmMap(stat, vector))
    if fixup:
        kernel.prctl_set_dumpable(tid, 0)
    if map_result == 0:
        return ApplyResult("PR_SET_MM_MAP", map_result, None, dumpable_fixup=fixup)
    if CAP_SYS_RESOURCE not in task.creds.caps:  # capget(): the effective set, as the C binary sees it
        return ApplyResult("", map_result, None, refused, fixup)
    full = vector + bytes(size - len(vector))
    auxv_result = kernel.prctl_set_mm_auxv(tid, full, size)
    return ApplyResult("PR_SET_MM_AUXV" if auxv_result == 0 else "", map_result, auxv_result, refused, fixup)


def hwcap_exec(kernel: Kernel, tid: int, mask: Sequence[int | None], program: Binary) -> ApplyResult:
    """``hwcap-exec --hwcap .. -- PROGRAM``: apply, then exec PROGRAM (also when applying failed: warn mode)."""
    result = apply_mask(kernel, tid, mask)
    kernel.execve(tid, program)
    return result
