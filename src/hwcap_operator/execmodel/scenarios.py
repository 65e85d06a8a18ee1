"""Scenarios: data (a list of steps) that drive the exec model and, in the kernel lab, a real guest.

A scenario names its processes ("init", "child", ...) instead of using pids, builds the vectors it hands
to prctl *relative to the process's own PR_GET_AUXV* (an :class:`AuxvEdit`), and records what chosen
processes see (``observe``). The lab's probe runs the same JSON and prints the same observations, so a
difference between model and kernel is a difference in one observation line. pids are normalised to 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic

from hwcap_operator.auxv import (
    AT_HWCAP,
    AT_HWCAP2,
    AT_NULL,
    AT_SECURE,
    HWCAP_TYPES,
    Layout,
    Pair,
    at_name,
    hwcap_entries,
    terminated,
)
from hwcap_operator.execmodel.hwcap_exec import apply_mask
from hwcap_operator.execmodel.id_registers import read_id_registers, words_mask
from hwcap_operator.execmodel.kernel import (
    CAP_SYS_RESOURCE,
    Binary,
    Creds,
    Kernel,
    KernelConfig,
    ModelError,
    PrctlMmMap,
    TraceEvent,
)

StepOp = Literal[
    "spawn", "fork", "thread", "exec", "set_auxv", "set_mm_map", "hwcap_exec", "setresuid", "set_dumpable",
    "drop_caps", "observe", "idregs",
]  # fmt: skip


@dataclass(frozen=True)
class AuxvEdit:
    """How a process derives the vector it passes to prctl from its own saved_auxv (PR_GET_AUXV).

    Applied in this order: ``mask`` (AND the value of every entry of a type), ``drop`` (remove types),
    ``prepend``/``append`` (append goes before AT_NULL), ``keep_through`` (cut right after the first entry
    of that type, with no AT_NULL). ``length``: "used" = the encoded pairs, "full" = the whole
    sizeof(saved_auxv) buffer (zero padded), or a byte count.
    """

    mask: tuple[tuple[int, int], ...] = ()
    drop: tuple[int, ...] = ()
    prepend: tuple[tuple[int, int], ...] = ()
    append: tuple[tuple[int, int], ...] = ()
    keep_through: int | None = None
    length: Literal["used", "full"] | int = "used"

    def apply(self, pairs: Sequence[Pair]) -> list[Pair]:
        masks = dict(self.mask)
        body = [(t, v & masks.get(t, ~0)) for t, v in pairs if t != AT_NULL and t not in self.drop]
        out = [*self.prepend, *body, *self.append]
        if self.keep_through is None:
            return terminated(out)
        cut = next((i for i, (t, _) in enumerate(out) if t == self.keep_through), len(out) - 1)
        return out[: cut + 1]

    def encode(self, pairs: Sequence[Pair], layout: Layout, full_size: int) -> tuple[bytes, int]:
        """The user buffer and the length argument."""
        raw = layout.encode(self.apply(pairs))
        if self.length == "used":
            return raw, len(raw)
        size = full_size if self.length == "full" else self.length
        return raw + bytes(max(0, size - len(raw))), size


@dataclass(frozen=True)
class Step:
    """One operation by process ``proc``. Fields other than ``op``/``proc`` are used by some ops only."""

    op: StepOp
    proc: str
    child: str = ""  # fork, thread: the name of the new process/thread
    binary: Binary | None = None  # spawn, exec
    edit: AuxvEdit | None = None  # set_auxv, set_mm_map
    mask: tuple[int, ...] = ()  # hwcap_exec: --hwcap, --hwcap2, ...
    uid: int | None = None  # spawn (runAsUser), setresuid
    caps: tuple[str, ...] = ()  # spawn (effective set), drop_caps
    value: int = 0  # set_dumpable


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _ADAPTER.dump_python(self, mode="json", exclude_defaults=True)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Scenario:
        """Parse JSON data; a bad field raises :class:`ScenarioError` naming its location."""
        try:
            return _ADAPTER.validate_python(data)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ScenarioError(f"scenario field {where}: {first['msg']}") from None


_ADAPTER: pydantic.TypeAdapter[Scenario] = pydantic.TypeAdapter(Scenario)


class ScenarioError(ValueError):
    """A scenario that cannot be run (bad JSON field, unknown process name); the message names it."""


@dataclass(frozen=True)
class Observation:
    """One line of a run: the step's result and, for ``observe``, what the process sees.

    ``hwcap``: the HWCAP words the kernel put on the process's stack (getauxval of the kernel's value);
    ``saved``: HWCAP entries of /proc/self/auxv (read in the process's own layout; last one wins);
    ``secure``: AT_SECURE. ``idregs`` (arm64) adds ``reader``: what a reader following the kernel's rule reads
    ("mrs" when its AT_HWCAP has HWCAP_CPUID, else "hwcap"), and ``mrs``: the HWCAP words the ID registers imply
    when read with MRS anyway (docs/kernel.md#hwcap-cpuid).
    """

    step: int
    op: str
    proc: str
    result: int
    hwcap: tuple[int, ...] | None = None
    saved: dict[str, int] | None = None
    secure: int | None = None
    reader: str | None = None
    mrs: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step, "op": self.op, "proc": self.proc, "result": self.result}
        if self.hwcap is not None:
            out["hwcap"] = [f"{w:#x}" for w in self.hwcap]
        if self.saved is not None:
            out["saved"] = {t: f"{v:#x}" for t, v in self.saved.items()}
        if self.secure is not None:
            out["secure"] = self.secure
        if self.reader is not None:
            out["reader"] = self.reader
        if self.mrs is not None:
            out["mrs"] = [f"{w:#x}" for w in self.mrs]
        return out


@dataclass
class Run:
    """The outcome of a scenario on the model: observations (for comparison) and the kernel trace."""

    observations: list[Observation] = field(default_factory=list)
    trace: list[TraceEvent] = field(default_factory=list)
    pids: dict[str, int] = field(default_factory=dict)


def run(scenario: Scenario, config: KernelConfig) -> Run:
    """Execute every step on a fresh simulated kernel."""
    kernel = Kernel(config)
    out = Run()
    for index, step in enumerate(scenario.steps):
        result = _do(kernel, out.pids, step, index)
        obs = Observation(index, step.op, step.proc, result)
        if step.op == "observe":
            obs = _observe(kernel, out.pids[step.proc], index, step.proc)
        elif step.op == "idregs":
            obs = _idregs(kernel, out.pids[step.proc], index, step.proc)
        out.observations.append(obs)
    out.trace = kernel.trace
    return out


def _do(kernel: Kernel, pids: dict[str, int], step: Step, index: int) -> int:
    if step.op == "spawn":
        uid = 0 if step.uid is None else step.uid
        creds = Creds.user(uid, caps=frozenset(step.caps)) if step.uid is not None else Creds()
        pid = kernel.spawn(step.proc, step.binary, creds)
        if pid > 0:
            pids[step.proc] = pid
        return min(pid, 0)
    if step.proc not in pids:
        raise ScenarioError(f"step {index} ({step.op}): unknown process {step.proc!r}")
    tid = pids[step.proc]
    if step.op in ("fork", "thread"):
        new = kernel.fork(tid, step.child) if step.op == "fork" else kernel.clone_thread(tid)
        if new > 0:
            pids[step.child or f"{step.proc}.{new}"] = new
        return min(new, 0)
    if step.op == "hwcap_exec":
        # hwcap-exec --on-failure=warn (as the lab's guest runs it) execs the program whether or not the mask
        # took: the step's result is the exec's, the apply shows in the trace and in later observations.
        apply_mask(kernel, tid, step.mask)
    if step.op in ("exec", "hwcap_exec"):
        tgid = kernel.task(tid).tgid
        result = kernel.execve(tid, step.binary or Binary())
        if result == 0:  # de_thread(): the exec'ing thread now holds the process id, the others are gone
            pids[step.proc] = tgid
            for name, other in list(pids.items()):
                if other not in kernel.tasks:
                    del pids[name]
        return result
    if step.op in ("set_auxv", "set_mm_map"):
        return _set_vector(kernel, tid, step)
    if step.op == "setresuid":
        uid = -1 if step.uid is None else step.uid
        return kernel.setresuid(tid, uid, uid, uid)
    if step.op == "set_dumpable":
        return kernel.prctl_set_dumpable(tid, step.value)
    if step.op == "drop_caps":
        return kernel.drop_caps(tid, frozenset(step.caps))
    return 0  # observe


def _set_vector(kernel: Kernel, tid: int, step: Step) -> int:
    task = kernel.task(tid)
    layout = kernel.config.layout(task.abi)
    size, raw = kernel.prctl_get_auxv(tid)
    edit = step.edit or AuxvEdit()
    buf, length = edit.encode(layout.pairs(raw), layout, size)
    if step.op == "set_auxv":
        return kernel.prctl_set_mm_auxv(tid, buf, length)
    return kernel.prctl_set_mm_map(tid, PrctlMmMap(kernel.proc_stat_layout(tid), buf[:length]))


def _observe(kernel: Kernel, tid: int, index: int, name: str) -> Observation:
    task = kernel.task(tid)
    layout = kernel.config.layout(task.abi)
    saved = hwcap_entries(layout.pairs(kernel.proc_auxv(task.tgid)), HWCAP_TYPES)
    return Observation(
        index,
        "observe",
        name,
        0,
        hwcap=kernel.stack_hwcap(tid),
        saved={at_name(t): v for t, v in sorted(saved.items())},
        secure=kernel.getauxval(tid, AT_SECURE),
    )


def _idregs(kernel: Kernel, tid: int, index: int, name: str) -> Observation:
    """A native arm64 process reads the ID registers: as a rule-follower would, and with MRS regardless."""
    if kernel.config.arch != "arm64" or kernel.task(tid).abi != "native":
        raise ScenarioError(f"step {index} (idregs): ID registers are read by native arm64 processes only")
    stack = kernel.stack_hwcap(tid)
    view = read_id_registers(words_mask(kernel.config.hwcap), words_mask(stack))
    return Observation(index, "idregs", name, 0, hwcap=stack, reader=view.reader, mrs=view.mrs.hwcap[: len(stack)])


# ------------------------------------------------------------------------------------ standard library


def _mask_edit(mask: Sequence[int], **extra: Any) -> AuxvEdit:
    return AuxvEdit(mask=tuple(zip(HWCAP_TYPES, mask, strict=False)), **extra)


def lab_scenarios(mask: Sequence[int], *, compat: bool = True) -> list[Scenario]:
    """The conformance scenarios of issue 7, for a mask given as HWCAP words (AT_HWCAP first).

    ``compat``: include the AArch32/ia32 child (leave it out for CPUs without a compat ABI, e.g. a64fx).
    """
    native = Binary("/probe")
    user = Step("spawn", "init", binary=native, uid=65534)
    root = Step("spawn", "init", binary=native)
    chain = (
        Step("fork", "init", child="c1"),
        Step("exec", "c1", binary=native),
        Step("fork", "c1", child="c2"),
        Step("exec", "c2", binary=native),
        Step("fork", "c2", child="c3"),
        Step("exec", "c3", binary=native),
        Step("observe", "c1"),
        Step("observe", "c2"),
        Step("observe", "c3"),
    )
    child = (Step("fork", "init", child="c1"), Step("exec", "c1", binary=native), Step("observe", "c1"))
    full = _mask_edit(mask, length="full")
    out = [
        Scenario("map-unprivileged", "PR_SET_MM_MAP as uid 65534 with no capability, fork->exec depth 3",
                 (user, Step("set_mm_map", "init", edit=_mask_edit(mask)), Step("observe", "init"), *chain)),
        Scenario("auxv-with-cap", "PR_SET_MM_AUXV (full size) holding CAP_SYS_RESOURCE",
                 (root, Step("set_auxv", "init", edit=full), *child)),
        Scenario("auxv-without-cap", "PR_SET_MM_AUXV after dropping CAP_SYS_RESOURCE: EPERM, nothing inherited",
                 (root, Step("drop_caps", "init", caps=(CAP_SYS_RESOURCE,)),
                  Step("set_auxv", "init", edit=full), *child)),
        Scenario("short-vector", "PR_SET_MM_AUXV of the pairs through AT_HWCAP only: old tail kept or zeroed",
                 (root, Step("set_auxv", "init", edit=_mask_edit(mask, keep_through=AT_HWCAP)), *child)),
        Scenario("missing-hwcap2", "PR_SET_MM_MAP of a vector without AT_HWCAP2",
                 (user, Step("set_mm_map", "init", edit=_mask_edit(mask, drop=(AT_HWCAP2,))), *child)),
        Scenario("duplicate-appended", "a second AT_HWCAP=0 after the real entries: n-- ends the scan first",
                 (user, Step("set_mm_map", "init", edit=_mask_edit(mask, append=((AT_HWCAP, 0),))), *child)),
        Scenario("duplicate-prepended", "AT_HWCAP=0 before the real entries: last wins, later words unread",
                 (user, Step("set_mm_map", "init", edit=_mask_edit(mask, prepend=((AT_HWCAP, 0),))), *child)),
        Scenario("thread-exec", "a thread of the masked process execs (shares the mm and so the flag)",
                 (user, Step("set_mm_map", "init", edit=_mask_edit(mask)), Step("thread", "init", child="t1"),
                  Step("exec", "t1", binary=native), Step("observe", "t1"))),
        Scenario("setuid-child", "a setuid-root child inherits the mask (no special case, kernel.md#setuid-inherit)",
                 (user, Step("set_mm_map", "init", edit=_mask_edit(mask)), Step("fork", "init", child="s"),
                  Step("exec", "s", binary=Binary("/probe-suid", setuid_owner=0)), Step("observe", "s"))),
        Scenario("non-dumpable", "setresuid from root makes the mm non-dumpable; its own /proc/self/stat still "
                 "shows the layout, so PR_SET_MM_MAP works before and after PR_SET_DUMPABLE",
                 (root, Step("setresuid", "init", uid=65534), Step("set_mm_map", "init", edit=_mask_edit(mask)),
                  Step("set_dumpable", "init", value=1), Step("set_mm_map", "init", edit=_mask_edit(mask)),
                  *child)),
    ]  # fmt: skip
    if compat:
        compat_bin = Binary("/probe32", abi="compat")
        out.append(
            Scenario("compat-child", "an AArch32/ia32 child and its native grandchild",
                     (user, Step("set_mm_map", "init", edit=_mask_edit(mask)), Step("fork", "init", child="a32"),
                      Step("exec", "a32", binary=compat_bin), Step("observe", "a32"),
                      Step("fork", "a32", child="a64"), Step("exec", "a64", binary=native), Step("observe", "a64")))
        )  # fmt: skip
    return out


__all__ = [
    "AuxvEdit",
    "ModelError",
    "Observation",
    "Run",
    "Scenario",
    "ScenarioError",
    "Step",
    "lab_scenarios",
    "run",
]
