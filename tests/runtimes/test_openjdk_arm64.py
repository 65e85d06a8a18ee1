"""OpenJDK 17 on arm64 (Debian bookworm's, under qemu-user) with the webhook's AArch64 JAVA_TOOL_OPTIONS.

A JVM start under qemu takes one to a few seconds, so the suite starts few: the flag inventory, the
everything-hidden domain, a Neoverse-N1 domain on a v9 CPU, and one misspelt flag.
"""

from __future__ import annotations

import re

from hwcap_operator.admission.fallbacks import JAVA_TOOL_OPTIONS
from hwcap_operator.features import features
from hwcap_operator.features.data_hotspot_arm64 import hotspot_arm64_covers, hotspot_arm64_flags
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.arm64 import arm64_node, java
from tests.runtimes.conftest import webhook_env
from tests.runtimes.sysroot import arm64_sysroot_packages

_FLAG = re.compile(r"^\s*\w+\s+(\w+)\s+=\s+(\S+)\s+\{[^}]*\}\s+\{([^}]*)\}", re.MULTILINE)
#: HotSpot's own feature names in "-Xlog:os+cpu" for the catalog's.
_HOTSPOT_NAMES = {"sve": "sve", "sve2": "sve2", "atomics": "lse", "aes": "aes", "sha2": "sha256", "crc32": "crc"}


def flags(env: dict[str, str]) -> tuple[dict[str, tuple[str, str]], str, str]:
    """(flag -> (value, origin)) with diagnostic flags listed, HotSpot's CPU line, and stderr."""
    result = java("max", ["-XX:+UnlockDiagnosticVMOptions", "-XX:+PrintFlagsFinal", "-Xlog:os+cpu=info", "-version"],
                  env)  # fmt: skip
    cpu = next(line for line in result.stdout.splitlines() if "CPU: total" in line)
    return {m[1]: (m[2], m[3]) for m in _FLAG.finditer(result.stdout)}, cpu, result.stderr


def test_every_flag_exists_and_hotspot_sees_the_models_features() -> None:
    assert arm64_sysroot_packages()["openjdk-17-jre-headless"].startswith("17.")
    values, cpu, _ = flags({})
    assert hotspot_arm64_flags() - set(values) == set(), "a flag the webhook may write is not in this JDK"
    node = arm64_node("max")
    listed = {f.strip() for f in cpu.split(",")[1:]}
    for name, spelled in _HOTSPOT_NAMES.items():
        assert (spelled in listed) == (name in node), (name, cpu)  # HotSpot reads AT_HWCAP as Go does
    assert values["UseSVE"][0] == "2" and values["UseLSE"][0] == "true" and values["UseAESCTRIntrinsics"][0] == "true"


def test_hiding_everything_hotspot_can_hide_turns_every_flag_off() -> None:
    node = arm64_node("max")
    hidden = [f for f in features("arm64") if hotspot_arm64_covers(f.name)]
    env = webhook_env(node - FeatureMask.from_features("arm64", hidden), node, ["javaToolOptions"])
    values, _, stderr = flags(env)
    assert f"Picked up {JAVA_TOOL_OPTIONS}: {env[JAVA_TOOL_OPTIONS]}" in stderr
    assert "warning" not in stderr.lower(), stderr
    assert values["UseSVE"] == ("0", "environment")
    for flag in hotspot_arm64_flags() - {"UseSVE", "UnlockDiagnosticVMOptions"}:
        assert values[flag] == ("false", "environment"), (flag, values[flag])
    for intrinsic in ("UseAESIntrinsics", "UseSHA1Intrinsics", "UseSHA256Intrinsics"):  # HotSpot follows them
        assert values[intrinsic][0] == "false", intrinsic


def test_a_neoverse_n1_domain_keeps_lse_aes_and_crc32_on_a_v9_cpu() -> None:
    node = arm64_node("max")
    env = webhook_env(preset("neoverse-n1") & node, node, ["javaToolOptions"])
    values, _, stderr = flags(env)
    assert values["UseSVE"] == ("0", "environment") and values["UseSHA"] == ("false", "environment"), stderr
    for kept in ("UseLSE", "UseAES", "UseCRC32", "UseAESCTRIntrinsics", "UseGHASHIntrinsics"):
        assert values[kept] == ("true", "default"), (kept, values[kept])


def test_a_misspelt_flag_stops_the_jvm() -> None:
    good = java("max", ["-version"], {JAVA_TOOL_OPTIONS: "-XX:-UseLSE"}, check=False)
    bad = java("max", ["-version"], {JAVA_TOOL_OPTIONS: "-XX:-UseLSEAtomics"}, check=False)
    assert good.returncode == 0, good.stderr
    assert bad.returncode != 0 and "Unrecognized VM option" in bad.stderr
