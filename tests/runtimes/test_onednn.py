"""oneDNN 3.2 (PyPI onednn-cpu-gomp 2023.2.0) under the webhook's ONEDNN_MAX_CPU_ISA: the ISA its JIT targets.

``dnnl_get_effective_cpu_isa()`` returns the ``dnnl_cpu_isa_t`` oneDNN will generate code for, after the
variable and its own CPUID probe. The values below are that enum's, from include/oneapi/dnnl/dnnl_types.h of
oneDNN v3.2 (each level is a bit set of the ones below it).
"""

from __future__ import annotations

import sys

import pytest

from hwcap_operator import features
from hwcap_operator.admission.fallbacks import ONEDNN_MAX_CPU_ISA
from hwcap_operator.features.data_onednn import NOT_WRITTEN, ONEDNN_ISAS
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.conftest import EnvFor, hide
from tests.runtimes.probes import run
from tests.runtimes.wheels import wheel_libs

DNNL_CPU_ISA = {"SSE41": 0x1, "AVX": 0x3, "AVX2": 0x7, "AVX512_CORE": 0x27, "AVX512_CORE_VNNI": 0x67,
                "AVX512_CORE_BF16": 0xE7, "AVX512_CORE_FP16": 0x1EF, "AVX512_CORE_AMX": 0xFEF}  # fmt: skip
_PROBE = "import ctypes, sys; print(ctypes.CDLL(sys.argv[1]).dnnl_get_effective_cpu_isa())"
WRITTEN = [name for name, _ in ONEDNN_ISAS if name not in NOT_WRITTEN]


def effective_isa(env: dict[str, str]) -> int:
    return int(run([sys.executable, "-c", _PROBE, str(wheel_libs("onednn-cpu-gomp") / "libdnnl.so.3")], env).stdout)


def _within_machine(machine: FeatureMask, level: str) -> bool:
    return dict(ONEDNN_ISAS)[level] <= set(machine.names())


@pytest.mark.parametrize("level", WRITTEN)
def test_each_level_the_webhook_may_write_is_one_onednn_knows(level: str, machine: FeatureMask) -> None:
    assert _within_machine(machine, level), f"this machine cannot show {level}"
    assert effective_isa({ONEDNN_MAX_CPU_ISA: level}) == DNNL_CPU_ISA[level]


def test_a_misspelt_level_is_ignored() -> None:
    assert effective_isa({ONEDNN_MAX_CPU_ISA: "AVX2_"}) == effective_isa({}) != DNNL_CPU_ISA["AVX2"]


def test_demo_domain_x86_64_v3_caps_onednn_at_avx2(machine: FeatureMask, env_for: EnvFor) -> None:
    assert effective_isa({}) >= DNNL_CPU_ISA["AVX512_CORE"], "this suite needs an AVX-512 machine"
    env = env_for(preset("x86-64-v3") & machine)
    assert env[ONEDNN_MAX_CPU_ISA] == "AVX2" and effective_isa(env) == DNNL_CPU_ISA["AVX2"]


def test_hiding_bf16_keeps_the_vnni_kernels(machine: FeatureMask, env_for: EnvFor) -> None:
    bf16 = features.lookup("amd64", "avx512_bf16")
    assert bf16.name in machine and effective_isa({}) == DNNL_CPU_ISA["AVX512_CORE_BF16"]
    env = env_for(hide(machine, [bf16]))
    assert effective_isa(env) == DNNL_CPU_ISA["AVX512_CORE_VNNI"], env
