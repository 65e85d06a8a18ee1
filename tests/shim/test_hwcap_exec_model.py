"""The exec model against the real binary on the real kernel.

The binary's documented rule (every HWCAP entry ANDed with its word's mask, the rest kept, AT_NULL-terminated,
zero-padded to the kernel's saved_auxv size) gives the buffer; the model's PR_SET_MM_MAP turns it into the
saved_auxv it predicts; the real kernel's answer is what the binary read back (itself checked against
/proc/<pid>/auxv from outside in test_hwcap_exec.py). This kernel carries no patch, so the model runs at
patch level "none" for what exec'd programs see; the kernel lab covers v5.
"""

from __future__ import annotations

import platform
from pathlib import Path

from hwcap_exec_support import NOBODY, Pair, documented_after, kernel_hwcap, own_auxv, parse_auxv, run, vector

from hwcap_operator.arch import normalize_arch
from hwcap_operator.auxv import AT_HWCAP, AT_HWCAP2, AT_NULL, HWCAP_TYPES
from hwcap_operator.execmodel import Binary, Creds, Kernel, KernelConfig, PatchLevel, PrctlMmMap
from hwcap_operator.execmodel.hwcap_exec import apply_mask, masked_vector
from hwcap_operator.execmodel.kernel import MmLayout


def _node(patch: PatchLevel) -> KernelConfig:
    """This machine as a model node: its arch and the HWCAP words its kernel gives every process."""
    words = kernel_hwcap()
    return KernelConfig.for_arch(
        normalize_arch(platform.machine()), [words.get(t, 0) for t in HWCAP_TYPES], patch=patch
    )


def _creds(user: str) -> Creds:
    return Creds() if user == "root" else Creds.user(NOBODY)


def _load_real_vector(kernel: Kernel, pid: int, pairs: list[Pair]) -> None:
    """Give the model process the vector the real kernel built for the binary (addresses and all)."""
    raw = kernel.config.native_layout.encode([*pairs, (AT_NULL, 0)])
    mm = kernel.task(pid).mm
    mm.saved_auxv[:] = raw.ljust(kernel.config.saved_auxv_bytes, b"\0")
    mm.stack_auxv = (*pairs, (AT_NULL, 0))


def _documented_buffer(kernel: Kernel, before: list[Pair], masks: dict[int, int]) -> bytes:
    raw = kernel.config.native_layout.encode([*documented_after(before, masks), (AT_NULL, 0)])
    return raw.ljust(kernel.config.saved_auxv_bytes, b"\0")


def test_model_predicts_the_saved_auxv_pr_set_mm_map_stores(hwcap_exec: Path, user: str) -> None:
    words = kernel_hwcap()
    masks = {AT_HWCAP: words[AT_HWCAP] & 0xFF, AT_HWCAP2: 0}
    res = run(
        [str(hwcap_exec), "--hwcap", f"{masks[AT_HWCAP]:#x}", "--hwcap2", "0", "--print=json", "--", "/bin/true"],
        user=user,
    )
    assert res.returncode == 0, res.stderr
    report = res.report()
    before = vector(report, "before")
    real_after = vector(report, "after")

    kernel = Kernel(_node("none"))
    # sizeof(mm->saved_auxv): the model's AT_VECTOR_SIZE for this arch is what PR_GET_AUXV reported.
    assert report["saved_auxv_size"] == kernel.config.saved_auxv_bytes
    pid = kernel.spawn("hwcap-exec", Binary("/hwcap-exec"), _creds(user))
    _load_real_vector(kernel, pid, before)
    buf = _documented_buffer(kernel, before, masks)
    # No capability is needed for the auxv (exe_fd = -1): the model must agree with the real success.
    assert kernel.prctl_set_mm_map(pid, PrctlMmMap(MmLayout(), auxv=buf)) == 0
    predicted = kernel.config.native_layout.pairs(kernel.proc_auxv(pid))
    assert predicted[-1] == (AT_NULL, 0)
    assert predicted[:-1] == real_after


def test_execmodel_hwcap_exec_predicts_the_binary(hwcap_exec: Path, user: str) -> None:
    """execmodel.hwcap_exec (the model of this binary) on the model kernel, started from the real vector,
    predicts the saved_auxv the real binary leaves: same method, same entries, same values.

    All four words are passed, as the webhook does, including words this kernel does not provide (e.g.
    --hwcap3/4 on x86_64): the binary and the model both leave those out."""
    words = kernel_hwcap()
    mask = [words[t] & 0x5555_5555_5555_5555 if t in words else 0x5555 for t in HWCAP_TYPES]
    args = [a for k, m in enumerate(mask) for a in (f"--hwcap{k + 1 if k else ''}", f"{m:#x}")]
    res = run([str(hwcap_exec), *args, "--print=json", "--", "/bin/true"], user=user)
    assert res.returncode == 0, res.stderr
    report = res.report()
    before = vector(report, "before")
    after = vector(report, "after")
    assert {t for t, _ in after if t in HWCAP_TYPES} == set(words)  # none added for --hwcap3/4 here

    assert masked_vector(before, mask, words)[:-1] == after
    kernel = Kernel(_node("none"))
    pid = kernel.spawn("hwcap-exec", Binary("/hwcap-exec"), _creds(user))
    _load_real_vector(kernel, pid, before)
    result = apply_mask(kernel, pid, mask)
    assert result.method == report["method"]
    predicted = kernel.config.native_layout.pairs(kernel.proc_auxv(pid))
    assert predicted[:-1] == after


def test_model_predicts_what_the_execd_program_sees_here(hwcap_exec: Path, workdir: Path, user: str) -> None:
    """Unpatched kernel: after the prctl, exec builds a fresh vector with the kernel's own words."""
    out = workdir / "auxv"
    res = run(
        [str(hwcap_exec), "--hwcap", "0x0", "--hwcap2", "0x0", "--", "/bin/sh", "-c", f"cat /proc/$$/auxv > {out}"],
        user=user,
    )
    assert res.returncode == 0, res.stderr
    seen = {t: v for t, v in parse_auxv(out.read_bytes()) if t in HWCAP_TYPES}

    kernel = Kernel(_node("none"))
    pid = kernel.spawn("hwcap-exec", Binary("/hwcap-exec"), _creds(user))
    _load_real_vector(kernel, pid, own_auxv())
    buf = _documented_buffer(kernel, own_auxv(), {AT_HWCAP: 0, AT_HWCAP2: 0})
    assert kernel.prctl_set_mm_map(pid, PrctlMmMap(MmLayout(), auxv=buf)) == 0
    assert kernel.execve(pid, Binary("/bin/sh")) == 0
    predicted = {t: kernel.getauxval(pid, t) for t in HWCAP_TYPES[: len(kernel.config.hwcap)]}
    assert seen == predicted


def _model_probe(patch: PatchLevel) -> str:
    """The probe's experiment in the model: clear the top bit of the last non-zero HWCAP word, apply with
    PR_SET_MM_MAP, exec, compare what the new image got."""
    kernel = Kernel(_node(patch))
    pid = kernel.spawn("hwcap-exec", Binary("/hwcap-exec"), Creds.user(NOBODY))
    before = [(t, v) for t, v in kernel.config.native_layout.pairs(kernel.proc_auxv(pid)) if t != AT_NULL]
    last_type, last_value = [(t, v) for t, v in before if t in HWCAP_TYPES and v][-1]
    masked = last_value & ~(1 << (last_value.bit_length() - 1))
    buf = _documented_buffer(kernel, before, {last_type: masked})
    assert kernel.prctl_set_mm_map(pid, PrctlMmMap(MmLayout(), auxv=buf)) == 0
    assert kernel.execve(pid, Binary("/proc/self/exe")) == 0
    seen = kernel.getauxval(pid, last_type)
    return "supported" if seen == masked else "unsupported" if seen == last_value else "unknown"


def test_probe_agrees_with_the_model_of_this_kernel(hwcap_exec: Path) -> None:
    real = run([str(hwcap_exec), "--probe"]).stdout.strip()
    assert real == _model_probe("none")
    # The experiment discriminates: on a kernel with the series the same steps give "supported".
    assert _model_probe("v5") == "supported"
