"""Node levelling in the conformance matrix: on an unpatched (``none``) arm64 guest, boot again with the boot
parameters ``plan_leveling`` computes and compare AT_HWCAP/AT_HWCAP2 and the MRS-read ID registers with the
prediction (docs/kernel.md#idreg-override). One ``idreg-leveling`` cell per such run.

The node is what the guest reported without parameters; the mask that node intersected with the Graviton2 dump,
so every feature above it is one a real cluster would have to hide.
"""

from __future__ import annotations

from functools import cache

from hwcap_operator.cli.inputs import read_feature_file
from hwcap_operator.domain.leveling import LevelingPlan, plan_leveling
from hwcap_operator.features.data_idreg_overrides import FIELDS
from hwcap_operator.mask import FeatureMask

from . import build as kbuild
from .guest import BootResult, boot, initramfs_for, model_by_key
from .paths import REPO_ROOT

SCENARIO = "idreg-leveling"
TARGET = REPO_ROOT / "tests" / "data" / "profiles" / "arm64-aws-graviton2-neoverse-n1.txt"


@cache
def boot_with(model: str, cmdline: str) -> BootResult:
    """One boot of the unpatched arm64 kernel on ``model`` with ``cmdline`` appended, no scenarios (cached)."""
    kernel = kbuild.build("arm64", "none")
    return boot(model_by_key(model), kernel.image, initramfs_for("arm64", {"index": b"\n"}), extra_cmdline=cmdline)


def words(result: BootResult) -> tuple[int, int]:
    """AT_HWCAP, AT_HWCAP2 on /init's stack."""
    [init] = [r for r in result.records
              if r.get("scn") == "baseline" and r.get("op") == "observe" and r.get("proc") == "init"]  # fmt: skip
    return int(init["stack"][0], 16), int(init["stack"][1], 16)


def idregs(result: BootResult) -> dict[str, int]:
    """The ID registers /init read with MRS (absent without HWCAP_CPUID)."""
    found = [r for r in result.records if r.get("event") == "idregs"]
    return {k: int(v, 16) for k, v in found[0].items() if k.startswith("id_aa64")} if found else {}


def plan_for(base: BootResult, *, allow_hiding_security: bool = True) -> LevelingPlan:
    """The plan for the node ``base`` shows, against that node intersected with the Graviton2 dump."""
    node = FeatureMask.from_words("arm64", *words(base))
    mask = node & read_feature_file(str(TARGET)).mask
    release = kbuild.source_version()
    return plan_leveling(node, mask, release, allow_hiding_security=allow_hiding_security)


def mismatches(base: BootResult, plan: LevelingPlan, levelled: BootResult) -> list[str]:
    """Where the levelled guest differs from the prediction (empty: exactly as predicted)."""
    problems: list[str] = []
    removed = plan.removed_mask.hwcap
    before, after = words(base), words(levelled)
    predicted = (before[0] & ~removed[0], before[1] & ~removed[1])
    if after != predicted:
        problems.append(f"`{plan.cmdline}`: AT_HWCAP* predicted {[hex(w) for w in predicted]} "
                        f"guest {[hex(w) for w in after]}")  # fmt: skip
    regs_before, regs_after = idregs(base), idregs(levelled)
    if not regs_before or not regs_after:
        return [*problems, "no MRS reading of the ID registers (HWCAP_CPUID missing?)"]
    lowered: set[str] = set()
    for key, value in plan.settings:
        f = FIELDS[key]
        seen = f.value_in(regs_after[f.register])
        if seen != value:
            problems.append(f"{key}: set to {value}, MRS reads {seen}")
        if f.value_in(regs_before[f.register]) > value:
            lowered.add(key)
    # Each removed HWCAP was reported through at least one field the parameters lowered (PAuth: a CPU implements
    # one of APA/API/APA3; the others read 0 before and after).
    for name in plan.removed:
        sources = {k for k, v in plan.settings if name in FIELDS[k].removed_by(v)}
        if not sources & lowered:
            problems.append(f"{name} removed but none of {sorted(sources)} read higher before")
    if ("id_aa64pfr0.sve", 0) in plan.settings and regs_after["id_aa64zfr0"] != 0:
        problems.append(f"id_aa64pfr0.sve=0 but ID_AA64ZFR0 reads {regs_after['id_aa64zfr0']:#x}")
    return problems


def leveling_cell(variant: str, model: str, base: BootResult) -> tuple[str, list[str]] | None:
    """(scenario name, mismatches) for an unpatched arm64 run; None where there is nothing to level."""
    if variant != "none" or not model.startswith("arm64/"):
        return None
    plan = plan_for(base)
    if not plan.parameters:
        return None
    return SCENARIO, mismatches(base, plan, boot_with(model.split("/", 1)[1], plan.cmdline))
