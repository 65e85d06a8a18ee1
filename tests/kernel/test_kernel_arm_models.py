"""Arm core presets against real kernels: the HWCAPs derived from QEMU's ID-register values through the
kernel's mapping (hwcap_operator.features.idreg_hwcaps) must equal the AT_HWCAP/AT_HWCAP2 each guest's kernel
publishes when booted on that QEMU model. The two kernel options that change the published set are read
from the booted kernel's own .config, not assumed: the arch-timer event stream (evtstrm) and the SSBS
erratum workaround (3194386, which hides ssbs on the cores of its list)."""

from __future__ import annotations

import pytest
from kernellab.lab import ModelRun

from hwcap_operator.features.data_arm_models import ARM_MODELS
from hwcap_operator.features.idreg_hwcaps import hwcaps_from_idregs
from hwcap_operator.mask import FeatureMask

pytestmark = pytest.mark.kernel


def _enabled(run: ModelRun, option: str) -> bool:
    return f"{option}=y" in (run.kernel.directory / ".config").read_text().splitlines()


def test_derived_words_equal_the_guest_kernels(lab_runs: list[ModelRun]) -> None:
    compared = []
    for run in lab_runs:
        name = run.model.key.removeprefix("arm64/")
        if run.model.arch != "arm64" or name not in ARM_MODELS:
            continue
        names = hwcaps_from_idregs(
            ARM_MODELS[name],
            ssbs_erratum=_enabled(run, "CONFIG_ARM64_ERRATUM_3194386"),
            evtstrm=_enabled(run, "CONFIG_ARM_ARCH_TIMER_EVTSTREAM"),
        )
        derived = FeatureMask.from_names("arm64", names)
        native, _ = run.baseline()
        kernel = FeatureMask.from_words("arm64", *native)
        only_derived, only_kernel = (derived - kernel).names(), (kernel - derived).names()
        assert derived == kernel, f"{name} on {run.variant}: derived only {only_derived}, kernel only {only_kernel}"
        compared.append(name)
    if not any(r.model.arch == "arm64" for r in lab_runs):
        pytest.skip("no arm64 model in this lab run (HWCAP_LAB_MODELS)")
    assert compared, "no booted arm64 model has a QEMU table entry"
