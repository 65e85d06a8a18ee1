"""oneMKL 2026.2 (PyPI wheel) under the webhook's MKL_ENABLE_INSTRUCTIONS: which CPU-specific library it loads.

MKL dispatches only on Intel CPUs (on this AMD machine it takes its generic ``libmkl_def`` path whatever the
variable says), so the probe runs under ``qemu-x86_64-static -cpu Haswell``, which reports GenuineIntel with
AVX2 through CPUID. qemu's TCG has no AVX-512, so the levels above AVX2 cannot be observed here.
"""

from __future__ import annotations

import json
import shutil
import sys

from hwcap_operator.admission.fallbacks import MKL_ENABLE_INSTRUCTIONS
from hwcap_operator.presets import preset
from tests.runtimes.conftest import webhook_env
from tests.runtimes.probes import run
from tests.runtimes.wheels import wheel_libs

_PROBE = """import ctypes, json, sys
rt = ctypes.CDLL(sys.argv[1] + "/libmkl_rt.so.3")
n = ctypes.c_int(32); one = ctypes.c_double(1.0); zero = ctypes.c_double(0.0); no = ctypes.c_char(b"N")
a = (ctypes.c_double * 1024)(*([1.0] * 1024)); c = (ctypes.c_double * 1024)()
r = ctypes.byref
rt.dgemm(r(no), r(no), r(n), r(n), r(n), r(one), a, r(n), a, r(n), r(zero), c, r(n))
assert c[0] == 32.0, c[0]
print(json.dumps(sorted({l.split()[-1].rsplit("/", 1)[-1] for l in open("/proc/self/maps") if "libmkl_" in l})))
"""
QEMU_X86 = "qemu-x86_64-static"


def mkl_libraries(env: dict[str, str], cpu_model: str = "Haswell") -> set[str]:
    """The MKL libraries loaded after one DGEMM on an emulated ``cpu_model``."""
    qemu = shutil.which(QEMU_X86)
    assert qemu is not None, "qemu-user-static (tools/system-packages.txt) provides qemu-x86_64-static"
    libs = str(wheel_libs("mkl"))
    result = run([qemu, "-cpu", cpu_model, sys.executable, "-c", _PROBE, libs],
                 {"LD_LIBRARY_PATH": libs, "MKL_THREADING_LAYER": "SEQUENTIAL", **env})  # fmt: skip
    loaded: list[str] = json.loads(result.stdout)
    return set(loaded)


def test_mkl_on_an_intel_avx2_cpu_takes_its_avx2_path() -> None:
    assert "libmkl_avx2.so.3" in mkl_libraries({})


def test_an_x86_64_v2_domain_keeps_mkl_on_its_sse4_2_path() -> None:
    node = preset("haswell")
    env = webhook_env(preset("x86-64-v2") & node, node, ["mklEnableInstructions"])
    assert env == {MKL_ENABLE_INSTRUCTIONS: "SSE4_2"}
    loaded = mkl_libraries(env)
    assert "libmkl_mc3.so.3" in loaded and "libmkl_avx2.so.3" not in loaded, loaded


def test_a_misspelt_level_is_ignored_by_mkl() -> None:
    """Why the spelling matters: MKL ignores a name it does not know and dispatches as it likes."""
    assert "libmkl_avx2.so.3" in mkl_libraries({MKL_ENABLE_INSTRUCTIONS: "SSE42"})
