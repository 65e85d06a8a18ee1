"""OpenSSL 3.0 on arm64 (Debian bookworm's, under qemu-user) with the webhook's OPENSSL_armcap.

Three facts are checked, each by OpenSSL itself: its capability bits mean the catalog features the data module
says (its own detection on qemu's CPU models against AT_HWCAP as Go reads it), the word the webhook writes is
the word OpenSSL then uses (``openssl info -cpusettings`` echoes the variable it read), and the code path
changes (qemu's translation log shows ``sha256h``/``aese`` executed without the knob and never with it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hwcap_operator.admission.fallbacks import OPENSSL_ARMCAP
from hwcap_operator.features.data_openssl_armcap import ARMCAP_BITS, OPENSSL_3_0_DETECTS, armcap_word
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.arm64 import arm64_node, executed_instructions, openssl_armcap
from tests.runtimes.conftest import webhook_env
from tests.runtimes.sysroot import arm64_sysroot_packages

_AES = ["usr/bin/openssl", "enc", "-aes-128-ctr", "-K", "00" * 16, "-iv", "00" * 16, "-in", "/etc/hostname",
        "-out", "/dev/null"]  # fmt: skip
_SHA256 = ["usr/bin/openssl", "dgst", "-sha256", "/etc/hostname"]
#: feature -> (an openssl command that uses it, the instruction that shows it ran)
_CODE_PATHS = {
    "aes": (_AES, "aese"),
    "sha1": (["usr/bin/openssl", "dgst", "-sha1", "/etc/hostname"], "sha1c"),
    "sha2": (_SHA256, "sha256h"),
}  # (OpenSSL 3.0's SHA-512 never runs sha512h, whatever the word: its bit is checked by detection only)


def test_the_sysroot_runs_openssl_3_0() -> None:
    assert arm64_sysroot_packages()["openssl"].startswith("3.0.")


@pytest.mark.parametrize("model", ["cortex-a53", "neoverse-n1", "max"])
def test_openssl_bits_are_the_catalog_features(model: str) -> None:
    """Without the variable OpenSSL sets exactly the bits of the features the model's AT_HWCAP has."""
    node = arm64_node(model)
    word, line = openssl_armcap(model, {})
    assert "env:" not in line
    assert word == armcap_word(set(node.names()) & OPENSSL_3_0_DETECTS), (line, node.names())


def test_the_webhooks_word_is_what_openssl_uses_and_its_aes_and_sha_code_goes(tmp_path: Path) -> None:
    node = arm64_node("max")
    mask = preset("armv8.0") & node  # hides aes, pmull, sha1, sha2, sha512, sha3, cpuid, ... from a v9 CPU
    env = webhook_env(mask, node, ["opensslArmcap"])
    assert set(env) == {OPENSSL_ARMCAP}
    assert int(env[OPENSSL_ARMCAP], 16) == 1 << ARMCAP_BITS["asimd"]  # only NEON is left in the mask
    word, line = openssl_armcap("max", env)
    assert word == 1 << ARMCAP_BITS["asimd"] and line.endswith(f" env:{env[OPENSSL_ARMCAP]}"), line
    before = executed_instructions("max", _AES, {}, tmp_path / "aes-before.log")
    after = executed_instructions("max", _AES, env, tmp_path / "aes-after.log")
    assert "aese" in before and "aese" not in after
    before = executed_instructions("max", _SHA256, {}, tmp_path / "sha-before.log")
    after = executed_instructions("max", _SHA256, env, tmp_path / "sha-after.log")
    assert "sha256h" in before and "sha256h" not in after


@pytest.mark.parametrize("feature", sorted(_CODE_PATHS))
def test_hiding_one_feature_takes_exactly_its_instructions_away(feature: str, tmp_path: Path) -> None:
    """The bit the webhook clears for a feature is the one OpenSSL's code for that feature tests."""
    node = arm64_node("max")
    mask = node - FeatureMask.from_names("arm64", [feature])
    env = webhook_env(mask, node, ["opensslArmcap"])
    for name, (argv, mnemonic) in _CODE_PATHS.items():
        used = executed_instructions("max", argv, env, tmp_path / f"{name}.log")
        assert (mnemonic in used) == (name != feature), (name, env)


def test_a_neoverse_n1_domain_keeps_openssls_aes_and_sha256() -> None:
    node = arm64_node("max")
    mask = preset("neoverse-n1") & node
    env = webhook_env(mask, node, ["opensslArmcap"])
    word, _ = openssl_armcap("max", env)
    assert word == armcap_word(mask.names())
    for kept in ("asimd", "aes", "pmull", "sha1", "sha2"):
        assert word >> ARMCAP_BITS[kept] & 1, kept
    for dropped in ("sha512", "sha3", "sve", "sve2"):
        assert dropped in node and not word >> ARMCAP_BITS[dropped] & 1, dropped
