"""A small simulated Linux kernel: just enough of exec, fork, prctl and procfs to predict HWCAPs.

Every rule below cites where it comes from: "v5 hunk <file>" is a file of the series' v5 patch 1/4 (on
lore.kernel.org; the kernel lab carries a port, tests/kernel/patches/0001-exec-inherit-hwcaps-v5.patch), and
"kernel.md#<anchor>" is a section of docs/kernel.md, which states the fact with its source. The model
works on raw words only (no feature names): the catalog is not needed for kernel semantics.

Operations return what the syscall would: ``0`` (or a pid) on success, ``-errno`` on failure.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from hwcap_operator.arch import Arch, normalize_arch
from hwcap_operator.auxv import (
    AT_BASE,
    AT_CLKTCK,
    AT_EGID,
    AT_ENTRY,
    AT_EUID,
    AT_EXECFN,
    AT_FLAGS,
    AT_GID,
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
    AT_SYSINFO,
    AT_SYSINFO_EHDR,
    AT_UID,
    HWCAP_TYPES,
    KERNEL_HWCAP_WORDS,
    ByteOrder,
    Layout,
    Pair,
    at_name,
    compat_layout,
    hwcap_entries,
    native_layout,
)

PatchLevel = Literal["none", "v4", "v5"]
PATCH_LEVELS: Final[tuple[PatchLevel, ...]] = ("none", "v4", "v5")
Abi = Literal["native", "compat"]

# prctl numbers (include/uapi/linux/prctl.h); used for trace labels and by scenarios.
PR_SET_DUMPABLE: Final = 4
PR_SET_MM: Final = 35
PR_SET_MM_AUXV: Final = 12
PR_SET_MM_MAP: Final = 14
PR_SET_MM_MAP_SIZE: Final = 15
PR_GET_AUXV: Final = 0x41555856
#: sizeof(struct prctl_mm_map): 11 u64 addresses + u64 auxv pointer + u32 auxv_size + u32 exe_fd.
SIZEOF_PRCTL_MM_MAP: Final = 104

#: mm flag bit the series adds (v5 hunk include/linux/mm_types.h; kernel.md#mmf-user-hwcap).
MMF_USER_HWCAP: Final = 32

CAP_SETUID: Final = "CAP_SETUID"
CAP_SYS_ADMIN: Final = "CAP_SYS_ADMIN"
CAP_SYS_RESOURCE: Final = "CAP_SYS_RESOURCE"
CAP_CHECKPOINT_RESTORE: Final = "CAP_CHECKPOINT_RESTORE"
CAP_SYS_PTRACE: Final = "CAP_SYS_PTRACE"
ALL_CAPS: Final = frozenset({CAP_SETUID, CAP_SYS_ADMIN, CAP_SYS_RESOURCE, CAP_CHECKPOINT_RESTORE})

#: AT_VECTOR_SIZE_BASE after the 2026 fdpic fix (22 -> 24; kernel.md#saved-auxv-size).
AT_VECTOR_SIZE_BASE: Final = 24


@dataclass(frozen=True)
class _ArchFacts:
    hwcap_words: int  # how many ELF_HWCAPn macros the arch defines (the ``n`` of inherit_hwcap)
    compat_words: int | None  # words the compat loader emits; None = no compat ABI modelled
    vector_size_arch: int  # AT_VECTOR_SIZE_ARCH (kernel.md#saved-auxv-size)
    byteorder: ByteOrder
    dlinfo: tuple[int, ...]  # ARCH_DLINFO entry types (values are synthetic)
    compat_dlinfo: tuple[int, ...]
    platform: bool  # whether k_platform is set (AT_PLATFORM emitted)


# Word counts: auxv.KERNEL_HWCAP_WORDS (kernel.md#hwcap-words-per-arch); compat words: COMPAT_ELF_HWCAPn
# (kernel.md#compat-auxv); AT_VECTOR_SIZE_ARCH (kernel.md#saved-auxv-size). Unverified (kernel.md#unverified):
# the ARCH_DLINFO lists -- arm64/x86_64 native (AT_SYSINFO_EHDR, AT_MINSIGSTKSZ) and x86 ia32 (+ AT_SYSINFO)
# as we read them; arm64 compat, ppc64le, s390x and riscv64 are placeholders -- and s390x's
# AT_VECTOR_SIZE_ARCH = 1, which no source we read gives. They only shape the non-HWCAP entries and the
# vector size, and can be overridden through KernelConfig.
_N: Final = KERNEL_HWCAP_WORDS
_ARCH: Final[dict[Arch, _ArchFacts]] = {
    "arm64": _ArchFacts(_N["arm64"], 3, 2, "little", (AT_SYSINFO_EHDR, AT_MINSIGSTKSZ), (AT_SYSINFO_EHDR,), True),
    "amd64": _ArchFacts(
        _N["amd64"],
        2,
        3,
        "little",
        (AT_SYSINFO_EHDR, AT_MINSIGSTKSZ),
        (AT_SYSINFO, AT_SYSINFO_EHDR, AT_MINSIGSTKSZ),
        True,
    ),
    "ppc64le": _ArchFacts(_N["ppc64le"], None, 6, "little", (AT_SYSINFO_EHDR,), (), True),
    "s390x": _ArchFacts(_N["s390x"], None, 1, "big", (AT_SYSINFO_EHDR,), (), True),
    "riscv64": _ArchFacts(_N["riscv64"], None, 10, "little", (AT_SYSINFO_EHDR,), (), False),
}


class ModelError(ValueError):
    """A kernel configuration or call the model cannot represent; the message names the bad field."""


@dataclass(frozen=True)
class KernelConfig:
    """One node's kernel: what ``ELF_HWCAP*`` evaluate to and which version of the series it carries.

    ``hwcap`` has one word per ``ELF_HWCAPn`` macro the arch defines (its length is ``n`` in
    ``inherit_hwcap``); ``compat_hwcap`` likewise for the compat loader (None: no compat ABI, e.g. a64fx).
    ``set_auxv_copies_whole_buffer``: False = ``memcpy(saved_auxv, user_auxv, len)`` as in the v5 base;
    True = Debian 6.12.117's ``memcpy(..., sizeof(user_auxv))`` (kernel.md#prctl-set-mm-auxv).
    """

    arch: Arch
    hwcap: tuple[int, ...]
    compat_hwcap: tuple[int, ...] | None = None
    patch: PatchLevel = "v5"
    at_vector_size: int = 0  # 0 = the arch default 2*(AT_VECTOR_SIZE_ARCH + AT_VECTOR_SIZE_BASE + 1)
    checkpoint_restore: bool = True
    set_auxv_copies_whole_buffer: bool = False
    suid_dumpable: int = 0  # fs.suid_dumpable sysctl
    #: Whether an AArch64<->AArch32 exec clears MMF_USER_HWCAP; None = v5 on arm64 (the hook itself is
    #: unverified, kernel.md#unverified — the kernel lab can flip it to prove it catches a wrong rule).
    arch_switch_clears_flag: bool | None = None
    page_size: int = 4096
    mmap_min_addr: int = 0x10000
    task_size: int = 1 << 47

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", normalize_arch(self.arch))
        if self.patch not in PATCH_LEVELS:
            raise ModelError(f"patch: {self.patch!r} is not one of {', '.join(PATCH_LEVELS)}")
        if not 1 <= len(self.hwcap) <= 4:
            raise ModelError(f"hwcap: {len(self.hwcap)} words given, a kernel defines 1..4 ELF_HWCAPn")
        _check_words("hwcap", self.hwcap, 64)
        if self.compat_hwcap is not None:
            if not 1 <= len(self.compat_hwcap) <= 4:
                raise ModelError(f"compat_hwcap: {len(self.compat_hwcap)} words given, expected 1..4")
            _check_words("compat_hwcap", self.compat_hwcap, 32)
        if self.at_vector_size == 0:
            facts = _ARCH[self.arch]
            object.__setattr__(self, "at_vector_size", 2 * (facts.vector_size_arch + AT_VECTOR_SIZE_BASE + 1))
        if self.at_vector_size < 4 or self.at_vector_size % 2:
            raise ModelError(f"at_vector_size: {self.at_vector_size} is not an even number >= 4")

    @classmethod
    def for_arch(
        cls,
        arch: str,
        hwcap: Sequence[int],
        compat_hwcap: Sequence[int] | None = None,
        **options: Any,
    ) -> KernelConfig:
        """Build from the project's 4-word convention (AT_HWCAP..AT_HWCAP4), keeping the words the arch defines.

        A non-zero word the arch has no ``ELF_HWCAPn`` for is an error (that kernel cannot report it).
        """
        canon = normalize_arch(arch)
        facts = _ARCH[canon]
        native = _fit_words("hwcap", hwcap, facts.hwcap_words)
        compat = None
        if compat_hwcap is None and canon == "amd64":
            # ia32 tasks get the very same ELF_HWCAP/ELF_HWCAP2 words (kernel.md#compat-auxv): no COMPAT_ELF_HWCAP
            # on x86.
            compat_hwcap = [w & 0xFFFFFFFF for w in native]
        if compat_hwcap is not None and facts.compat_words is not None:
            compat = _fit_words("compat_hwcap", compat_hwcap, facts.compat_words)
        elif compat_hwcap is not None:
            raise ModelError(f"compat_hwcap: arch {canon} has no compat ABI in the model")
        return cls(arch=canon, hwcap=native, compat_hwcap=compat, **options)

    @property
    def byteorder(self) -> ByteOrder:
        return _ARCH[self.arch].byteorder

    @property
    def native_layout(self) -> Layout:
        return native_layout(self.byteorder)

    @property
    def compat_layout(self) -> Layout:
        return compat_layout(self.byteorder)

    @property
    def saved_auxv_bytes(self) -> int:
        """``sizeof(mm->saved_auxv)``: what PR_GET_AUXV returns and the prctl size limit (kernel.md#saved-auxv-size,
        kernel.md#pr-get-auxv)."""
        return self.at_vector_size * 8

    @property
    def clears_flag_on_arch_switch(self) -> bool:
        """v5 arm64: an AArch64<->AArch32 exec clears MMF_USER_HWCAP (v5 cover changelog; kernel.md#arch-switch)."""
        if self.arch_switch_clears_flag is not None:
            return self.arch_switch_clears_flag
        return self.patch == "v5" and self.arch == "arm64"

    def layout(self, abi: Abi) -> Layout:
        return self.compat_layout if abi == "compat" else self.native_layout

    def loader_words(self, abi: Abi) -> tuple[int, ...]:
        """``ELF_HWCAPn`` as the loader for ``abi`` sees them (compat_binfmt_elf.c redefines them,
        kernel.md#compat-auxv)."""
        if abi == "compat":
            if self.compat_hwcap is None:
                raise ModelError(f"{self.arch} kernel has no compat loader")
            return self.compat_hwcap
        return self.hwcap


def _check_words(name: str, words: Sequence[int], bits: int) -> None:
    for i, w in enumerate(words):
        if not 0 <= w < (1 << bits):
            raise ModelError(f"{name}[{i}]: {w:#x} is not a {bits}-bit word")


def _fit_words(name: str, words: Sequence[int], count: int) -> tuple[int, ...]:
    for i, w in enumerate(words[count:], start=count):
        if w:
            raise ModelError(f"{name}: AT_HWCAP{i + 1 if i else ''} = {w:#x} but the arch defines {count} words")
    return tuple(words[:count]) + (0,) * max(0, count - len(words))


# --------------------------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Creds:
    """Task credentials; ``caps`` is the effective set, ``init_user_ns`` whether they live in the initial ns."""

    uid: int = 0
    euid: int = 0
    suid: int = 0
    gid: int = 0
    egid: int = 0
    caps: frozenset[str] = ALL_CAPS
    bounding: frozenset[str] = ALL_CAPS
    init_user_ns: bool = True

    @classmethod
    def user(cls, uid: int, gid: int | None = None, caps: frozenset[str] = frozenset()) -> Creds:
        g = uid if gid is None else gid
        return cls(uid=uid, euid=uid, suid=uid, gid=g, egid=g, caps=caps)

    def capable(self, cap: str) -> bool:
        """``capable()``: the capability in the *initial* user namespace (kernel.md#prctl-set-mm, step 3)."""
        return cap in self.caps and self.init_user_ns

    def ns_capable(self, cap: str) -> bool:
        """``ns_capable(current_user_ns(), cap)``: a capability of the task's own namespace suffices."""
        return cap in self.caps


@dataclass(frozen=True)
class Binary:
    """What execve loads: its ABI and set-ID bits (``setuid_owner`` = st_uid when S_ISUID is set)."""

    path: str = "/bin/app"
    abi: Abi = "native"
    setuid_owner: int | None = None
    setgid_group: int | None = None


@dataclass(frozen=True)
class MmLayout:
    """The address fields PR_SET_MM_MAP takes and /proc/PID/stat shows (synthetic but well-formed)."""

    start_code: int = 0x400000
    end_code: int = 0x480000
    start_data: int = 0x490000
    end_data: int = 0x4A0000
    start_brk: int = 0x4B0000
    brk: int = 0x4B0000
    start_stack: int = 0x7FFF0000
    arg_start: int = 0x7FFF1000
    arg_end: int = 0x7FFF1100
    env_start: int = 0x7FFF1100
    env_end: int = 0x7FFF1200

    def addresses(self) -> tuple[int, ...]:
        """Every address field, in struct order."""
        return tuple(getattr(self, name) for name in MmLayout.__dataclass_fields__)

    def ordered(self) -> bool:
        """The start/end pairs in order: what both validate_prctl_map_addr() and hwcap-exec's check require."""
        return (
            self.start_code < self.end_code
            and self.start_data <= self.end_data
            and self.start_brk <= self.brk
            and self.arg_start <= self.arg_end
            and self.env_start <= self.env_end
        )


@dataclass(frozen=True)
class PrctlMmMap:
    """``struct prctl_mm_map``: the layout, the new auxv bytes (``auxv_size`` = their length) and exe_fd."""

    layout: MmLayout
    auxv: bytes | None = None
    exe_fd: int = -1


@dataclass
class Mm:
    """``struct mm_struct``: shared by all threads of a process (CLONE_VM), copied by fork."""

    saved_auxv: bytearray
    user_hwcap: bool = False  # MMF_USER_HWCAP
    dumpable: bool = True  # MMF_DUMPABLE (SUID_DUMP_USER vs SUID_DUMP_DISABLE)
    layout: MmLayout = field(default_factory=MmLayout)
    #: The auxv create_elf_tables copied to the user stack: what the program itself parses (getauxval).
    stack_auxv: tuple[Pair, ...] = ()

    def copy(self) -> Mm:
        return Mm(bytearray(self.saved_auxv), self.user_hwcap, self.dumpable, self.layout, self.stack_auxv)


@dataclass
class Task:
    """A thread; ``tgid`` is the process id. ``abi`` is the task's syscall ABI (TIF_32BIT on arm64)."""

    tid: int
    tgid: int
    name: str
    abi: Abi
    creds: Creds
    mm: Mm


@dataclass(frozen=True)
class TraceEvent:
    """One operation as ``hwcapctl simulate`` prints it; words are hex strings for JSON/YAML."""

    pid: int
    name: str
    op: str
    result: int
    abi: Abi
    user_hwcap: bool
    #: HWCAP words on the task's stack (what the program got at its last exec), by word index.
    hwcap: tuple[int, ...]
    #: HWCAP entries in saved_auxv (what /proc/PID/auxv and the next exec read), by AT type.
    saved: tuple[tuple[int, int], ...]
    note: str = ""

    def line(self) -> str:
        """One line for ``hwcapctl simulate --output table``."""
        saved = " ".join(f"{at_name(t)}={v:#x}" for t, v in self.saved)
        flag = " MMF_USER_HWCAP" if self.user_hwcap else ""
        words = ",".join(f"{w:#x}" for w in self.hwcap)
        head = f"{self.pid:>4} {self.name:<14} {self.op} = {self.result}"
        return f"{head}  [{self.abi}{flag}] sees {words}; saved {saved}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "name": self.name,
            "op": self.op,
            "result": self.result,
            "abi": self.abi,
            "user_hwcap": self.user_hwcap,
            "hwcap": [f"{w:#x}" for w in self.hwcap],
            "saved": {at_name(t): f"{v:#x}" for t, v in self.saved},
            "note": self.note,
        }


# ------------------------------------------------------------------------------------------------ kernel


class Kernel:
    """The simulated kernel: a task table and the syscalls that matter for HWCAPs."""

    def __init__(self, config: KernelConfig) -> None:
        self.config = config
        self.tasks: dict[int, Task] = {}
        self.trace: list[TraceEvent] = []
        self._next_pid = 1

    # -- helpers -------------------------------------------------------------------------------------

    def task(self, tid: int) -> Task:
        try:
            return self.tasks[tid]
        except KeyError:
            raise ModelError(f"no task {tid}") from None

    def _alloc_pid(self) -> int:
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def _record(self, task: Task, op: str, result: int, note: str = "") -> int:
        layout = self.config.layout(task.abi)
        saved = hwcap_entries(layout.pairs(bytes(task.mm.saved_auxv)), HWCAP_TYPES)
        self.trace.append(
            TraceEvent(
                pid=task.tgid,
                name=task.name,
                op=op,
                result=result,
                abi=task.abi,
                user_hwcap=task.mm.user_hwcap,
                hwcap=self.stack_hwcap(task.tid),
                saved=tuple(sorted(saved.items())),
                note=note,
            )
        )
        return result

    # -- what userspace reads ------------------------------------------------------------------------

    def getauxval(self, tid: int, entry_type: int) -> int:
        """The value the kernel put on the task's stack (first match before AT_NULL; 0 = ENOENT,
        kernel.md#getauxval-enoent).

        This is what the kernel *passed*; see :func:`glibc_getauxval` for glibc's x86_64 AT_HWCAP quirk.
        """
        for t, v in self.task(tid).mm.stack_auxv:
            if t == AT_NULL:
                break
            if t == entry_type:
                return v
        return 0

    def stack_hwcap(self, tid: int) -> tuple[int, ...]:
        """getauxval(AT_HWCAP..) for every HWCAP word the task's loader emits."""
        n = len(self.config.loader_words(self.task(tid).abi))
        return tuple(self.getauxval(tid, t) for t in HWCAP_TYPES[:n])

    def proc_auxv(self, pid: int) -> bytes:
        """/proc/PID/auxv: saved_auxv as native words up to and including the first zero type word
        (kernel.md#proc-auxv).

        For a compat task the bytes are packed u32 pairs, cut at the first all-zero native word (our reading
        of the loop, kernel.md#unverified).
        """
        raw = bytes(self.task(pid).mm.saved_auxv)
        words = self.config.native_layout.words(raw)
        nwords = 0
        while True:
            nwords += 2
            if nwords >= len(words) or words[nwords - 2] == 0:
                break
        return raw[: nwords * 8]

    def proc_stat_layout(self, pid: int, reader: int | None = None) -> MmLayout:
        """The address fields of /proc/PID/stat as ``reader`` (default: the process itself) sees them.

        do_task_stat() hides them only when ptrace_may_access() refuses, and a process may always inspect
        its own thread group: reading one's own stat gives the real layout even when non-dumpable. The
        kernel lab measured this on Debian 6.12.117 (arm64 and x86_64), contradicting an older note that a
        non-dumpable process reads zeros (kernel.md#non-dumpable-layout). Another reader without
        CAP_SYS_PTRACE sees zeros then.
        """
        task = self.task(pid)
        mm = task.mm
        if reader is None or self.task(reader).tgid == task.tgid or mm.dumpable:
            return mm.layout
        if CAP_SYS_PTRACE in self.task(reader).creds.caps:
            return mm.layout
        return MmLayout(**{name: 0 for name in MmLayout.__dataclass_fields__})

    # -- process creation ----------------------------------------------------------------------------

    def spawn(self, name: str, binary: Binary | None = None, creds: Creds | None = None) -> int:
        """A process exec'd by a parent without MMF_USER_HWCAP (the container runtime). Returns its pid.

        The process ends up with exactly ``creds`` (as a runtime arranges with ambient capabilities), not
        with what a plain exec would compute from them.
        """
        cfg = self.config
        binary = binary or Binary()
        creds = creds or Creds()
        pid = self._alloc_pid()
        task = Task(pid, pid, name, "native", creds, Mm(bytearray(cfg.saved_auxv_bytes)))
        self.tasks[pid] = task
        result = self._execve(task, binary)
        if result < 0:
            del self.tasks[pid]
            return result
        task.creds, task.name = creds, name
        self._record(task, f"spawn {binary.path}", pid)
        return pid

    def fork(self, tid: int, name: str | None = None) -> int:
        """fork(): a new process with a copy of the mm.

        ``dup_mm()`` (kernel/fork.c) memcpy's the whole mm_struct, so saved_auxv and the stack copy come along at
        every patch level; ``mm_init()`` then keeps only legacy flags and the series re-sets MMF_USER_HWCAP
        (v5 hunk kernel/fork.c; the v3 arg_lock patch also copies saved_auxv there under arg_lock;
        kernel.md#fork-inherit, kernel.md#companion-patches).
        """
        parent = self.task(tid)
        child_mm = parent.mm.copy()
        child_mm.user_hwcap = self.config.patch != "none" and parent.mm.user_hwcap
        pid = self._alloc_pid()
        child = Task(pid, pid, name or parent.name, parent.abi, parent.creds, child_mm)
        self.tasks[pid] = child
        self._record(parent, f"fork -> {pid}", pid)
        return pid

    def clone_thread(self, tid: int) -> int:
        """clone(CLONE_VM|CLONE_THREAD): a new thread sharing the mm (and so saved_auxv and the flag)."""
        leader = self.task(tid)
        new_tid = self._alloc_pid()
        self.tasks[new_tid] = Task(new_tid, leader.tgid, leader.name, leader.abi, leader.creds, leader.mm)
        self._record(leader, f"clone thread -> {new_tid}", new_tid)
        return new_tid

    # -- execve --------------------------------------------------------------------------------------

    def execve(self, tid: int, binary: Binary) -> int:
        """execve(): returns 0 (the task now runs ``binary`` under the same pid) or -errno."""
        task = self.task(tid)
        result = self._execve(task, binary)
        if result == 0:
            task = self.tasks[task.tgid]
        self._record(task, f"execve {binary.path} ({binary.abi})", result)
        return result

    def _execve(self, task: Task, binary: Binary) -> int:
        cfg = self.config
        if binary.abi == "compat" and cfg.compat_hwcap is None:
            return -errno.ENOEXEC  # no binfmt handler accepts the ELF class
        n = len(cfg.hwcap)
        # alloc_bprm: v2–v4 initialise bprm->hwcap* = ELF_HWCAP* (native!); v5 leaves them zero (kernel.md#v4-vs-v5).
        bprm = list(cfg.hwcap) if cfg.patch == "v4" else [0] * n
        flag = False
        # do_execveat_common (v5 hunk fs/exec.c): inherit only if the *current* mm has the flag. (mm_alloc ->
        # mm_init may already copy the flag to bprm->mm, kernel.md#unverified; inherit_hwcap sets it anyway: same
        # outcome.)
        if cfg.patch != "none" and task.mm.user_hwcap:
            self._inherit_hwcap(task, bprm)
            flag = True  # mm_flags_set(MMF_USER_HWCAP, bprm->mm)
        # v5 arm64: an AArch64<->AArch32 switch clears the flag on the new mm (kernel.md#arch-switch; the exact
        # hook is unverified).
        if flag and cfg.clears_flag_on_arch_switch and binary.abi != task.abi:
            flag = False
        creds, secure = _exec_creds(task.creds, binary)
        # begin_new_exec: de_thread() — other threads die, the exec'ing thread takes over the pid.
        for other in [t for t in self.tasks.values() if t.tgid == task.tgid and t is not task]:
            del self.tasks[other.tid]
        if task.tid != task.tgid:
            del self.tasks[task.tid]
            task.tid = task.tgid
            self.tasks[task.tid] = task
        task.abi = binary.abi
        task.creds = creds
        task.name = binary.path.rsplit("/", 1)[-1]  # __set_task_comm(): comm = basename
        # Dumpability (begin_new_exec): euid/egid differing from uid/gid -> fs.suid_dumpable.
        dumpable = (creds.euid == creds.uid and creds.egid == creds.gid) or cfg.suid_dumpable != 0
        task.mm = Mm(bytearray(cfg.saved_auxv_bytes), user_hwcap=flag, dumpable=dumpable)
        self._create_elf_tables(task, binary, bprm, secure)
        return 0

    def _inherit_hwcap(self, task: Task, bprm: list[int]) -> None:
        """``inherit_hwcap()`` (v5 hunk fs/exec.c; kernel.md#inherit-hwcap).

        Scans saved_auxv pairs until AT_NULL or until ``n`` HWCAP entries were seen — duplicates count
        toward ``n`` and the last one read wins, so a duplicate can end the scan before a later word.
        Types AT_HWCAPk for which the arch has no ELF_HWCAPk are skipped like any unknown type.
        v5 reads packed u32 pairs when the *caller* is a compat task (``in_compat_syscall()``); v2–v4 always
        read native pairs and mask right here with the native ELF_HWCAP (kernel.md#v4-vs-v5).
        """
        cfg = self.config
        compat = cfg.patch == "v5" and task.abi == "compat"
        words = cfg.layout("compat" if compat else "native").words(bytes(task.mm.saved_auxv))
        known = HWCAP_TYPES[: len(cfg.hwcap)]
        remaining = len(known)
        i = 0
        while remaining and i < cfg.at_vector_size:
            entry_type, value = words[i], words[i + 1]
            i += 2
            if entry_type == AT_NULL:
                break
            if entry_type not in known:
                continue
            k = known.index(entry_type)
            bprm[k] = value & cfg.hwcap[k] if cfg.patch == "v4" else value
            remaining -= 1

    def _create_elf_tables(self, task: Task, binary: Binary, bprm: list[int], secure: bool) -> None:
        """``create_elf_tables()`` (native or the compat instance), entry order as in kernel.md#auxv-layout.

        HWCAP words (v5 hunk fs/binfmt_elf.c): ``user_hwcap ? bprm->hwcapN & ELF_HWCAPN : ELF_HWCAPN``;
        v4 emitted ``bprm->hwcapN`` unconditionally, so a compat child got the native (arm64) bits (our reading of
        the v4 code, kernel.md#v4-compat-regression);
        unpatched kernels emit ``ELF_HWCAPN``. The compat instance uses the COMPAT_ words and a 32-bit
        ``elf_addr_t`` (values truncated, kernel.md#compat-auxv). The vector is built in saved_auxv, the rest
        zeroed (kernel.md#create-elf-tables-mask).
        """
        cfg = self.config
        abi = binary.abi
        layout = cfg.layout(abi)
        elf = cfg.loader_words(abi)
        user_hwcap = task.mm.user_hwcap
        emitted = []
        for k, word in enumerate(elf):
            if cfg.patch == "v4":
                value = bprm[k] if k < len(bprm) else word
            elif cfg.patch == "v5" and user_hwcap:
                value = (bprm[k] if k < len(bprm) else 0) & word
            else:
                value = word
            emitted.append(value & layout.mask)
        facts = _ARCH[cfg.arch]
        base = 0x7F0000000000 if abi == "native" else 0xF7000000
        c = task.creds
        pairs: list[Pair] = [
            (t, base + 0x1000 * (j + 1)) for j, t in enumerate(facts.compat_dlinfo if abi == "compat" else facts.dlinfo)
        ]
        pairs += [
            (HWCAP_TYPES[0], emitted[0]),
            (AT_PAGESZ, cfg.page_size),
            (AT_CLKTCK, 100),
            (AT_PHDR, 0x400040),
            (AT_PHENT, 56 if abi == "native" else 32),
            (AT_PHNUM, 9),
            (AT_BASE, base + 0x100000),
            (AT_FLAGS, 0),
            (AT_ENTRY, 0x401000),
            (AT_UID, c.uid),
            (AT_EUID, c.euid),
            (AT_GID, c.gid),
            (AT_EGID, c.egid),
            (AT_SECURE, int(secure)),
            (AT_RANDOM, base + 0x200000),
        ]
        pairs += [(HWCAP_TYPES[k], emitted[k]) for k in range(1, len(emitted))]
        pairs.append((AT_EXECFN, base + 0x300000))
        if facts.platform:
            pairs.append((AT_PLATFORM, base + 0x300100))
        pairs += [(AT_RSEQ_FEATURE_SIZE, 32), (AT_RSEQ_ALIGN, 32), (AT_NULL, 0)]
        raw = layout.encode(pairs)
        if len(raw) > cfg.saved_auxv_bytes or len(pairs) * 2 > cfg.at_vector_size:
            raise ModelError(f"at_vector_size: {cfg.at_vector_size} words cannot hold {len(pairs)} auxv pairs")
        task.mm.saved_auxv[: len(raw)] = raw  # "AT_NULL is zero; clear the rest too" (memset)
        task.mm.stack_auxv = tuple((t, v & layout.mask) for t, v in pairs)

    # -- prctl ---------------------------------------------------------------------------------------

    def prctl_set_mm_auxv(self, tid: int, buf: bytes, length: int | None = None) -> int:
        """prctl(PR_SET_MM, PR_SET_MM_AUXV, buf, len) → ``prctl_set_auxv()`` (kernel.md#prctl-set-mm-auxv; v5 hunk
        kernel/sys.c).

        CAP_SYS_RESOURCE in the initial namespace, else -EPERM; ``len > sizeof(saved_auxv)`` -> -EINVAL;
        reading past ``buf`` -> -EFAULT. The zero-filled buffer gets a forced AT_NULL in its last pair, but
        only ``len`` bytes are copied (old tail kept, terminator only at full length) unless the kernel
        copies the whole buffer (Debian 6.12.117). The series sets MMF_USER_HWCAP, even for len 0.
        """
        task = self.task(tid)
        size = len(buf) if length is None else length
        result = self._set_auxv(task, buf, size)
        return self._record(task, f"prctl(PR_SET_MM_AUXV, len={size})", result)

    def _set_auxv(self, task: Task, buf: bytes, size: int) -> int:
        cfg = self.config
        if not task.creds.capable(CAP_SYS_RESOURCE):
            return -errno.EPERM
        if size < 0 or size > cfg.saved_auxv_bytes:
            return -errno.EINVAL
        if size > len(buf):
            return -errno.EFAULT
        user = bytearray(cfg.saved_auxv_bytes)
        user[:size] = buf[:size]
        user[-16:] = bytes(16)  # user_auxv[AT_VECTOR_SIZE - 2] = user_auxv[AT_VECTOR_SIZE - 1] = 0
        copied = cfg.saved_auxv_bytes if cfg.set_auxv_copies_whole_buffer else size
        task.mm.saved_auxv[:copied] = user[:copied]
        if cfg.patch != "none":
            task.mm.user_hwcap = True
        return 0

    def prctl_set_mm_map(self, tid: int, mm_map: PrctlMmMap, size: int = SIZEOF_PRCTL_MM_MAP) -> int:
        """prctl(PR_SET_MM, PR_SET_MM_MAP, &map, size) → ``prctl_set_mm_map()`` (kernel.md#prctl-set-mm-map; v5
        hunk kernel/sys.c).

        Needs CONFIG_CHECKPOINT_RESTORE; without it the call reaches the CAP_SYS_RESOURCE check (-EPERM) and
        then no handler (-EINVAL). No capability is needed to replace the auxv; exe_fd != -1 needs
        CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE. Order: size, address validation, auxv size, exe_fd.
        The whole saved_auxv is replaced (zero-filled, last pair forced AT_NULL); the series sets the flag.
        """
        task = self.task(tid)
        result = self._set_mm_map(task, mm_map, size)
        auxv_size = len(mm_map.auxv) if mm_map.auxv is not None else 0
        return self._record(task, f"prctl(PR_SET_MM_MAP, auxv_size={auxv_size})", result)

    def _set_mm_map(self, task: Task, mm_map: PrctlMmMap, size: int) -> int:
        cfg = self.config
        if not cfg.checkpoint_restore:
            return -errno.EPERM if not task.creds.capable(CAP_SYS_RESOURCE) else -errno.EINVAL
        if size != SIZEOF_PRCTL_MM_MAP:
            return -errno.EINVAL
        if not _valid_layout(mm_map.layout, cfg):
            return -errno.EINVAL
        auxv = mm_map.auxv or b""
        user = bytearray(cfg.saved_auxv_bytes)
        if auxv:
            if len(auxv) > cfg.saved_auxv_bytes:
                return -errno.EINVAL
            user[: len(auxv)] = auxv
            user[-16:] = bytes(16)
        if mm_map.exe_fd != -1 and not (
            task.creds.ns_capable(CAP_SYS_ADMIN) or task.creds.ns_capable(CAP_CHECKPOINT_RESTORE)
        ):
            return -errno.EPERM
        task.mm.layout = mm_map.layout
        if auxv:
            task.mm.saved_auxv[:] = user
            if cfg.patch != "none":
                task.mm.user_hwcap = True
        return 0

    def prctl_get_auxv(self, tid: int, length: int | None = None) -> tuple[int, bytes]:
        """prctl(PR_GET_AUXV, buf, len): copies min(sizeof(saved_auxv), len) bytes, returns the full size."""
        task = self.task(tid)
        size = self.config.saved_auxv_bytes
        want = size if length is None else length
        data = bytes(task.mm.saved_auxv[: min(size, want)])
        self._record(task, "prctl(PR_GET_AUXV)", size)
        return size, data

    def prctl_set_dumpable(self, tid: int, value: int) -> int:
        """prctl(PR_SET_DUMPABLE, 0|1). hwcap-exec sets 1 around PR_SET_MM_MAP only when its own /proc/self/stat
        shows no plausible layout, which the measured kernels never do (kernel.md#non-dumpable-layout)."""
        task = self.task(tid)
        result = -errno.EINVAL if value not in (0, 1) else 0
        if result == 0:
            task.mm.dumpable = bool(value)
        return self._record(task, f"prctl(PR_SET_DUMPABLE, {value})", result)

    # -- credentials ---------------------------------------------------------------------------------

    def setresuid(self, tid: int, ruid: int, euid: int, suid: int) -> int:
        """setresuid(): CAP_SETUID or ids from the current set; a changed euid makes the mm non-dumpable
        (commit_creds -> fs.suid_dumpable) and leaving root drops capabilities (cap_emulate_setxuid)."""
        task = self.task(tid)
        old = task.creds
        new_ids = tuple(
            o if n == -1 else n for n, o in zip((ruid, euid, suid), (old.uid, old.euid, old.suid), strict=True)
        )
        allowed = old.ns_capable(CAP_SETUID) or all(i in (old.uid, old.euid, old.suid) for i in new_ids)
        result = 0 if allowed else -errno.EPERM
        if allowed:
            caps = old.caps
            if new_ids[1] != 0:
                caps = frozenset()
            elif old.euid != 0:
                caps = old.bounding if 0 in (old.uid, old.suid) else caps
            task.creds = replace(old, uid=new_ids[0], euid=new_ids[1], suid=new_ids[2], caps=caps)
            if new_ids[1] != old.euid:
                task.mm.dumpable = self.config.suid_dumpable != 0
        return self._record(task, f"setresuid({ruid}, {euid}, {suid})", result)

    def drop_caps(self, tid: int, caps: frozenset[str]) -> int:
        """capset() lowering the effective set: always allowed."""
        task = self.task(tid)
        task.creds = replace(task.creds, caps=task.creds.caps - caps)
        return self._record(task, f"drop {','.join(sorted(caps))}", 0)


def _exec_creds(old: Creds, binary: Binary) -> tuple[Creds, bool]:
    """Set-ID exec (security/commoncap.c, simplified): euid/egid from the file, capabilities follow root
    (effective = bounding set when the new euid is 0, else empty; file caps and ambient caps not modelled),
    AT_SECURE when the new euid/egid differ from the caller's real ids. No NO_NEW_PRIVS / nosuid mounts."""
    euid = old.euid if binary.setuid_owner is None else binary.setuid_owner
    egid = old.egid if binary.setgid_group is None else binary.setgid_group
    caps = old.bounding if euid == 0 else frozenset()
    secure = euid != old.uid or egid != old.gid
    return replace(old, euid=euid, suid=euid, egid=egid, caps=caps), secure


def _valid_layout(layout: MmLayout, cfg: KernelConfig) -> bool:
    """``validate_prctl_map_addr()`` (kernel.md#prctl-set-mm-map): every address in [mmap_min_addr, TASK_SIZE),
    pairs ordered."""
    return all(cfg.mmap_min_addr <= v < cfg.task_size for v in layout.addresses()) and layout.ordered()


#: glibc x86_64 replaces dl_hwcap, so getauxval(AT_HWCAP) is 0x2 in 64-bit and 0x1 in ia32 processes
#: whatever the kernel passed (seen under qemu with glibc 2.36, kernel.md#glibc-getauxval-x86). AT_HWCAP2 is
#: passed through.
_GLIBC_X86_AT_HWCAP: Final[dict[Abi, int]] = {"native": 0x2, "compat": 0x1}


def glibc_getauxval(kernel: Kernel, tid: int, entry_type: int) -> int:
    """What a glibc program's ``getauxval(entry_type)`` returns, as opposed to what the kernel passed."""
    task = kernel.task(tid)
    if kernel.config.arch == "amd64" and entry_type == HWCAP_TYPES[0]:
        return _GLIBC_X86_AT_HWCAP[task.abi]
    return kernel.getauxval(tid, entry_type)
