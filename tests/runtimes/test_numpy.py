"""numpy under the webhook's NPY_DISABLE_CPU_FEATURES: the dispatch targets numpy itself reports usable.

numpy runs in a fresh interpreter (the variable is read once, at import) and prints
``numpy._core._multiarray_umath.__cpu_features__``: for each target, whether this process may dispatch to it.
"""

from __future__ import annotations

import json
import sys

import numpy

from hwcap_operator.admission.fallbacks import NPY_DISABLE_CPU_FEATURES, merge_numpy_disable
from hwcap_operator.features.data_numpy import NUMPY_TARGETS
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.conftest import EnvFor
from tests.runtimes.probes import run

_REPORT = "import json; from numpy._core import _multiarray_umath as m; print(json.dumps(m.__cpu_features__))"
#: The numpy >= 2.4 targets above its X86_V2 baseline (the version pinned in pyproject.toml is 2.4.x).
NEW_TARGETS = ("X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR")


def numpy_targets(env: dict[str, str]) -> dict[str, bool]:
    result = run([sys.executable, "-c", _REPORT], env)
    assert result.stderr == "", result.stderr
    features: dict[str, bool] = json.loads(result.stdout)
    return features


def test_the_pinned_numpy_dispatches_by_level() -> None:
    assert numpy.__version__.startswith("2.4."), numpy.__version__
    from numpy._core import _multiarray_umath as m

    assert m.__cpu_baseline__ == ["X86_V2"]
    assert set(NEW_TARGETS) >= set(m.__cpu_dispatch__) and set(NEW_TARGETS) <= set(NUMPY_TARGETS)


def test_demo_domain_x86_64_v3_keeps_numpy_off_avx512(machine: FeatureMask, env_for: EnvFor) -> None:
    assert "avx512f" in machine, "this suite needs an AVX-512 machine to hide something from numpy"
    before = numpy_targets({})
    assert before["X86_V4"] and before["AVX512_ICL"], before
    env = env_for(preset("x86-64-v3") & machine)
    after = numpy_targets(env)
    assert not after["X86_V4"] and not after["AVX512_ICL"] and not after["AVX512_SPR"], env
    assert after["X86_V3"], "AVX2 is in the domain: numpy keeps its v3 loops"


def test_hiding_avx2_turns_every_target_above_it_off(machine: FeatureMask, env_for: EnvFor) -> None:
    env = env_for(preset("x86-64-v2") & machine)
    after = numpy_targets(env)
    assert not any(after[t] for t in NEW_TARGETS), env[NPY_DISABLE_CPU_FEATURES]
    assert after["X86_V2"], "the baseline is never named (naming it stops numpy from importing)"


def test_a_users_own_list_is_kept() -> None:
    merged = merge_numpy_disable("AVX512_SPR,X86_V4", ["X86_V4", "AVX512_ICL"])
    assert merged == "AVX512_SPR X86_V4 AVX512_ICL"
    after = numpy_targets({NPY_DISABLE_CPU_FEATURES: merged or ""})
    assert not after["AVX512_SPR"] and not after["X86_V4"] and not after["AVX512_ICL"]
