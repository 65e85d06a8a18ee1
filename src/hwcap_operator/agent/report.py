"""What the agent observes on its node, and how that becomes Node annotations (pure functions).

The agent reads AT_HWCAP* from its own /proc/self/auxv: the kernel's words, including HWCAP2/HWCAP3 bits
that Node Feature Discovery does not label. It must not run under an injected mask (it would report the
mask, and the domain's baseline could only ever shrink), so an agent that finds the webhook's environment
variable refuses to report.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hwcap_operator import keys
from hwcap_operator.arch import Arch, normalize_arch
from hwcap_operator.auxv import parse_auxv
from hwcap_operator.domain.leveling import overrides_in_cmdline

Inheritance = Literal["supported", "unsupported", "unknown"]

#: hwcap-exec --probe exit codes (src/shim/hwcap-exec.c): 0 supported, 3 unsupported, 4 unknown.
_PROBE_EXIT: dict[int, Inheritance] = {0: "supported", 3: "unsupported", 4: "unknown"}


class MaskedAgentError(RuntimeError):
    """The agent itself runs under an injected mask; what it would report is not the node's truth."""


@dataclass(frozen=True)
class AgentReport:
    """One observation of the node: its arch, the kernel's HWCAP words, kernel release, inheritance."""

    arch: Arch
    hwcap: tuple[int, int, int, int]
    kernel_release: str
    inheritance: Inheritance
    probe_detail: str = ""
    #: arm64 ID-register overrides on the kernel command line (docs/kernel.md#idreg-override), in order
    idreg_overrides: tuple[str, ...] = ()


def format_words(words: tuple[int, int, int, int]) -> str:
    """``0x..,0x..,0x..,0x..`` (AT_HWCAP..AT_HWCAP4), the annotation format documented in keys.py."""
    return ",".join(f"{w:#x}" for w in words)


def report_annotations(report: AgentReport) -> dict[str, str]:
    """The Node annotations that publish ``report`` (the operator reads exactly these keys)."""
    return {
        keys.AGENT_HWCAP_ANNOTATION: format_words(report.hwcap),
        keys.AGENT_KERNEL_RELEASE_ANNOTATION: report.kernel_release,
        keys.AGENT_INHERITANCE_ANNOTATION: report.inheritance,
        keys.AGENT_IDREG_OVERRIDES_ANNOTATION: " ".join(report.idreg_overrides),
    }


def annotation_patch(current: Mapping[str, str] | None, report: AgentReport) -> dict[str, str] | None:
    """The annotations to merge-patch onto the Node, or None when it already says all of it."""
    wanted = report_annotations(report)
    current = current or {}
    changed = {k: v for k, v in wanted.items() if current.get(k) != v}
    return changed or None


def probe_inheritance(hwcap_exec: Path | None, timeout: float = 20.0) -> tuple[Inheritance, str]:
    """Ask ``hwcap-exec --probe`` whether this kernel inherits HWCAPs; unknown (with why) when it cannot."""
    if hwcap_exec is None:
        return "unknown", "no hwcap-exec binary to probe with"
    try:
        proc = subprocess.run([str(hwcap_exec), "--probe"], capture_output=True, text=True, timeout=timeout,
                              check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "unknown", f"running {hwcap_exec} --probe failed: {exc}"
    verdict = _PROBE_EXIT.get(proc.returncode, "unknown")
    detail = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    return verdict, detail[0] if detail else f"exit {proc.returncode}"


def observe(hwcap_exec: Path | None, auxv_path: Path = Path("/proc/self/auxv"),
            environ: Mapping[str, str] | None = None,
            cmdline_path: Path = Path("/proc/cmdline")) -> AgentReport:  # fmt: skip
    """Read this node's facts; raises MaskedAgentError when the agent itself was started under a mask."""
    environ = os.environ if environ is None else environ
    if keys.ENV_MASK_ID in environ:
        raise MaskedAgentError(
            f"the agent runs under HWCAP mask {environ[keys.ENV_MASK_ID]} ({keys.ENV_MASK_ID} is set): its HWCAPs "
            "are not the node's; exclude the agent's namespace from injection"
        )
    uname = os.uname()
    vector = parse_auxv(auxv_path.read_bytes(), source=str(auxv_path))
    inheritance, detail = probe_inheritance(hwcap_exec)
    arch = normalize_arch(uname.machine)
    overrides = read_idreg_overrides(cmdline_path) if arch == "arm64" else ()
    return AgentReport(arch, vector.hwcap, uname.release, inheritance, detail, overrides)


def read_idreg_overrides(cmdline_path: Path = Path("/proc/cmdline")) -> tuple[str, ...]:
    """The ID-register overrides the node booted with; none when /proc/cmdline cannot be read."""
    try:
        return overrides_in_cmdline(cmdline_path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return ()
