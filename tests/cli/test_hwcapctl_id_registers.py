"""hwcapctl baseline notes the HWCAP_CPUID policy (docs/kernel.md#hwcap-cpuid): a domain publishing a common mask
that hides ID-register features clears cpuid. The count comes from the dumps' own Features lines."""

from __future__ import annotations

import json

from tests.cli.test_hwcapctl import hwcapctl
from tests.support.profiles import PROFILES_DIR, raw_feature_words

G2, G3, ALTRA = ("arm64-aws-graviton2-neoverse-n1.txt", "arm64-aws-graviton3-neoverse-v1.txt",
                 "arm64-ampere-altra-neoverse-n1.txt")  # fmt: skip


def baseline(*dumps: str) -> dict[str, object]:
    result = hwcapctl("baseline", "-o", "json", *(str(PROFILES_DIR / d) for d in dumps))
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_baseline_notes_that_a_domain_would_clear_cpuid_and_how_many_features_the_id_registers_show() -> None:
    g2, g3 = raw_feature_words(G2), raw_feature_words(G3)
    hidden = (g2 | g3) - (g2 & g3) - {"evtstrm", "cpuid"}
    document = baseline(G2, G3)
    mask, notes = document["mask"], document["notes"]
    assert isinstance(mask, dict) and "cpuid" in mask["features"] and isinstance(notes, list)
    [note] = notes
    assert "clears cpuid" in note and f"reveal {len(hidden)} hidden feature(s)" in note


def test_baseline_of_identical_machines_has_no_such_note() -> None:
    assert raw_feature_words(G2) == raw_feature_words(ALTRA)
    assert baseline(G2, ALTRA)["notes"] == []
