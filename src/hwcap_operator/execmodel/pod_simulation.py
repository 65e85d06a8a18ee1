"""Validation: run a pod's init step under a mask on one node's simulated kernel and say what goes wrong.

The pod is modelled as the init binary (:mod:`.hwcap_exec`) applying the mask, then exec'ing the
entrypoint, which forks and execs a worker and a grandchild, a setuid-root helper, and (where the node has a
compat ABI) a 32-bit child with a 64-bit grandchild. Each process's view is compared with the ideal
(node words AND mask); findings are typed, carry a stable ``code`` and a severity, and serialise to dicts
for the MigrationDomain status and ``hwcapctl --output json``. Finding messages are shown to users: each states
its kernel fact in plain words and names the section of docs/kernel.md that gives the source.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hwcap_operator.arch import Arch, normalize_arch
from hwcap_operator.auxv import AT_SECURE
from hwcap_operator.execmodel.hwcap_exec import ApplyResult, apply_mask
from hwcap_operator.execmodel.id_registers import mrs_view
from hwcap_operator.execmodel.kernel import (
    Abi,
    Binary,
    Creds,
    Kernel,
    KernelConfig,
    PatchLevel,
    TraceEvent,
)
from hwcap_operator.mask import FeatureMask

Severity = Literal["error", "warning", "info"]

# Finding codes: API (the CRD status and the CLI's JSON carry them); extend, do not rename.
FEATURE_MISSING_ON_NODE = "feature-missing-on-node"
SECURITY_FEATURE_HIDDEN = "security-feature-hidden"
INHERITANCE_UNSUPPORTED = "inheritance-unsupported"
MASK_NOT_APPLIED = "mask-not-applied"
MASK_NOT_ENFORCED = "mask-not-enforced"
COMPAT_HWCAPS_CORRUPTED = "compat-hwcaps-corrupted"
CROSS_ABI_EXEC_DROPS_MASK = "cross-abi-exec-drops-mask"
X86_CPUID_UNHIDEABLE = "x86-cpuid-unhideable"
GLIBC_HWCAP_INVISIBLE = "glibc-hwcap-invisible"
SETUID_INHERITS_MASK = "setuid-inherits-mask"
ID_REGISTERS_REVEAL_HIDDEN = "id-registers-reveal-hidden"
ID_REGISTERS_REMAIN = "id-registers-remain"


@dataclass(frozen=True)
class NodeSpec:
    """A node as validation needs it: arch, its kernel's HWCAP words and what that kernel does.

    ``hwcap``: AT_HWCAP..AT_HWCAP4 as the node reports them. ``compat_hwcap``: what a 32-bit process gets
    (arm64 COMPAT_HWCAP/COMPAT_HWCAP2; amd64 defaults to the same words); None on arm64 = unknown (the
    compat child is still simulated, with zero words, so inheritance is checked). ``compat``: the node runs
    32-bit binaries at all. ``cpuid``: amd64 CPUID-only flags of the node, when known.
    """

    name: str
    arch: Arch
    hwcap: tuple[int, ...]
    patch: PatchLevel = "v5"
    compat_hwcap: tuple[int, ...] | None = None
    compat: bool = True
    cpuid: frozenset[str] | None = None
    checkpoint_restore: bool = True
    set_auxv_copies_whole_buffer: bool = False

    @classmethod
    def from_mask(cls, name: str, node: FeatureMask, **options: Any) -> NodeSpec:
        """A node whose kernel reports exactly ``node`` (e.g. parsed from its /proc/cpuinfo)."""
        cpuid = node.cpuid if node.arch == "amd64" else None
        return cls(name=name, arch=node.arch, hwcap=node.hwcap, cpuid=cpuid, **options)

    def kernel_config(self) -> KernelConfig:
        arch = normalize_arch(self.arch)
        compat = self.compat_hwcap
        if compat is None and arch == "arm64" and self.compat:
            compat = (0, 0, 0)
        config = KernelConfig.for_arch(
            arch,
            self.hwcap,
            compat,
            patch=self.patch,
            checkpoint_restore=self.checkpoint_restore,
            set_auxv_copies_whole_buffer=self.set_auxv_copies_whole_buffer,
        )
        return config if self.compat else replace(config, compat_hwcap=None)

    def feature_mask(self) -> FeatureMask:
        return FeatureMask.from_words(self.arch, *self.hwcap, cpuid=self.cpuid or ())


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    features: tuple[str, ...] = ()
    processes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "severity": self.severity, "message": self.message}
        if self.features:
            out["features"] = list(self.features)
        if self.processes:
            out["processes"] = list(self.processes)
        return out


@dataclass(frozen=True)
class ProcessView:
    """What one process of the pod sees: the words the kernel passed, and the ideal under the mask."""

    name: str
    pid: int
    abi: Abi
    parent: str
    masked: bool  # MMF_USER_HWCAP on its mm: its children inherit
    seen: tuple[int, ...]
    expected: tuple[int, ...]
    secure: bool

    @property
    def as_expected(self) -> bool:
        return self.seen == self.expected

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "abi": self.abi,
            "parent": self.parent,
            "masked": self.masked,
            "seen": [f"{w:#x}" for w in self.seen],
            "expected": [f"{w:#x}" for w in self.expected],
            "as_expected": self.as_expected,
            "secure": self.secure,
        }


@dataclass
class Validation:
    node: NodeSpec
    mask: FeatureMask
    apply: ApplyResult
    processes: list[ProcessView] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    trace: list[TraceEvent] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No error finding: processes on this node run under the mask and lose nothing they rely on."""
        return not any(f.severity == "error" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node.name,
            "arch": self.node.arch,
            "patch": self.node.patch,
            "mask": self.mask.canonical(),
            "mask_id": self.mask.mask_id,
            "ok": self.ok,
            "applied_with": self.apply.method or None,
            "processes": [p.to_dict() for p in self.processes],
            "findings": [f.to_dict() for f in self.findings],
            "trace": [e.to_dict() for e in self.trace],
        }


#: The pod's process tree: (name, parent, binary). The init binary itself is "hwcap-exec" -> "entrypoint".
_NATIVE = Binary("/app/worker")
_TREE: tuple[tuple[str, str, Binary], ...] = (
    ("worker", "entrypoint", _NATIVE),
    ("grandchild", "worker", _NATIVE),
    ("setuid-helper", "entrypoint", Binary("/usr/bin/setuid-helper", setuid_owner=0)),
    ("compat-child", "entrypoint", Binary("/app/worker32", abi="compat")),
    ("compat-grandchild", "compat-child", _NATIVE),
)


def validate(
    mask: FeatureMask,
    node: NodeSpec,
    *,
    uid: int = 65534,
    caps: Iterable[str] = (),
) -> Validation:
    """Simulate the pod on ``node`` as ``uid`` with effective ``caps`` (restricted pods: none)."""
    if normalize_arch(node.arch) != mask.arch:
        raise ValueError(f"node {node.name!r} is {node.arch} but the mask is {mask.arch}")
    config = node.kernel_config()
    kernel = Kernel(config)
    init = kernel.spawn("hwcap-exec", Binary("/hwcap/hwcap-exec"), Creds.user(uid, caps=frozenset(caps)))
    applied = apply_mask(kernel, init, mask.hwcap)  # all four words, as the webhook passes them
    kernel.execve(init, Binary("/app/entrypoint"))
    pids, parents = {"entrypoint": init}, {"entrypoint": "hwcap-exec"}
    for name, parent, binary in _TREE:
        if (binary.abi == "compat" and config.compat_hwcap is None) or parent not in pids:
            continue
        pid = kernel.fork(pids[parent], name)
        if kernel.execve(pid, binary) == 0:
            pids[name], parents[name] = pid, parent
    result = Validation(node, mask, applied, trace=kernel.trace)
    for name, pid in pids.items():
        task = kernel.task(pid)
        result.processes.append(
            ProcessView(
                name, pid, task.abi, parents[name], task.mm.user_hwcap, kernel.stack_hwcap(pid),
                _ideal(config, task.abi, mask), secure=kernel.getauxval(pid, AT_SECURE) != 0,
            )
        )  # fmt: skip
    result.findings = _findings(mask, node, config, applied, result.processes)
    return result


def _ideal(config: KernelConfig, abi: Abi, mask: FeatureMask) -> tuple[int, ...]:
    """node words AND mask — except an AArch32 process on arm64: v5 clears the flag on the arch switch
    (docs/kernel.md#arch-switch; the exact hook is unverified) because COMPAT_HWCAP bits mean other things
    than the arm64 mask's (docs/kernel.md#arm64-compat-hwcap), so the right answer there is the plain compat
    words. ia32 shares the native words (docs/kernel.md#compat-auxv)."""
    words = config.loader_words(abi)
    if abi == "compat" and config.arch == "arm64":
        return words
    return tuple(w & m for w, m in zip(words, mask.hwcap, strict=False))


def _findings(
    mask: FeatureMask, node: NodeSpec, config: KernelConfig, applied: ApplyResult, procs: list[ProcessView]
) -> list[Finding]:
    out: list[Finding] = []
    node_mask = node.feature_mask()
    wanted = mask if node.cpuid is not None else FeatureMask(mask.arch, mask.hwcap)
    missing = wanted.difference(node_mask)
    if not missing.is_empty:
        out.append(Finding(
            FEATURE_MISSING_ON_NODE, "error",
            f"node {node.name} lacks {missing.popcount} feature(s) of the mask; a process started under the mask "
            "elsewhere may use them and fault here",
            tuple(missing.names()),
        ))  # fmt: skip
    hidden = [f.name for f in node_mask.difference(mask).security_features()]
    if hidden:
        out.append(Finding(
            SECURITY_FEATURE_HIDDEN, "error",
            "the mask hides security feature(s) the node has; a more privileged program started under the mask "
            "(a set-user-ID one, for instance) inherits it and loses those defences (an objection raised in the "
            "kernel review, docs/kernel.md#objection-security-features)",
            tuple(hidden),
        ))  # fmt: skip
    if config.patch == "none":
        out.append(Finding(
            INHERITANCE_UNSUPPORTED, "error",
            f"node {node.name}'s kernel does not inherit HWCAPs: exec'd processes see the node's full words",
            processes=tuple(p.name for p in procs if not p.as_expected),
        ))  # fmt: skip
    elif not applied.applied:
        detail = applied.refused or f"PR_SET_MM_MAP returned {applied.map_result}"
        if applied.auxv_result is not None:
            detail += f", PR_SET_MM_AUXV {applied.auxv_result}"
        out.append(Finding(
            MASK_NOT_APPLIED, "error", f"the init step could not apply the mask ({detail}): nothing is inherited"
        ))  # fmt: skip
    arm64_compat = [p for p in procs if p.abi == "compat" and config.arch == "arm64"]
    corrupted = tuple(p.name for p in arm64_compat if not p.as_expected)
    if corrupted:
        out.append(Finding(
            COMPAT_HWCAPS_CORRUPTED, "error",
            "AArch32 processes get HWCAPs that are not the node's COMPAT_HWCAP words, and AArch32 bits mean "
            "other things than arm64 ones (the v4 regression: as the v4 code reads, its compat loader hands "
            "them the arm64 words cut to 32 bits; docs/kernel.md#v4-compat-regression)",
            processes=corrupted,
        ))  # fmt: skip
    wrong = tuple(p.name for p in procs if p.masked and not p.as_expected and p not in arm64_compat)
    if wrong:
        out.append(Finding(
            MASK_NOT_ENFORCED, "error",
            "processes flagged MMF_USER_HWCAP see HWCAPs other than node AND mask (versions v2–v4 of the "
            "series read a 32-bit parent's saved auxv as 64-bit pairs; docs/kernel.md#v4-vs-v5)",
            processes=wrong,
        ))  # fmt: skip
    if config.patch != "none" and applied.applied:
        dropped = tuple(p.name for p in procs if not p.masked)
        if dropped:
            out.append(Finding(
                CROSS_ABI_EXEC_DROPS_MASK, "warning",
                "an exec across ABIs cleared MMF_USER_HWCAP (v5 arm64 arch switch: AArch64 and AArch32 HWCAP "
                "bits mean different things; docs/kernel.md#arch-switch): these processes and their descendants "
                "see the node's full HWCAPs",
                processes=dropped,
            ))  # fmt: skip
    if config.arch == "amd64":
        out += _x86_findings(mask, node)
    if config.arch == "arm64":
        out += _id_register_findings(mask, node_mask)
    setuid = tuple(p.name for p in procs if p.secure and p.masked)
    if setuid:
        out.append(Finding(
            SETUID_INHERITS_MASK, "info",
            "set-user-ID executables inherit the mask too (the series has no special case for them; "
            "docs/kernel.md#setuid-inherit)",
            processes=setuid,
        ))  # fmt: skip
    return out


def _id_register_findings(mask: FeatureMask, node: FeatureMask) -> list[Finding]:
    """arm64: the ID registers read with MRS show the node whatever the mask hides; HWCAP_CPUID says whether
    software that follows the kernel's rule reads them (docs/kernel.md#hwcap-cpuid)."""
    hidden = tuple((mrs_view(node) - mask).names())
    if not hidden:
        return []
    if "cpuid" in mask:
        return [Finding(
            ID_REGISTERS_REVEAL_HIDDEN, "warning",
            "the mask hides features but advertises HWCAP_CPUID: software that reads the ID registers with MRS when "
            "HWCAP_CPUID is set (glibc, Go) finds the hidden ones, because the kernel answers those reads with the "
            "node's own values (docs/kernel.md#hwcap-cpuid)",
            hidden,
        )]  # fmt: skip
    return [Finding(
        ID_REGISTERS_REMAIN, "info",
        "HWCAP_CPUID is cleared, so readers that check it (glibc, Go) keep to the HWCAPs; MRS itself still shows "
        "these to software that ignores the bit, and MIDR and /proc/cpuinfo still name the node's core and "
        "features (docs/kernel.md#hwcap-cpuid)",
        hidden,
    )]  # fmt: skip


def _x86_findings(mask: FeatureMask, node: NodeSpec) -> list[Finding]:
    """x86 feature checks use CPUID, not AT_HWCAP (docs/kernel.md#x86-cpuid), and glibc hides the AT_HWCAP word
    (docs/kernel.md#glibc-getauxval-x86)."""
    out: list[Finding] = []
    fallbacks = "enforce with userspace fallbacks (GLIBC_TUNABLES, GODEBUG, OPENSSL_ia32cap)"
    if node.cpuid is not None and node.cpuid - mask.cpuid:
        out.append(Finding(
            X86_CPUID_UNHIDEABLE, "warning",
            f"the mask drops CPUID features of node {node.name} that HWCAPs cannot hide; {fallbacks}",
            tuple(sorted(node.cpuid - mask.cpuid)),
        ))  # fmt: skip
    elif node.cpuid is None and mask.cpuid:
        out.append(Finding(
            X86_CPUID_UNHIDEABLE, "warning",
            f"the mask restricts CPUID features, which HWCAPs cannot hide; {fallbacks}",
        ))  # fmt: skip
    out.append(Finding(
        GLIBC_HWCAP_INVISIBLE, "info",
        "glibc's getauxval(AT_HWCAP) on x86_64 does not return the kernel's word (glibc 2.36 answered 0x2 "
        "whatever the kernel passed; docs/kernel.md#glibc-getauxval-x86): the AT_HWCAP mask shows in "
        "/proc/self/auxv, not in glibc's own checks",
    ))  # fmt: skip
    return out
