"""Go under the webhook's GODEBUG: what golang.org/x/sys/cpu and the runtime's internal/cpu decide.

The probe is built with the installed Go (its internal/cpu is that release's) and x/sys pinned in
goprobe/go.mod; both print a warning on stderr for every cpu key they do not know.
"""

from __future__ import annotations

from typing import Any

import pytest

from hwcap_operator import features
from hwcap_operator.features.data_godebug import (
    GO_RUNTIME_KEYS_AMD64,
    GODEBUG_KEYS_EVERYWHERE,
    XSYS_CPU_KEYS_AMD64,
    XSYS_CPU_KEYS_AMD64_VENDORED,
)
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.conftest import EnvFor, hide, machine_has
from tests.runtimes.probes import go_report

SPELLED = [f for f in features.features("amd64") if f.godebug]
EMITTED = [f for f in SPELLED if f.godebug in GODEBUG_KEYS_EVERYWHERE["amd64"]]
VERIFIABLE = [f for f in EMITTED if machine_has(f)]
Hidden = tuple[dict[str, str], dict[str, Any], str]
ALL_KEYS = sorted(set().union(*GO_RUNTIME_KEYS_AMD64.values()) | XSYS_CPU_KEYS_AMD64)


def _release(version: str) -> str:
    return ".".join(version.split(".")[:2])


@pytest.fixture(scope="module")
def everything_hidden(machine: FeatureMask, env_for: EnvFor) -> Hidden:
    env = env_for(hide(machine, SPELLED))
    report, stderr = go_report(env)
    return env, report, stderr


@pytest.mark.parametrize("feature", VERIFIABLE, ids=lambda f: f.name)
def test_each_go_key_switches_x_sys_cpu_off(feature: features.Feature, everything_hidden: Hidden) -> None:
    env, report, _ = everything_hidden
    assert go_report({})[0]["xsys"][feature.godebug] is True, f"{feature.name}: x/sys/cpu does not see it at all"
    assert report["xsys"][feature.godebug] is False, f"{env['GODEBUG']}: x/sys/cpu still has {feature.godebug}"


def test_the_webhooks_godebug_makes_no_go_program_complain(everything_hidden: Hidden) -> None:
    env, _, stderr = everything_hidden
    assert env["GODEBUG"].count("cpu.") == len({f.godebug for f in EMITTED if machine_has(f)})
    assert stderr == "", f"GODEBUG={env['GODEBUG']} made Go print:\n{stderr}"


def test_hiding_aes_moves_go_tls_to_chacha20(machine: FeatureMask, env_for: EnvFor) -> None:
    """internal/cpu honours cpu.aes=off: the TLS client stops preferring AES-GCM."""
    assert go_report({})[0]["tls13Suite"] == "TLS_AES_128_GCM_SHA256"
    env = env_for(hide(machine, [features.lookup("amd64", "aes")]))
    assert env["GODEBUG"] == "cpu.aes=off"
    assert go_report(env)[0]["tls13Suite"] == "TLS_CHACHA20_POLY1305_SHA256"


@pytest.mark.parametrize("key", ALL_KEYS)
def test_key_tables_match_the_real_go(key: str) -> None:
    """The data the webhook filters by: a key warns exactly where the tables say it is unknown."""
    report, stderr = go_report({"GODEBUG": f"cpu.{key}=off"})
    runtime_knows = key in GO_RUNTIME_KEYS_AMD64[_release(str(report["goVersion"]))]
    assert (f'GODEBUG: unknown cpu feature "{key}"' not in stderr) == runtime_knows, stderr
    # the probe links both x/sys/cpu copies: the module (pinned) and the one the standard library vendors
    xsys_unaware = (key not in XSYS_CPU_KEYS_AMD64) + (key not in XSYS_CPU_KEYS_AMD64_VENDORED)
    assert stderr.count(f'GODEBUG sys/cpu: unknown cpu feature "{key}"') == xsys_unaware, stderr


def test_demo_domain_x86_64_v3_keeps_aes_for_go(machine: FeatureMask, env_for: EnvFor) -> None:
    assert "avx512f" in machine, "this suite needs an AVX-512 machine to hide something from Go"
    env = env_for(preset("x86-64-v3") & machine)
    report, stderr = go_report(env)
    assert stderr == ""
    assert report["xsys"]["avx512f"] is False
    assert report["xsys"]["avx2"] is True
    assert report["xsys"]["aes"] is True and report["xsys"]["pclmulqdq"] is True
    assert report["tls13Suite"] == "TLS_AES_128_GCM_SHA256"
