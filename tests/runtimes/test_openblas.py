"""OpenBLAS 0.3.31 (numpy's bundled scipy-openblas, DYNAMIC_ARCH) under the webhook's OPENBLAS_CORETYPE.

The probe loads the library in a fresh interpreter (the variable is read when it loads) and prints
``openblas_get_corename()``: the kernel family OpenBLAS runs. With OPENBLAS_VERBOSE=2 it also says on stderr
when it does not know a forced name ("Core not found").
"""

from __future__ import annotations

import sys

import pytest

from hwcap_operator.admission.fallbacks import OPENBLAS_CORETYPE
from hwcap_operator.features.data_openblas import OPENBLAS_CORETYPES
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.conftest import EnvFor
from tests.runtimes.probes import run
from tests.runtimes.wheels import numpy_openblas

_PROBE = """import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
get = getattr(lib, "scipy_openblas_get_corename64_", None) or lib.openblas_get_corename
get.restype = ctypes.c_char_p
print(get().decode())
"""


def corename(env: dict[str, str]) -> tuple[str, str]:
    """(OpenBLAS's core name, its stderr with OPENBLAS_VERBOSE=2)."""
    result = run([sys.executable, "-c", _PROBE, str(numpy_openblas())], {"OPENBLAS_VERBOSE": "2", **env})
    return result.stdout.strip(), result.stderr


@pytest.mark.parametrize("coretype", [name for name, _ in OPENBLAS_CORETYPES])
def test_every_core_type_the_webhook_may_force_is_one_openblas_knows(coretype: str) -> None:
    _, stderr = corename({OPENBLAS_CORETYPE: coretype})
    assert "Core not found" not in stderr, stderr


def test_a_misspelt_core_type_is_reported_and_ignored() -> None:
    name, stderr = corename({OPENBLAS_CORETYPE: "Haswel"})
    assert "Core not found: Haswel" in stderr and name == corename({})[0]


def test_demo_domain_x86_64_v3_runs_haswell_kernels(machine: FeatureMask, env_for: EnvFor) -> None:
    assert corename({})[0] == "SkylakeX", "this suite needs an AVX-512 machine to hide something from OpenBLAS"
    env = env_for(preset("x86-64-v3") & machine)
    assert env[OPENBLAS_CORETYPE] == "Haswell" and corename(env)[0] == "Haswell"


def test_an_x86_64_v2_domain_runs_nehalem_kernels(machine: FeatureMask, env_for: EnvFor) -> None:
    env = env_for(preset("x86-64-v2") & machine)
    assert corename(env)[0] == "Nehalem"
