"""OpenJDK HotSpot under the webhook's JAVA_TOOL_OPTIONS: the flag values it ends up with, and its CPU features."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from hwcap_operator import features
from hwcap_operator.admission.fallbacks import JAVA_TOOL_OPTIONS, merge_java_tool_options
from hwcap_operator.features.data_hotspot import BOOLEAN_FLAGS, hotspot_covers
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.conftest import EnvFor, hide
from tests.runtimes.probes import run

JAVA = shutil.which("java")
_FLAG = re.compile(r"^\s*\w+\s+(\w+)\s+=\s+(\S+)\s+\{[^}]*\}\s+\{([^}]*)\}", re.MULTILINE)


def hotspot(env: dict[str, str], diagnostic: bool = False) -> tuple[dict[str, tuple[str, str]], set[str], str]:
    """(flag -> (value, origin)) from -XX:+PrintFlagsFinal, HotSpot's CPU feature list, and stderr.

    Without ``diagnostic`` only product flags are listed: the only ones JAVA_TOOL_OPTIONS may set.
    """
    assert JAVA is not None, "OpenJDK is part of the machine image (openjdk-17)"
    unlock = ["-XX:+UnlockDiagnosticVMOptions"] if diagnostic else []
    flags = run([JAVA, *unlock, "-XX:+PrintFlagsFinal", "-version"], env)
    cpu = run([JAVA, "-Xlog:os+cpu=info", "-version"], env).stdout
    line = next(x for x in cpu.splitlines() if "CPU: total" in x)
    return ({m[1]: (m[2], m[3]) for m in _FLAG.finditer(flags.stdout)},
            {f.strip() for f in line.split(",")[1:]}, flags.stderr)  # fmt: skip


def test_every_flag_the_webhook_can_set_exists_in_this_jdk() -> None:
    """An unknown -XX flag stops the JVM: each one must be a real flag of the installed HotSpot."""
    known, _, _ = hotspot({})
    names = {f for flags in BOOLEAN_FLAGS.values() for f in flags} | {"UseAVX", "UseSSE"}
    assert names - set(known) == set()


def test_hiding_everything_hotspot_can_hide(machine: FeatureMask, env_for: EnvFor) -> None:
    spelled = [f for f in features.features("amd64") if hotspot_covers(f.name)]
    env = env_for(hide(machine, spelled))
    values, cpu, stderr = hotspot(env)
    assert f"Picked up {JAVA_TOOL_OPTIONS}: {env[JAVA_TOOL_OPTIONS]}" in stderr  # the price of the knob
    assert values["UseAVX"] == ("0", "environment") and values["UseSSE"] == ("2", "environment")
    for name, flags in BOOLEAN_FLAGS.items():
        if name in machine:
            for flag in flags:
                assert values[flag][0] == "false", (name, flag, values[flag])
    assert not {"avx", "avx2", "avx512f", "sse4.1", "ssse3"} & cpu, cpu
    diagnostic, _, _ = hotspot(env, diagnostic=True)
    assert diagnostic["UseAESIntrinsics"][0] == "false" and diagnostic["UseSHA256Intrinsics"][0] == "false"


def test_demo_domain_x86_64_v3_caps_avx_at_avx2(machine: FeatureMask, env_for: EnvFor) -> None:
    assert "avx512f" in machine, "this suite needs an AVX-512 machine to hide something from the JVM"
    before = hotspot({})
    assert before[0]["UseAVX"][0] == "3" and "avx512f" in before[1]
    env = env_for(preset("x86-64-v3") & machine)
    values, cpu, _ = hotspot(env)
    assert values["UseAVX"] == ("2", "environment")
    assert "avx512f" not in cpu and "avx2" in cpu
    assert values["UseAES"][0] == "true" and values["UseCLMUL"][0] == "true"  # v3 keeps AES-NI


def test_a_users_own_options_stay_and_the_mask_wins(machine: FeatureMask, env_for: EnvFor) -> None:
    env = env_for(preset("x86-64-v3") & machine)
    ours = env[JAVA_TOOL_OPTIONS]
    merged = merge_java_tool_options("-Xss2m -XX:UseAVX=3", ours.split())
    values, _, _ = hotspot({JAVA_TOOL_OPTIONS: merged or ""})
    assert values["UseAVX"][0] == "2" and values["ThreadStackSize"][0] == "2048"


@pytest.mark.parametrize("flag", ["-XX:UseAVX=2", "-XX:-UseSHA"])
def test_a_misspelt_flag_would_stop_every_jvm(flag: str) -> None:
    """Why the flag list is checked above: HotSpot refuses to start on an unknown -XX option."""
    assert JAVA is not None
    good = run([JAVA, "-version"], {JAVA_TOOL_OPTIONS: flag})
    assert good.returncode == 0
    bad = subprocess.run([JAVA, "-version"], env={JAVA_TOOL_OPTIONS: flag.replace("Use", "Uses")},
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode != 0 and "Unrecognized VM option" in bad.stderr
