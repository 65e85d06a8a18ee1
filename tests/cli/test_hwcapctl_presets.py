"""hwcapctl explain preset:NAME for the Arm core presets: what QEMU's model has and what the preset leaves out."""

from __future__ import annotations

import json

from tests.cli.test_hwcapctl import hwcapctl
from tests.support.profiles import PROFILES_DIR, raw_feature_words


def test_explain_lists_arm_core_models_with_their_source() -> None:
    listing = json.loads(hwcapctl("explain", "presets", "-o", "json").stdout)["presets"]
    kinds = {p["name"]: p["kind"] for p in listing}
    for core in ("cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "cortex-a710", "neoverse-n1", "neoverse-v1",
                 "neoverse-n2", "a64fx"):  # fmt: skip
        assert f"QEMU model {core}" in kinds[core], kinds[core]
    assert "archspec" in kinds["neoverse-v2"] and "haswell" in kinds


def test_explain_n2_says_what_it_leaves_out_and_the_node_check_agrees() -> None:
    """The GitHub-runner N2 reports sveaes but not svepmull: the preset says so and leaves it out, and a node
    from that dump passes `hwcapctl check` against the preset."""
    out = hwcapctl("explain", "preset:neoverse-n2")
    assert out.returncode == 0, out.stderr
    assert "left out: svepmull:" in out.stdout and "00936783abf7" in out.stdout
    names = set(out.stdout.splitlines()[1].split())
    runner = PROFILES_DIR / "arm64-neoverse-n2-github-runner.txt"
    assert names <= set(raw_feature_words(runner.name)) and "svepmull" not in names
    assert hwcapctl("check", "--mask", "preset:neoverse-n2", "--node", str(runner)).returncode == 0
    doc = json.loads(hwcapctl("explain", "preset:neoverse-n2", "-o", "json").stdout)
    assert {e["feature"] for e in doc["leftOut"]} >= {"svepmull", "sm4", "mte"}
