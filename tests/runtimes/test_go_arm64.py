"""Go on arm64, run under qemu-user (qemu-aarch64-static fills AT_HWCAP from the CPU model it emulates).

Two facts are checked here rather than assumed: Go's feature readers on linux/arm64 follow AT_HWCAP (so a
mask that reaches the process hides features from Go), and the GODEBUG keys the webhook writes for arm64
(for kernels where the mask does not reach past the first exec) switch those features off without warnings.
"""

from __future__ import annotations

from typing import Any

import pytest

from hwcap_operator import features
from hwcap_operator.features.data_godebug import GO_RUNTIME_KEYS_ARM64, GODEBUG_KEYS_EVERYWHERE, XSYS_CPU_KEYS_ARM64
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.arm64 import arm64_node
from tests.runtimes.conftest import webhook_env
from tests.runtimes.probes import go_report_arm64


@pytest.fixture(scope="module")
def neoverse_n1() -> dict[str, Any]:
    return go_report_arm64("neoverse-n1", {})[0]


def test_go_on_arm64_takes_its_features_from_at_hwcap(neoverse_n1: dict[str, Any]) -> None:
    """Same binary, different emulated CPUs: x/sys/cpu reports exactly what each model's HWCAPs say."""
    a53, _ = go_report_arm64("cortex-a53", {})
    biggest, _ = go_report_arm64("max", {})
    assert neoverse_n1["goarch"] == "arm64"
    assert a53["xsysArm64"]["atomics"] is False and neoverse_n1["xsysArm64"]["atomics"] is True  # v8.0 vs v8.2
    assert neoverse_n1["xsysArm64"]["sve"] is False and biggest["xsysArm64"]["sve"] is True
    assert set(preset("neoverse-n1").names()) - {"evtstrm"} <= set(arm64_node("neoverse-n1").names())


def test_the_webhooks_arm64_godebug_switches_features_off_quietly(neoverse_n1: dict[str, Any]) -> None:
    node = arm64_node("neoverse-n1")
    env = webhook_env(preset("armv8.0") & node, node, ["goDebug"])
    keys = {k.removeprefix("cpu.").removesuffix("=off") for k in env["GODEBUG"].split(",")}
    assert keys == {"aes", "pmull", "sha1", "sha2", "crc32", "atomics", "cpuid"} & GODEBUG_KEYS_EVERYWHERE["arm64"]
    report, stderr = go_report_arm64("neoverse-n1", env)
    assert stderr == "", stderr
    for key in keys:
        assert report["xsysArm64"][key] is False, key
    assert report["tls13Suite"] == "TLS_CHACHA20_POLY1305_SHA256"  # internal/cpu honoured cpu.aes=off too


@pytest.mark.parametrize("key", sorted(XSYS_CPU_KEYS_ARM64 | set().union(*GO_RUNTIME_KEYS_ARM64.values())))
def test_arm64_key_tables_match_the_real_go(key: str) -> None:
    _, stderr = go_report_arm64("max", {"GODEBUG": f"cpu.{key}=off"})
    runtime_knows = key in GO_RUNTIME_KEYS_ARM64["go1.26"]
    assert (f'GODEBUG: unknown cpu feature "{key}"' not in stderr) == runtime_knows, stderr
    # one x/sys copy parses GODEBUG here: the standard library's vendored copy is linked on amd64 only
    xsys_unaware = int(key not in XSYS_CPU_KEYS_ARM64)
    assert stderr.count(f'GODEBUG sys/cpu: unknown cpu feature "{key}"') == xsys_unaware, stderr


def test_every_arm64_key_the_webhook_writes_switches_its_feature_off_on_a_v9_cpu() -> None:
    """On ``-cpu max`` every feature with a key every Go consumer knows is present: hiding them all from the
    mask gives one GODEBUG that x/sys/cpu follows field by field, without a warning."""
    node = arm64_node("max")
    spelled = [f for f in features.features("arm64") if f.godebug in GODEBUG_KEYS_EVERYWHERE["arm64"]]
    assert {f.name for f in spelled} <= set(node.names()), "qemu's max model lacks a feature Go has a key for"
    env = webhook_env(node - FeatureMask.from_features("arm64", spelled), node, ["goDebug"])
    keys = {k.removeprefix("cpu.").removesuffix("=off") for k in env["GODEBUG"].split(",")}
    assert keys == {f.godebug for f in spelled}
    report, stderr = go_report_arm64("max", env)
    assert stderr == "", stderr
    assert [k for k in keys if report["xsysArm64"][k] is not False] == []
