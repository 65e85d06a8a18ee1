"""x86 CPUID faulting (docs/kernel.md#hwcap-cpuid): ``arch_prctl(ARCH_SET_CPUID, 0)`` makes CPUID fault in the
calling thread when the CPU offers the feature (-ENODEV otherwise), and the kernel turns it off again at
``execve``, so a wrapper such as hwcap-exec cannot hand it to the program it execs.

Measured twice: on this machine's own kernel and CPU (the probe's ``cpuid-fault`` mode), and in the lab's x86_64
guests at boot. Whether the CPU offers it is read from /proc/cpuinfo (``cpuid_fault``), not from the probe.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kernellab.guest import probe_binary
from kernellab.lab import ModelRun

pytestmark = pytest.mark.kernel
ENODEV = 19


def _host_offers_cpuid_faulting() -> bool:
    return any(line.startswith("flags") and "cpuid_fault" in line.split()
               for line in Path("/proc/cpuinfo").read_text().splitlines())  # fmt: skip


def _check(record: dict[str, Any], offered: bool) -> None:
    if offered:
        assert (record["set"], record["trapped_before_exec"]) == (0, 1), record
        assert (record["trapped_after_exec"], record["get_after_exec"]) == (0, 1), "execve turned it off"
    else:
        assert (record["set"], record["trapped_before_exec"], record["trapped_after_exec"]) == (-ENODEV, 0, 0)


def test_on_this_machine_cpuid_faulting_holds_until_execve() -> None:
    result = subprocess.run([str(probe_binary("amd64")), "cpuid-fault"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("@lab ")]
    _check(json.loads(line[5:]), _host_offers_cpuid_faulting())


def test_in_the_lab_s_x86_guests(lab_runs: list[ModelRun]) -> None:
    runs = [r for r in lab_runs if r.model.arch == "amd64"]
    assert runs, "no x86_64 guest in this run's subset"
    for run in runs:
        [record] = [r for r in run.boot.records if r.get("event") == "cpuid_fault"]
        assert "child_status" not in record, record
        # qemu 7.2's TCG CPU models answered -ENODEV (no CPUID faulting); should one offer it, the same rule holds
        _check(record, offered=record["set"] == 0)
