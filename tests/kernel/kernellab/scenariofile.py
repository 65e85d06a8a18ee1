"""Serialise execmodel scenarios into the probe's step files (one line per step, ``OP PROC key=value``).

Why a line format and not JSON in the guest: the probe is a small static C program; the JSON form of every
scenario still goes into the initramfs (``/lab/<name>.json``) as the record of what ran.
"""

from __future__ import annotations

import json
import re

from hwcap_operator.execmodel.kernel import (
    CAP_CHECKPOINT_RESTORE,
    CAP_SETUID,
    CAP_SYS_ADMIN,
    CAP_SYS_RESOURCE,
    Binary,
)
from hwcap_operator.execmodel.scenarios import AuxvEdit, Scenario, Step

from .build import LabError
from .guest import known_binaries

#: include/uapi/linux/capability.h numbers of the capabilities the model knows.
CAP_NUMBERS = {CAP_SETUID: 7, CAP_SYS_ADMIN: 21, CAP_SYS_RESOURCE: 24, CAP_CHECKPOINT_RESTORE: 40}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,31}$")


def _pairs(pairs: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{t}:{v & 0xFFFFFFFFFFFFFFFF:#x}" for t, v in pairs)


def _edit(edit: AuxvEdit) -> list[str]:
    out = []
    if edit.mask:
        out.append("mask=" + _pairs(edit.mask))
    if edit.drop:
        out.append("drop=" + ",".join(str(t) for t in edit.drop))
    if edit.prepend:
        out.append("prepend=" + _pairs(edit.prepend))
    if edit.append:
        out.append("append=" + _pairs(edit.append))
    if edit.keep_through is not None:
        out.append(f"keep={edit.keep_through}")
    out.append(f"len={edit.length}")
    return out


def _binary(arch: str, binary: Binary | None, where: str) -> str:
    b = binary or Binary()
    for path, abi, owner in known_binaries(arch):
        if b.path == path:
            if (b.abi, b.setuid_owner) != (abi, owner) or b.setgid_group is not None:
                raise LabError(
                    f"{where}: binary {b.path} is {abi} with setuid owner {owner} in the {arch} guest, "
                    f"the scenario says {b.abi} / {b.setuid_owner} / setgid {b.setgid_group}"
                )
            return f"path={b.path}"
    known = ", ".join(p for p, _, _ in known_binaries(arch))
    raise LabError(f"{where}: the {arch} guest has no binary {b.path!r} (it has {known})")


def step_line(arch: str, step: Step, where: str) -> str:
    """One probe line for one scenario step; anything the probe cannot do is a LabError naming the step."""
    for name in (step.proc, step.child):
        if name and not _NAME.match(name):
            raise LabError(f"{where}: process name {name!r} is not a plain word")
    words = [step.op, step.proc]
    if step.op == "spawn":
        if step.caps:
            raise LabError(f"{where}: spawn with an explicit capability set is not supported by the probe")
        if step.uid is not None:
            words.append(f"uid={step.uid}")
        words.append(_binary(arch, step.binary, where))
    elif step.op in ("fork", "thread"):
        if not step.child:
            raise LabError(f"{where}: {step.op} needs a child name")
        words.append(f"child={step.child}")
    elif step.op == "exec":
        words.append(_binary(arch, step.binary, where))
    elif step.op in ("set_auxv", "set_mm_map"):
        words += _edit(step.edit or AuxvEdit())
    elif step.op == "setresuid":
        words.append(f"uid={-1 if step.uid is None else step.uid}")
    elif step.op == "set_dumpable":
        words.append(f"value={step.value}")
    elif step.op == "drop_caps":
        try:
            words.append("caps=" + ",".join(str(CAP_NUMBERS[c]) for c in step.caps))
        except KeyError as exc:
            raise LabError(f"{where}: unknown capability {exc.args[0]!r}") from None
    elif step.op == "hwcap_exec":
        if not step.mask:
            raise LabError(f"{where}: hwcap_exec needs a mask")
        words.append("mask=" + ",".join(f"{w:#x}" for w in step.mask))
        words.append(_binary(arch, step.binary, where))
    elif step.op in ("observe", "idregs"):
        pass
    else:
        raise LabError(f"{where}: op {step.op!r} is not supported by the guest probe yet")
    return " ".join(words)


def scenario_files(arch: str, scenarios: list[Scenario]) -> dict[str, bytes]:
    """``/lab`` files: index, ``<name>.steps`` and ``<name>.json`` for every scenario."""
    files: dict[str, bytes] = {}
    names = []
    for sc in scenarios:
        if not _NAME.match(sc.name):
            raise LabError(f"scenario name {sc.name!r} is not a plain word")
        if not sc.steps or sc.steps[0].op != "spawn":
            raise LabError(f"scenario {sc.name}: the first step must be a spawn (init starts it)")
        if any(s.op == "spawn" for s in sc.steps[1:]):
            raise LabError(f"scenario {sc.name}: only the first step may be a spawn")
        lines = [step_line(arch, s, f"scenario {sc.name} step {i}") for i, s in enumerate(sc.steps)]
        files[f"{sc.name}.steps"] = ("\n".join(lines) + "\n").encode()
        files[f"{sc.name}.json"] = json.dumps(sc.to_dict(), sort_keys=True).encode()
        names.append(sc.name)
    files["index"] = ("\n".join(names) + "\n").encode()
    return files
