"""Node levelling by arm64 ID-register overrides, on the real dumps of tests/data/profiles.

Expected values come from the dump text (the Features line) and the override table's data
(FIELDS / TABLES, read from idreg-override.c and cpufeature.c), never from plan_leveling's own output.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from hwcap_operator.cli.inputs import read_feature_file
from hwcap_operator.domain.leveling import LevelingError, plan_leveling, table_for
from hwcap_operator.features.data_idreg_overrides import FIELDS
from hwcap_operator.mask import FeatureMask

PROFILES = Path(__file__).resolve().parents[1] / "data" / "profiles"
G2 = "arm64-aws-graviton2-neoverse-n1.txt"
G3 = "arm64-aws-graviton3-neoverse-v1.txt"
G4 = "arm64-aws-graviton4-neoverse-v2.txt"
M1 = "arm64-apple-m1-asahi.txt"
#: The arm64 dumps that are cpuinfo text (a Features line); the two HWCAP-table files are not.
ARM64_DUMPS = sorted(p.name for p in PROFILES.glob("arm64-*.txt")
                     if any(ln.lower().startswith("features") for ln in p.read_text().splitlines()))  # fmt: skip


def dump_words(name: str) -> set[str]:
    """The Features line of a dump, as the set of words it lists (read straight from the text)."""
    for line in (PROFILES / name).read_text().splitlines():
        if line.lower().startswith("features"):
            return set(line.split(":", 1)[1].split())
    raise AssertionError(f"{name}: no Features line")


def mask_of(name: str) -> FeatureMask:
    return read_feature_file(str(PROFILES / name)).mask


def test_graviton4_to_graviton2_without_security_drops_the_sve_family_only() -> None:
    excess = dump_words(G4) - dump_words(G2)
    sve_family = FIELDS["id_aa64pfr0.sve"].removed_by(0)
    plan = plan_leveling(mask_of(G4), mask_of(G2), "6.12")
    assert plan.parameters == ("arm64.nosve",)
    assert set(plan.removed) == excess & sve_family
    assert set(plan.blocked_security) == {"bti", "paca", "pacg"} & excess
    assert set(plan.remaining) == excess - sve_family
    assert not plan.levelled
    assert "id_aa64zfr0 (every field 0) when set to 0" in plan.id_register_effects


def test_allowing_security_features_adds_nobti_and_nopauth() -> None:
    excess = dump_words(G4) - dump_words(G2)
    plan = plan_leveling(mask_of(G4), mask_of(G2), "6.12", allow_hiding_security=True)
    assert set(plan.parameters) == {"arm64.nosve", "arm64.nobti", "arm64.nopauth"}
    assert {"bti", "paca", "pacg"} <= set(plan.removed)
    assert plan.blocked_security == ()
    # What stays has no override on 6.12 at all (i8mm, bf16, ... are fixed at boot).
    assert set(plan.no_override) == excess - set(plan.removed)
    assert not set(plan.no_override) & {"sve", "bti", "paca", "pacg", "mops", "mte", "sme"}


def test_on_6_1_nosve_is_not_used_because_it_also_drops_sme() -> None:
    plan = plan_leveling(mask_of(G4), mask_of(G2), "6.1")
    assert plan.table == "6.1"
    assert plan.parameters == ("id_aa64pfr0.sve=0",)


def test_a_mask_that_keeps_sve_keeps_sve2_above_it_on_every_release() -> None:
    """SVE2/SVEAES are ID_AA64ZFR0 fields, which no release lets the command line lower one by one."""
    for release in ("6.1", "6.6", "6.12"):
        plan = plan_leveling(mask_of(G4), mask_of(G3), release)
        assert "id_aa64pfr0.sve=0" not in {f"{k}={v}" for k, v in plan.settings}
        assert {"sve2", "sveaes"} <= set(plan.no_override)


def test_apple_m1_to_graviton2_needs_nopauth_and_only_with_permission() -> None:
    excess = dump_words(M1) - dump_words(G2)
    assert {"paca", "pacg"} <= excess
    refused = plan_leveling(mask_of(M1), mask_of(G2))
    assert refused.parameters == ()
    assert {"paca", "pacg"} <= set(refused.blocked_security)
    allowed = plan_leveling(mask_of(M1), mask_of(G2), allow_hiding_security=True)
    assert "arm64.nopauth" in allowed.parameters


def test_generic_auth_kept_means_only_the_three_address_auth_fields_are_lowered() -> None:
    node = FeatureMask.from_names("arm64", ["fp", "asimd", "paca", "pacg"])
    mask = FeatureMask.from_names("arm64", ["fp", "asimd", "pacg"])
    plan = plan_leveling(node, mask, allow_hiding_security=True)
    assert set(plan.parameters) == {"id_aa64isar1.api=0", "id_aa64isar1.apa=0", "id_aa64isar2.apa3=0"}
    assert plan.removed == ("paca",)
    assert plan.levelled


def test_mte3_is_lowered_to_mte2_when_the_mask_keeps_mte() -> None:
    node = FeatureMask.from_names("arm64", ["fp", "mte", "mte3"])
    mask = FeatureMask.from_names("arm64", ["fp", "mte"])
    assert plan_leveling(node, mask).blocked_security == ("mte3",)
    plan = plan_leveling(node, mask, allow_hiding_security=True)
    assert plan.parameters == ("id_aa64pfr1.mte=2",)
    assert plan.removed == ("mte3",)


def test_smever_exists_from_6_6_on() -> None:
    node = FeatureMask.from_names("arm64", ["fp", "sme", "sme2", "sme2p1"])
    mask = FeatureMask.from_names("arm64", ["fp", "sme", "sme2"])
    assert plan_leveling(node, mask, "6.12").parameters == ("id_aa64smfr0.smever=1",)
    old = plan_leveling(node, mask, "6.1")
    assert old.parameters == () and old.no_override == ("sme2p1",)


def test_mops_needs_6_6() -> None:
    node = FeatureMask.from_names("arm64", ["fp", "mops"])
    mask = FeatureMask.from_names("arm64", ["fp"])
    assert plan_leveling(node, mask, "6.6").parameters == ("arm64.nomops",)
    assert plan_leveling(node, mask, "6.1").no_override == ("mops",)


@pytest.mark.parametrize(("node", "mask"), list(itertools.permutations(ARM64_DUMPS, 2)))
def test_never_removes_what_the_mask_keeps_and_accounts_for_every_excess_feature(node: str, mask: str) -> None:
    plan = plan_leveling(mask_of(node), mask_of(mask), allow_hiding_security=True)
    node_words, mask_words = dump_words(node), dump_words(mask)
    assert not set(plan.removed) & mask_words
    assert set(plan.removed) <= node_words
    assert set(plan.removed) | set(plan.remaining) == node_words - mask_words
    assert plan.levelled == (not set(plan.remaining))


def test_a_node_already_at_the_mask_needs_nothing() -> None:
    plan = plan_leveling(mask_of(G2), mask_of(G2))
    assert plan.parameters == () and plan.removed == () and plan.levelled


RELEASES = [("6.12.48+deb13-arm64", "6.12"), ("v6.6", "6.6"), ("6.9.0", "6.6"), ("6.1.0-28-arm64", "6.1"),
            ("6.17", "6.12")]  # fmt: skip


@pytest.mark.parametrize(("release", "table"), RELEASES)
def test_a_release_gets_the_newest_table_not_newer_than_it(release: str, table: str) -> None:
    assert table_for(release).name == table


@pytest.mark.parametrize("release", ["5.15", "banana", ""])
def test_unknown_or_too_old_release_is_a_clear_error(release: str) -> None:
    with pytest.raises(LevelingError, match="kernel release"):
        table_for(release)


def test_x86_is_refused_with_the_clearcpuid_fact() -> None:
    amd = read_feature_file(str(PROFILES / "x86_64-amd-zen2-rome-epyc7742.txt")).mask
    with pytest.raises(LevelingError, match="NOT from the CPUID instruction"):
        plan_leveling(amd, amd)
