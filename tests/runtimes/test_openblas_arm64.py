"""OpenBLAS 0.3.21 on arm64 (Debian bookworm's libopenblas0-pthread, DYNAMIC_ARCH, under qemu-user).

On arm64 OpenBLAS chooses its kernels from MIDR, which names the core whatever the HWCAPs say: the mask
cannot steer it, OPENBLAS_CORETYPE can. A cross-compiled probe prints ``openblas_get_corename()``.
"""

from __future__ import annotations

import pytest

from hwcap_operator.admission.fallbacks import OPENBLAS_CORETYPE
from hwcap_operator.features.data_openblas import NOT_WRITTEN, OPENBLAS_CORETYPES_ARM64
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.arm64 import arm64_node, openblas_corename
from tests.runtimes.conftest import webhook_env
from tests.runtimes.sysroot import arm64_sysroot_packages


def test_openblas_picks_its_kernels_from_the_core_not_the_hwcaps() -> None:
    assert arm64_sysroot_packages()["libopenblas0-pthread"].startswith("0.3.")
    assert openblas_corename("cortex-a53", {})[0] == "cortexa53"
    assert openblas_corename("neoverse-n1", {})[0] == "neoversen1"
    assert openblas_corename("max", {})[0] == "armv8"  # qemu's max has no Arm part number OpenBLAS knows


@pytest.mark.parametrize("coretype", [name for name, _ in OPENBLAS_CORETYPES_ARM64 if name not in NOT_WRITTEN])
def test_every_core_type_the_webhook_may_force_is_one_openblas_knows(coretype: str) -> None:
    name, stderr = openblas_corename("max", {OPENBLAS_CORETYPE: coretype})
    assert "Core not found" not in stderr and name == coretype.lower(), stderr


def test_an_armv8_0_domain_takes_a_neoverse_n1_off_its_n1_kernels() -> None:
    node = arm64_node("neoverse-n1")
    env = webhook_env(preset("armv8.0") & node, node, ["openblasCoretype"])
    assert env == {OPENBLAS_CORETYPE: "ARMV8"}
    assert openblas_corename("neoverse-n1", env)[0] == "armv8"


def test_a_domain_without_sve_forces_the_highest_family_it_keeps() -> None:
    node = arm64_node("max")
    env = webhook_env(node - FeatureMask.from_names("arm64", ["sve", "sve2"]), node, ["openblasCoretype"])
    assert env == {OPENBLAS_CORETYPE: "NEOVERSEN1"}
    assert openblas_corename("max", env)[0] == "neoversen1"


def test_a_misspelt_core_type_is_reported_and_drops_to_generic_armv8() -> None:
    """Unlike on x86, arm64 OpenBLAS does not detect after an unknown name: it takes its generic kernels."""
    name, stderr = openblas_corename("neoverse-n1", {OPENBLAS_CORETYPE: "NEOVERSE-N1"})
    assert "Core not found: NEOVERSE-N1" in stderr and name == "armv8"
