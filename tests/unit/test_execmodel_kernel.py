"""The simulated kernel, rule by rule. Expected values come from docs/kernel.md (cited as kernel.md#<anchor>) /
the v5 patch text and from the real dumps (via the kernel's bit table), never from the model's own output."""

from __future__ import annotations

import errno

import pytest
from execmodel_dumps import COMPAT_WORDS, GRAVITON2, GRAVITON3, arm64_words

from hwcap_operator.auxv import (
    AT_BASE,
    AT_CLKTCK,
    AT_EGID,
    AT_ENTRY,
    AT_EUID,
    AT_EXECFN,
    AT_FLAGS,
    AT_GID,
    AT_HWCAP,
    AT_HWCAP2,
    AT_HWCAP3,
    AT_IGNORE,
    AT_MINSIGSTKSZ,
    AT_NULL,
    AT_PAGESZ,
    AT_PHDR,
    AT_PHENT,
    AT_PHNUM,
    AT_PLATFORM,
    AT_RANDOM,
    AT_RSEQ_ALIGN,
    AT_RSEQ_FEATURE_SIZE,
    AT_SECURE,
    AT_SYSINFO_EHDR,
    AT_UID,
    Pair,
)
from hwcap_operator.execmodel.kernel import (
    CAP_CHECKPOINT_RESTORE,
    CAP_SYS_RESOURCE,
    Binary,
    Creds,
    Kernel,
    KernelConfig,
    ModelError,
    PatchLevel,
    PrctlMmMap,
    glibc_getauxval,
)

G2 = arm64_words(GRAVITON2)
G3 = arm64_words(GRAVITON3)
X86 = (0x178BFBFF, 0x2)  # Zen2's AT_HWCAP (CPUID.1:EDX) / AT_HWCAP2 (FSGSBASE, kernel.md#x86-cpuid) as qemu
NOBODY = Creds.user(65534)
COMPAT = Binary("/bin/a32", abi="compat")


def arm64(patch: PatchLevel = "v5", **kw: object) -> Kernel:
    return Kernel(KernelConfig.for_arch("aarch64", G3, COMPAT_WORDS, patch=patch, **kw))  # type: ignore[arg-type]


def amd64(patch: PatchLevel = "v5") -> Kernel:
    return Kernel(KernelConfig.for_arch("x86_64", X86, patch=patch))


def pairs_of(k: Kernel, pid: int) -> list[Pair]:
    layout = k.config.layout(k.task(pid).abi)
    return layout.pairs(bytes(k.task(pid).mm.saved_auxv))


def set_map(k: Kernel, pid: int, pairs: list[Pair]) -> int:
    raw = k.config.layout(k.task(pid).abi).encode(pairs)
    return k.prctl_set_mm_map(pid, PrctlMmMap(k.proc_stat_layout(pid), raw))


def with_hwcaps(k: Kernel, pid: int, **words: int) -> list[Pair]:
    """The process's own vector with some HWCAP entries replaced (what hwcap-exec writes)."""
    types = {"hwcap": AT_HWCAP, "hwcap2": AT_HWCAP2, "hwcap3": AT_HWCAP3}
    new = {types[n]: v for n, v in words.items()}
    return [(t, new.get(t, v)) for t, v in pairs_of(k, pid)]


def masked_process(k: Kernel, **words: int) -> int:
    """An unprivileged process that wrote ``words`` into its vector with PR_SET_MM_MAP (which must succeed)."""
    pid = k.spawn("p", creds=NOBODY)
    assert set_map(k, pid, with_hwcaps(k, pid, **words)) == 0
    return pid


def child_of(k: Kernel, pid: int, binary: Binary | None = None) -> int:
    c = k.fork(pid)
    assert k.execve(c, binary or Binary("/bin/child")) == 0
    return c


# ------------------------------------------------------------------------------------ configuration


def test_sizeof_saved_auxv_is_the_arch_default() -> None:
    # arm64 2*(2+24+1) = 54 longs = 432 bytes; x86_64 with IA32_EMULATION 2*(3+24+1) = 56 = 448
    # (kernel.md#saved-auxv-size).
    k = arm64()
    assert k.prctl_get_auxv(k.spawn("p"))[0] == 432
    k = amd64()
    assert k.prctl_get_auxv(k.spawn("p"))[0] == 448


def test_at_vector_size_is_overridable() -> None:
    cfg = KernelConfig.for_arch("arm64", G3, at_vector_size=50)  # BASE 22 kernels (kernel.md#saved-auxv-size)
    assert cfg.saved_auxv_bytes == 400


def test_a_word_the_arch_lacks_is_rejected_by_name() -> None:
    with pytest.raises(ModelError, match="AT_HWCAP4"):
        KernelConfig.for_arch("arm64", (1, 0, 0, 1))
    with pytest.raises(ModelError, match="patch"):
        KernelConfig.for_arch("arm64", G3, patch="v6")  # type: ignore[arg-type]


def test_entry_order_is_create_elf_tables_order_arm64() -> None:
    # kernel.md#auxv-layout; arm64 ARCH_DLINFO = AT_SYSINFO_EHDR, AT_MINSIGSTKSZ (kernel.md#unverified);
    # arm64 has ELF_HWCAP2/3, not 4.
    k = arm64()
    pid = k.spawn("p")
    expected = [
        AT_SYSINFO_EHDR, AT_MINSIGSTKSZ, AT_HWCAP, AT_PAGESZ, AT_CLKTCK, AT_PHDR, AT_PHENT, AT_PHNUM, AT_BASE,
        AT_FLAGS, AT_ENTRY, AT_UID, AT_EUID, AT_GID, AT_EGID, AT_SECURE, AT_RANDOM, AT_HWCAP2, AT_HWCAP3,
        AT_EXECFN, AT_PLATFORM, AT_RSEQ_FEATURE_SIZE, AT_RSEQ_ALIGN, AT_NULL,
    ]  # fmt: skip
    assert [t for t, _ in pairs_of(k, pid)] == expected
    assert [t for t, _ in k.task(pid).mm.stack_auxv] == expected


def test_x86_has_two_hwcap_words() -> None:
    k = amd64()
    pid = k.spawn("p")
    types = [t for t, _ in pairs_of(k, pid)]
    assert AT_HWCAP2 in types and AT_HWCAP3 not in types
    assert k.stack_hwcap(pid) == X86


# ------------------------------------------------------------------------------------ PR_SET_MM_AUXV


def test_set_auxv_needs_cap_sys_resource_in_the_initial_namespace() -> None:
    k = arm64()
    for creds in (NOBODY, Creds(init_user_ns=False)):
        pid = k.spawn("p", creds=creds)
        assert k.prctl_set_mm_auxv(pid, b"") == -errno.EPERM
        assert not k.task(pid).mm.user_hwcap


def test_set_auxv_rejects_oversize_and_accepts_len_zero() -> None:
    k = arm64()
    pid = k.spawn("p")
    before = bytes(k.task(pid).mm.saved_auxv)
    assert k.prctl_set_mm_auxv(pid, bytes(433)) == -errno.EINVAL
    assert k.prctl_set_mm_auxv(pid, b"") == 0  # changes nothing but MMF_USER_HWCAP (kernel.md#prctl-set-mm-auxv)
    assert bytes(k.task(pid).mm.saved_auxv) == before
    assert k.task(pid).mm.user_hwcap


def test_short_set_auxv_keeps_the_old_tail_on_the_v5_base() -> None:
    # memcpy(saved_auxv, user_auxv, len) — bytes beyond len keep the old contents (kernel.md#prctl-set-mm-auxv).
    k = arm64(set_auxv_copies_whole_buffer=False)
    pid = k.spawn("p")
    before = bytes(k.task(pid).mm.saved_auxv)
    prefix = with_hwcaps(k, pid, hwcap=0x3)[:3]  # AT_SYSINFO_EHDR, AT_MINSIGSTKSZ, AT_HWCAP (kernel.md#auxv-layout)
    assert prefix[2] == (AT_HWCAP, 0x3)
    assert k.prctl_set_mm_auxv(pid, k.config.native_layout.encode(prefix)) == 0
    assert bytes(k.task(pid).mm.saved_auxv)[48:] == before[48:]
    # The old tail still holds the kernel's AT_HWCAP2/AT_HWCAP3 entries: the child inherits them.
    assert k.stack_hwcap(child_of(k, pid)) == (0x3, G3[1], G3[2])


def test_short_set_auxv_leaves_old_hwcap_entries_that_win() -> None:
    # One pair written over the first slot: the old AT_HWCAP further down is a duplicate that comes later
    # (last wins) and, counting toward n, ends the scan before AT_HWCAP3 (kernel.md#inherit-hwcap) -> HWCAP3 = 0.
    k = Kernel(KernelConfig.for_arch("arm64", (G3[0], G3[1], 0x1)))
    pid = k.spawn("p")
    assert k.prctl_set_mm_auxv(pid, k.config.native_layout.encode([(AT_HWCAP, 0x3)])) == 0
    assert k.stack_hwcap(child_of(k, pid)) == (G3[0], G3[1], 0)


def test_short_set_auxv_zeroes_the_rest_on_debian_6_12() -> None:
    k = arm64(set_auxv_copies_whole_buffer=True)
    pid = k.spawn("p")
    assert k.prctl_set_mm_auxv(pid, k.config.native_layout.encode([(AT_HWCAP, 0x3)])) == 0
    assert bytes(k.task(pid).mm.saved_auxv)[16:] == bytes(432 - 16)
    assert k.proc_auxv(pid) == k.config.native_layout.encode([(AT_HWCAP, 0x3), (AT_NULL, 0)])
    assert k.stack_hwcap(child_of(k, pid)) == (0x3, 0, 0)  # a missing word becomes 0 (kernel.md#inherit-hwcap)


def test_set_auxv_forces_the_terminator_only_at_full_length() -> None:
    junk = [(AT_IGNORE, 1)] * 27  # 27 pairs = 432 bytes, no AT_NULL anywhere
    k = arm64()
    pid = k.spawn("p")
    assert k.prctl_set_mm_auxv(pid, k.config.native_layout.encode(junk)) == 0
    pairs = k.config.native_layout.pairs(bytes(k.task(pid).mm.saved_auxv), stop_at_null=False)
    assert pairs == [*junk[:26], (AT_NULL, 0)]
    # One pair short: the forced AT_NULL lies beyond len and is not copied; the old last pair stays.
    k2 = arm64()
    pid2 = k2.spawn("p")
    k2.task(pid2).mm.saved_auxv[-16:] = k2.config.native_layout.encode([(AT_IGNORE, 7)])
    assert k2.prctl_set_mm_auxv(pid2, k2.config.native_layout.encode(junk[:26])) == 0
    assert k2.config.native_layout.pairs(bytes(k2.task(pid2).mm.saved_auxv), stop_at_null=False)[-1] == (
        AT_IGNORE,
        7,
    )


# ------------------------------------------------------------------------------------ PR_SET_MM_MAP


def test_set_mm_map_needs_no_capability_and_replaces_the_whole_vector() -> None:
    k = arm64()
    pid = k.spawn("p", creds=NOBODY)
    assert set_map(k, pid, [(AT_HWCAP, 0x3)]) == 0
    assert k.task(pid).mm.user_hwcap
    assert k.proc_auxv(pid) == k.config.native_layout.encode([(AT_HWCAP, 0x3), (AT_NULL, 0)])
    assert bytes(k.task(pid).mm.saved_auxv)[32:] == bytes(400)


def test_set_mm_map_checks() -> None:
    k = arm64()
    pid = k.spawn("p", creds=NOBODY)
    layout = k.proc_stat_layout(pid)
    assert k.prctl_set_mm_map(pid, PrctlMmMap(layout, bytes(433))) == -errno.EINVAL  # auxv_size > sizeof
    assert k.prctl_set_mm_map(pid, PrctlMmMap(layout, b"\x01" * 8), size=96) == -errno.EINVAL  # struct size
    assert k.prctl_set_mm_map(pid, PrctlMmMap(layout, b"\x01" * 8, exe_fd=3)) == -errno.EPERM
    assert not k.task(pid).mm.user_hwcap
    assert k.prctl_set_mm_map(pid, PrctlMmMap(layout)) == 0  # auxv_size 0: flag not set (kernel.md#mmf-user-hwcap)
    assert not k.task(pid).mm.user_hwcap
    cr = k.spawn("cr", creds=Creds.user(1000, caps=frozenset({CAP_CHECKPOINT_RESTORE})))
    assert k.prctl_set_mm_map(cr, PrctlMmMap(k.proc_stat_layout(cr), exe_fd=3)) == 0


def test_set_mm_map_forces_at_null() -> None:
    k = arm64()
    pid = k.spawn("p", creds=NOBODY)
    assert set_map(k, pid, [(AT_IGNORE, 1)] * 27) == 0
    assert k.config.native_layout.pairs(bytes(k.task(pid).mm.saved_auxv), stop_at_null=False)[-1] == (AT_NULL, 0)


def test_set_mm_map_without_checkpoint_restore() -> None:
    # kernel.md#prctl-set-mm: without CONFIG_CHECKPOINT_RESTORE the call falls to the CAP_SYS_RESOURCE check,
    # then no handler.
    k = arm64(checkpoint_restore=False)
    assert set_map(k, k.spawn("u", creds=NOBODY), [(AT_HWCAP, 1)]) == -errno.EPERM
    assert set_map(k, k.spawn("r"), [(AT_HWCAP, 1)]) == -errno.EINVAL


def test_a_non_dumpable_process_still_reads_its_own_stat_and_may_set_its_map() -> None:
    # do_task_stat() hides the layout only when ptrace_may_access() refuses, which it never does for the
    # caller's own thread group; the kernel lab saw PR_SET_MM_MAP return 0 after setresuid on 6.12.117.
    k = arm64()
    pid = k.spawn("p")
    assert k.setresuid(pid, 65534, 65534, 65534) == 0
    assert not k.task(pid).mm.dumpable
    assert k.proc_stat_layout(pid) == k.task(pid).mm.layout
    assert set_map(k, pid, [(AT_HWCAP, 1)]) == 0


def test_another_unprivileged_reader_sees_zeros_for_a_non_dumpable_process() -> None:
    k = arm64()
    target, other = k.spawn("target"), k.spawn("other", creds=Creds.user(65534))
    assert k.setresuid(target, 65534, 65534, 65534) == 0
    assert k.proc_stat_layout(target, reader=other).start_code == 0
    assert k.prctl_set_dumpable(target, 1) == 0
    assert k.proc_stat_layout(target, reader=other) == k.task(target).mm.layout


def test_get_auxv_copies_at_most_len_and_returns_the_size() -> None:
    k = arm64()
    pid = k.spawn("p")
    assert k.prctl_get_auxv(pid, 0) == (432, b"")
    size, data = k.prctl_get_auxv(pid, 16)
    assert size == 432 and data == bytes(k.task(pid).mm.saved_auxv[:16])


# ------------------------------------------------------------------------------------ fork and threads


@pytest.mark.parametrize("patch", ["none", "v4", "v5"])
def test_fork_copies_saved_auxv_and_the_flag_only_with_the_series(patch: PatchLevel) -> None:
    k = arm64(patch)
    pid = masked_process(k, hwcap=0x1)
    child = k.fork(pid)
    assert k.task(child).mm.saved_auxv == k.task(pid).mm.saved_auxv
    assert k.task(child).mm.user_hwcap is (patch != "none")
    assert k.getauxval(child, AT_HWCAP) == k.getauxval(pid, AT_HWCAP) == G3[0]


def test_threads_share_the_mm_and_an_exec_by_a_thread_inherits() -> None:
    k = arm64()
    pid = k.spawn("p", creds=NOBODY)
    tid = k.clone_thread(pid)
    assert set_map(k, tid, with_hwcaps(k, tid, hwcap=0x1)) == 0  # the thread sets it ...
    assert k.task(pid).mm.user_hwcap  # ... for the whole process
    assert k.execve(tid, Binary("/bin/next")) == 0
    assert tid not in k.tasks and k.task(pid).tgid == pid  # de_thread: the thread took over the pid
    assert k.stack_hwcap(pid) == (0x1 & G3[0], G3[1], G3[2])


# ------------------------------------------------------------------------------------ execve


def test_v5_child_gets_parent_saved_and_kernel_words() -> None:
    # kernel.md#inheritance-invariants: child value per word = parent_saved_value & kernel_value.
    k = arm64()
    pid = masked_process(k, hwcap=G2[0], hwcap2=G2[1], hwcap3=G2[2])
    child = child_of(k, pid)
    assert k.stack_hwcap(child) == tuple(a & b for a, b in zip(G2, G3, strict=True))
    assert k.task(child).mm.user_hwcap  # the chain continues (kernel.md#inherit-hwcap)
    grandchild = child_of(k, child)
    assert k.stack_hwcap(grandchild) == k.stack_hwcap(child)


def test_bits_the_kernel_lacks_never_appear() -> None:
    # kernel.md#create-elf-tables-mask: the mask can only remove bits; AT_HWCAP bits 62/63 (reserved for libc)
    # are always cleared.
    k = arm64()
    pid = masked_process(k, hwcap=(1 << 64) - 1, hwcap2=(1 << 64) - 1)
    assert k.stack_hwcap(child_of(k, pid)) == G3


@pytest.mark.parametrize(("patch", "expected_hwcap2"), [("v5", 0), ("v4", G3[1])])
def test_missing_word_in_parent_vector(patch: PatchLevel, expected_hwcap2: int) -> None:
    # v5: bprm fields start at 0 -> the child gets 0; v2–v4 initialised them to ELF_HWCAP* (kernel.md#v4-vs-v5).
    k = arm64(patch)
    pid = k.spawn("p", creds=NOBODY)
    set_map(k, pid, [(t, v) for t, v in with_hwcaps(k, pid, hwcap=0x1) if t != AT_HWCAP2])
    assert k.stack_hwcap(child_of(k, pid))[:2] == (0x1, expected_hwcap2)


def test_duplicates_last_wins_and_count_toward_n() -> None:
    # kernel.md#inherit-hwcap: every match does n-- (arm64 n = 3): two AT_HWCAP entries + AT_HWCAP2 end the scan,
    # so AT_HWCAP3 is never read and stays 0 in the child.
    k = Kernel(KernelConfig.for_arch("arm64", (G3[0], G3[1], 0x1)))
    pid = k.spawn("p", creds=NOBODY)
    set_map(k, pid, [(AT_HWCAP, 0x1), (AT_HWCAP, 0x3), (AT_HWCAP2, G3[1]), (AT_HWCAP3, 0x1)])
    assert k.stack_hwcap(child_of(k, pid)) == (0x3, G3[1], 0)
    # A duplicate after all n words is never reached.
    pid2 = k.spawn("q", creds=NOBODY)
    set_map(k, pid2, [(AT_HWCAP, 0x3), (AT_HWCAP2, 0x1), (AT_HWCAP3, 0x1), (AT_HWCAP, 0x1)])
    assert k.stack_hwcap(child_of(k, pid2)) == (0x3, 0x1, 0x1)


def test_types_the_arch_lacks_do_not_count_and_at_null_stops() -> None:
    k = amd64()  # n = 2: AT_HWCAP3 is an unknown type on x86 (kernel.md#x86-cpuid)
    pid = k.spawn("p", creds=NOBODY)
    set_map(k, pid, [(AT_HWCAP3, 0), (AT_HWCAP3, 0), (AT_HWCAP, 0x1), (AT_HWCAP2, 0x2)])
    assert k.stack_hwcap(child_of(k, pid)) == (0x1, 0x2)
    pid2 = k.spawn("q")
    buf = k.config.native_layout.encode([(AT_HWCAP, 0x1), (AT_NULL, 0), (AT_HWCAP2, 0x2)])
    assert k.prctl_set_mm_auxv(pid2, buf + bytes(448 - len(buf)), 448) == 0
    assert k.proc_auxv(pid2) == buf[:32]  # auxv_read stops at the first AT_NULL type (kernel.md#proc-auxv)
    assert k.stack_hwcap(child_of(k, pid2)) == (0x1, 0)


def test_v4_regression_aarch32_child_gets_arm64_bits_without_any_prctl() -> None:
    # v4 emitted bprm->hwcap (= native ELF_HWCAP) from the compat loader, truncated to 32 bits
    # (kernel.md#v4-compat-regression).
    k = arm64("v4")
    a32 = child_of(k, k.spawn("init"), COMPAT)
    assert k.stack_hwcap(a32) == (G3[0] & 0xFFFFFFFF, G3[1], G3[2])
    assert k.stack_hwcap(a32) != COMPAT_WORDS


def test_v5_aarch32_child_gets_compat_words_and_the_arch_switch_clears_the_flag() -> None:
    k = arm64("v5")
    pid = masked_process(k, hwcap=G2[0], hwcap2=0)
    a32 = child_of(k, pid, COMPAT)
    assert k.stack_hwcap(a32) == COMPAT_WORDS
    assert not k.task(a32).mm.user_hwcap
    assert k.stack_hwcap(child_of(k, a32)) == G3  # inheritance stopped for descendants (kernel.md#arch-switch)


def test_v5_ia32_chain_stays_masked_through_the_compat_layout() -> None:
    # x86: no arch-switch clearing; the ia32 task's saved_auxv holds packed u32 pairs, read as such
    # (kernel.md#inherit-hwcap).
    k = amd64("v5")
    pid = masked_process(k, hwcap=0x1FF)
    ia32 = child_of(k, pid, COMPAT)
    assert k.stack_hwcap(ia32) == (0x1FF & X86[0], X86[1])
    assert k.stack_hwcap(child_of(k, ia32)) == (0x1FF & X86[0], X86[1])


def test_v4_misreads_a_compat_parents_vector() -> None:
    # v2–v4 always read unsigned-long pairs (kernel.md#v4-vs-v5): packed u32 pairs never match, bprm keeps ELF_HWCAP.
    k = amd64("v4")
    pid = masked_process(k, hwcap=0x1FF)
    ia32 = child_of(k, pid, COMPAT)
    assert k.stack_hwcap(child_of(k, ia32)) == X86


def test_setuid_exec_is_secure_and_still_inherits() -> None:
    # kernel.md#setuid-inherit: no special case for setuid; AT_SECURE set because euid != uid.
    k = arm64()
    pid = masked_process(k, hwcap=0x1)
    suid = child_of(k, pid, Binary("/bin/su", setuid_owner=0))
    assert (k.getauxval(suid, AT_SECURE), k.getauxval(suid, AT_UID), k.getauxval(suid, AT_EUID)) == (1, 65534, 0)
    assert k.stack_hwcap(suid)[0] == 0x1
    assert not k.task(suid).mm.dumpable
    assert CAP_SYS_RESOURCE in k.task(suid).creds.caps


def test_patch_none_never_inherits() -> None:
    k = arm64("none")
    pid = masked_process(k, hwcap=0x1)
    assert not k.task(pid).mm.user_hwcap
    assert k.stack_hwcap(child_of(k, pid)) == G3


def test_getauxval_is_the_stack_copy_proc_auxv_the_saved_one() -> None:
    # kernel.md#proc-auxv, kernel.md#getauxval-enoent: after the prctl /proc/PID/auxv shows the new vector,
    # getauxval in the same process does not.
    k = arm64()
    pid = masked_process(k, hwcap=0x1)
    assert k.getauxval(pid, AT_HWCAP) == G3[0]
    proc = k.config.native_layout.pairs(k.proc_auxv(pid))
    assert (AT_HWCAP, 0x1) in proc


def test_glibc_x86_getauxval_hwcap_quirk() -> None:
    # glibc returns 0x2 (64-bit) / 0x1 (ia32) for AT_HWCAP; AT_HWCAP2 is the kernel's word
    # (kernel.md#glibc-getauxval-x86).
    k = amd64()
    pid = k.spawn("p")
    ia32 = child_of(k, pid, COMPAT)
    assert glibc_getauxval(k, pid, AT_HWCAP) == 0x2 and k.getauxval(pid, AT_HWCAP) == X86[0]
    assert glibc_getauxval(k, ia32, AT_HWCAP) == 0x1
    assert glibc_getauxval(k, pid, AT_HWCAP2) == X86[1]
    a = arm64()
    assert glibc_getauxval(a, a.spawn("p"), AT_HWCAP) == G3[0]


def test_compat_exec_without_a_compat_loader_fails() -> None:
    k = Kernel(KernelConfig.for_arch("arm64", G3))  # e.g. a64fx: no AArch32
    pid = k.spawn("p")
    child = k.fork(pid)
    assert k.execve(child, COMPAT) == -errno.ENOEXEC
    assert k.task(child).abi == "native"
