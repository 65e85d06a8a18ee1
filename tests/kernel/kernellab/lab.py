"""The conformance matrix: boot every CPU model on every kernel variant, run the scenarios, compare with the model.

For each (kernel variant, CPU model) the guest runs all scenarios in one boot. The model is then configured
with what that guest's kernel reported at boot (the unmasked AT_HWCAP/AT_HWCAP2 of /init and of an AArch32
process) plus what the lab knows from the kernel's source (patch level, AT_VECTOR_SIZE, how PR_SET_MM_AUXV
copies), runs the same scenarios, and every step's result and every observation must agree.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hwcap_operator.auxv import HWCAP_TYPES, at_name, compat_layout, hwcap_entries, native_layout
from hwcap_operator.execmodel.kernel import Binary, KernelConfig, PatchLevel
from hwcap_operator.execmodel.scenarios import Observation, Scenario, Step, lab_scenarios
from hwcap_operator.execmodel.scenarios import run as run_model

from . import build as kbuild
from . import idregs
from .build import KernelBuild, LabError
from .guest import ALL_MODELS, BootResult, CpuModel, boot, initramfs_for
from .leveling import leveling_cell
from .scenariofile import scenario_files

#: Masks the scenarios apply (words kept), chosen to hide bits that exist on some models and not on others:
#: arm64 AT_HWCAP aes|pmull|sha1|sha2|crc32 (bits 3-7) and AT_HWCAP2 dcpodp|sve2 (bits 0-1); x86_64
#: AT_HWCAP mmx (bit 23) and AT_HWCAP2 fsgsbase (bit 1).
MASKS: dict[str, tuple[int, int]] = {
    "arm64": (0xFFFFFFFFFFFFFFFF & ~0xF8, 0xFFFFFFFFFFFFFFFF & ~0x3),
    "amd64": (0xFFFFFFFFFFFFFFFF & ~(1 << 23), 0xFFFFFFFFFFFFFFFF & ~0x2),
}
VARIANT_PATCH: dict[str, PatchLevel] = {"v5": "v5", "none": "none", "v5-lencopy": "v5"}


def init_step_scenario(arch: str) -> Scenario:
    """The operator's init step for real: /hwcap-exec applies the mask as uid 65534 and execs the entrypoint,
    which forks and execs a grandchild; both must see the mask (issue 7 item 4 without the cluster part)."""
    native = Binary("/probe")
    return Scenario(
        "hwcap-exec-entrypoint",
        "hwcap-exec --hwcap .. --hwcap2 .. -- entrypoint; the entrypoint's fork+exec grandchild",
        (
            Step("spawn", "init", binary=native, uid=65534),
            Step("hwcap_exec", "init", mask=MASKS[arch], binary=native),
            Step("observe", "init"),
            Step("fork", "init", child="c1"),
            Step("exec", "c1", binary=native),
            Step("observe", "c1"),
        ),
    )


def scenarios_for(model: CpuModel) -> list[Scenario]:
    """The issue's scenarios for this model (the compat child only where the CPU has a 32-bit EL0), plus the
    real init-step binary, plus (arm64) the ID registers read under masks with and without HWCAP_CPUID."""
    extra = idregs.scenarios() if model.arch == "arm64" else []
    return [*lab_scenarios(MASKS[model.arch], compat=model.compat), init_step_scenario(model.arch), *extra]


@dataclass
class Cell:
    """One scenario on one CPU model and kernel variant."""

    variant: str
    model: str
    scenario: str
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


@dataclass
class ModelRun:
    """Everything one boot produced, kept so the comparison can be re-run against a changed model."""

    variant: str
    model: CpuModel
    kernel: KernelBuild
    boot: BootResult
    scenarios: list[Scenario]

    def baseline(self) -> tuple[tuple[int, ...], tuple[int, ...] | None]:
        """Native and compat (AT_HWCAP, AT_HWCAP2) the kernel gave unmasked processes."""
        native = compat = None
        for r in self.boot.records:
            if r.get("scn") == "baseline" and r.get("op") == "observe":
                words = tuple(int(w, 16) for w in r["stack"])
                if r.get("abi") == "compat":
                    compat = words
                else:
                    native = words
        if native is None:
            raise LabError(f"{self.model.key}/{self.variant}: the guest printed no baseline observation")
        if self.model.compat and compat is None:
            raise LabError(f"{self.model.key}/{self.variant}: no AArch32 baseline although the CPU has AArch32")
        return native, compat

    def kernel_config(self) -> KernelConfig:
        """The model's kernel for this guest (words from the guest, the rest from the kernel source)."""
        native, compat = self.baseline()
        return KernelConfig(
            arch=self.model.arch,  # type: ignore[arg-type]
            hwcap=native,
            compat_hwcap=compat,
            patch=VARIANT_PATCH[self.variant],
            at_vector_size=self.kernel.at_vector_size,
            checkpoint_restore=True,
            set_auxv_copies_whole_buffer=self.kernel.auxv_whole_buffer_copy,
        )

    def cells(self) -> list[Cell]:
        cfg = self.kernel_config()
        out = []
        for sc in self.scenarios:
            cell = Cell(self.variant, self.model.key, sc.name)
            guest = [r for r in self.boot.records if r.get("scn") == sc.name]
            try:
                predicted = run_model(sc, cfg).observations
            except Exception as exc:  # a model crash is a finding, not a lab crash
                cell.mismatches.append(f"model raised {type(exc).__name__}: {exc}")
            else:
                cell.mismatches = compare(predicted, guest)
            out.append(cell)
        return out


def _saved_from_guest(record: dict[str, Any]) -> dict[str, int]:
    raw = bytes.fromhex(record["auxv"])
    layout = compat_layout("little") if record.get("abi") == "compat" else native_layout("little")
    return {at_name(t): v for t, v in sorted(hwcap_entries(layout.pairs(raw), HWCAP_TYPES).items())}


def compare(predicted: Sequence[Observation], guest: Sequence[dict[str, Any]]) -> list[str]:
    """Differences between the model's observations and the guest's lines, one readable string each."""
    problems: list[str] = []
    for r in guest:
        if r.get("event") in ("error", "killed", "garbled"):
            problems.append(f"guest {r.get('event')}: {json.dumps(r, sort_keys=True)}")
    by_step: dict[int, list[dict[str, Any]]] = {}
    for r in guest:
        if "step" in r and "op" in r:
            by_step.setdefault(int(r["step"]), []).append(r)
    for obs in predicted:
        where = f"step {obs.step} {obs.op} {obs.proc}"
        lines = by_step.get(obs.step, [])
        if len(lines) != 1:
            problems.append(f"{where}: expected one guest line, got {len(lines)}")
            continue
        g = lines[0]
        if g["op"] != obs.op or g["proc"] != obs.proc:
            problems.append(f"{where}: guest line is for {g['op']} {g['proc']}")
            continue
        if int(g["result"]) != obs.result:
            problems.append(f"{where}: result model {obs.result} guest {g['result']}")
        if obs.op == "idregs":
            problems += idregs.compare(obs, g, where)
        elif obs.op != "observe":
            continue
        if obs.hwcap is not None:
            stack = tuple(int(w, 16) for w in g["stack"])[: len(obs.hwcap)]
            if stack != obs.hwcap:
                problems.append(
                    f"{where}: AT_HWCAP* on the stack model {[hex(w) for w in obs.hwcap]} "
                    f"guest {[hex(w) for w in stack]}"
                )
        if obs.saved is not None:
            saved = _saved_from_guest(g)
            if saved != obs.saved:
                problems.append(f"{where}: /proc/self/auxv HWCAP entries model {_hexd(obs.saved)} guest {_hexd(saved)}")
        if obs.secure is not None and int(g["secure"]) != obs.secure:
            problems.append(f"{where}: AT_SECURE model {obs.secure} guest {g['secure']}")
    extra = sorted(set(by_step) - {o.step for o in predicted})
    if extra:
        problems.append(f"guest printed steps the model does not have: {extra}")
    return problems


def _hexd(d: dict[str, int]) -> str:
    return "{" + ", ".join(f"{k}={v:#x}" for k, v in d.items()) + "}"


def boot_model(variant: str, model: CpuModel, *, log: Callable[[str], None] | None = None) -> ModelRun:
    """Build (or reuse) the kernel, write the initramfs, boot this CPU model once."""
    say = log or (lambda msg: print(msg, file=sys.stderr))
    kb = kbuild.build(model.arch, variant)
    if not kb.cached:
        say(f"[kernellab] first build of {model.arch}/{variant} kernel took {kb.build_seconds} s")
    scenarios = scenarios_for(model)
    initrd = initramfs_for(model.arch, scenario_files(model.arch, scenarios))
    result = boot(model, kb.image, initrd)
    say(f"[kernellab] {variant:4} {model.key:22} booted and ran {len(scenarios)} scenarios in {result.seconds} s")
    return ModelRun(variant, model, kb, result, scenarios)


def run_matrix(
    variants: Iterable[str], models: Iterable[CpuModel], *, log: Callable[[str], None] | None = None
) -> list[ModelRun]:
    models = list(models)
    return [
        boot_model(v, m, log=log) for v in variants for m in models if m.arch in kbuild.VARIANT_ARCHES.get(v, (m.arch,))
    ]


def table(runs: Sequence[ModelRun], cells: Sequence[Cell]) -> str:
    """scenario x (variant, CPU model) with ok / MISMATCH / - (not applicable)."""
    cols = [(r.variant, r.model.key) for r in runs]
    scenarios: list[str] = []
    for c in cells:
        if c.scenario not in scenarios:
            scenarios.append(c.scenario)
    index = {(c.variant, c.model, c.scenario): c for c in cells}
    head = ["scenario"] + [f"{v}:{k.split('/')[1]}" for v, k in cols]
    rows = [head]
    for s in scenarios:
        row = [s]
        for v, k in cols:
            cell = index.get((v, k, s))
            row.append("-" if cell is None else ("ok" if cell.ok else "MISMATCH"))
        rows.append(row)
    baseline = ["AT_HWCAP,AT_HWCAP2"]
    for r in runs:
        native, _ = r.baseline()
        baseline.append(",".join(f"{w:#x}" for w in native))
    copy = ["PR_SET_MM_AUXV copies"] + ["whole" if r.kernel.auxv_whole_buffer_copy else "len" for r in runs]
    rows.append(copy)
    widths = [max(len(row[i]) for row in [*rows, baseline]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    lines = [fmt.format(*row) for row in rows]
    lines.insert(1, fmt.format(*["-" * w for w in widths]))
    lines.append(fmt.format(*baseline))
    return "\n".join(lines)


def report(runs: Sequence[ModelRun]) -> tuple[str, list[Cell]]:
    """The table plus one line per mismatch; returns (text, cells)."""
    cells = [c for r in runs for c in r.cells()]
    for r in runs:  # node levelling on the unpatched arm64 kernel: docs/kernel.md#idreg-override
        found = leveling_cell(r.variant, r.model.key, r.boot)
        if found is not None:
            cells.append(Cell(r.variant, r.model.key, found[0], found[1]))
    text = [table(runs, cells)]
    bad = [c for c in cells if not c.ok]
    for c in bad:
        for m in c.mismatches:
            text.append(f"MISMATCH {c.variant} {c.model} {c.scenario}: {m}")
    text.append(f"{len(cells) - len(bad)}/{len(cells)} cells match")
    return "\n".join(text), cells


def default_models(names: Sequence[str] | None = None) -> list[CpuModel]:
    from .guest import model_by_key

    return [model_by_key(n) for n in names] if names else list(ALL_MODELS)
