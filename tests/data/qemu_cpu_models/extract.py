"""Extract x86 CPU model feature sets from the installed QEMU (query-cpu-model-expansion, type "full").

Run by hand when the data should follow a newer QEMU: ``python tests/data/qemu_cpu_models/extract.py``. It
writes ``qemu-x86_64-models.json`` beside itself (the QEMU version and, per model version, the QEMU
property names that are true) and derives the product's table from it
(src/hwcap_operator/features/data_x86_models.py; ``--table-only`` re-derives without QEMU).
tests/unit/test_presets.py checks that the two agree. QEMU's models are defined
in its source (target/i386/cpu.c, ``builtin_x86_defs``); expanding them with QEMU itself avoids
re-typing that table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hwcap_operator import features

MODELS = (
    "qemu64-v1", "kvm64-v1", "Opteron_G1-v1", "Opteron_G2-v1", "Opteron_G3-v1", "Opteron_G4-v1", "Opteron_G5-v1",
    "Conroe-v1", "Penryn-v1", "Nehalem-v2", "Westmere-v2", "SandyBridge-v2", "IvyBridge-v2", "Haswell-v4",
    "Broadwell-v4", "Skylake-Client-v4", "Skylake-Server-v5", "Cascadelake-Server-v5", "Cooperlake-v2",
    "Icelake-Server-v6", "EPYC-v3", "EPYC-Rome-v2", "EPYC-Milan-v1",
)  # fmt: skip
QEMU = "qemu-system-x86_64"
HERE = Path(__file__).parent
JSON = HERE / "qemu-x86_64-models.json"
TABLE = HERE.parents[2] / "src" / "hwcap_operator" / "features" / "data_x86_models.py"

#: QEMU property names whose /proc/cpuinfo spelling differs beyond '-' -> '_'.
RENAMES = {"i64": "lm", "xd": "nx", "sha-ni": "sha_ni", "tsc-deadline": "tsc_deadline_timer", "cr8legacy": "cr8_legacy",
           "ds": "dts", "ds-cpl": "ds_cpl", "fxsr-opt": "fxsr_opt", "sse4.1": "sse4_1", "sse4.2": "sse4_2",
           "sse3": "pni", "avx512-bf16": "avx512_bf16", "avx512-fp16": "avx512_fp16", "amd-ssbd": "amd_ssbd"}
#: Features a preset leaves out: virtualization, kernel-only protections and system features a container
#: neither uses nor loses (a mask naming them would only exclude nodes for no userspace reason).
NOT_USERSPACE = frozenset({
    "hypervisor", "svm", "vmx", "npt", "nrip_save", "lbrv", "svm_lock", "tsc_scale", "vmcb_clean", "flushbyasid",
    "decodeassists", "pausefilter", "pfthreshold", "avic", "v_vmsave_vmload", "vgif", "v_spec_ctrl", "smep",
    "smap", "umip", "x2apic", "tsc_deadline_timer", "arat", "pcid", "invpcid", "monitor", "osvw", "perfctr_core",
    "topoext", "ibpb", "ibrs", "stibp", "ssbd", "amd_ssbd", "amd_stibp", "spec_ctrl", "md_clear",
    "arch_capabilities", "xsaves", "cr8_legacy", "wbnoinvd", "pdpe1gb", "tsc_adjust", "ss", "flush_l1d",
    "virt_ssbd", "cpb", "ibs", "skinit", "wdt", "xtpr", "pdcm", "dca", "sgx", "pconfig", "tme", "mpx",
})  # fmt: skip
#: Userspace instructions the NFD spelling does not cover but a preset must keep.
USERSPACE_EXTRA = frozenset({"lm", "clflushopt", "clwb", "rdpid", "clzero", "xsaveerptr", "3dnowprefetch"})


def expand(models: tuple[str, ...]) -> dict[str, list[str]]:
    """One QEMU process (no machine, TCG) answering query-cpu-model-expansion for every model."""
    commands = [{"execute": "qmp_capabilities"}]
    commands += [
        {"execute": "query-cpu-model-expansion", "arguments": {"type": "full", "model": {"name": m}}, "id": m}
        for m in models
    ]
    commands.append({"execute": "quit"})
    text = "\n".join(json.dumps(c) for c in commands) + "\n"
    argv = [QEMU, "-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none", "-qmp", "stdio"]
    out = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=60, check=True).stdout
    result: dict[str, list[str]] = {}
    for line in out.splitlines():
        reply = json.loads(line)
        if reply.get("id") in models:
            props = reply["return"]["model"]["props"]
            result[reply["id"]] = sorted(k for k, v in props.items() if v is True)
    return result


def canonical(props: list[str]) -> list[str]:
    """QEMU property names -> the catalog's canonical names a preset keeps, in catalog order."""
    names = {RENAMES.get(p, p.replace("-", "_")) for p in props}
    keep = []
    for f in features.features("amd64"):
        spelled = f.in_hwcap or f.nfd or f.glibc or f.godebug or f.openssl or f.name in USERSPACE_EXTRA
        if f.name in names and spelled and f.name not in NOT_USERSPACE:
            keep.append(f.name)
    return keep


def write_table(data: dict[str, object]) -> None:
    models: dict[str, list[str]] = data["models"]  # type: ignore[assignment]
    lines = [
        '"""x86 CPU models as QEMU defines them, in /proc/cpuinfo names: GENERATED, do not edit.',
        "",
        f"Source: {data['qemu']},",
        f"{data['query']} (QEMU's builtin_x86_defs, target/i386/cpu.c),",
        "by tests/data/qemu_cpu_models/extract.py from qemu-x86_64-models.json. Kept: features",
        "userspace can use (HWCAP bits, names NFD or a runtime knob spells, a few plain instructions); left out:",
        "virtualization and kernel-only features (that script's NOT_USERSPACE).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "QEMU_VERSION = " + json.dumps(str(data["qemu"])),
        "",
        "X86_MODELS: dict[str, tuple[str, ...]] = {",
    ]
    for model, props in models.items():
        lines.append(f'    "{model}": (')
        names = canonical(props)
        row = "       "
        for n in names:
            if len(row) + len(n) + 4 > 116:
                lines.append(row)
                row = "       "
            row += f' "{n}",'
        lines.append(row)
        lines.append("    ),")
    lines.append("}")
    TABLE.write_text("\n".join(lines) + "\n")


def main() -> None:
    if sys.argv[1:] == ["--table-only"]:
        write_table(json.loads(JSON.read_text()))
        return
    version = subprocess.run([QEMU, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    data = {"qemu": version, "query": "query-cpu-model-expansion type=full, -machine none -accel tcg",
            "models": expand(MODELS)}  # fmt: skip
    JSON.write_text(json.dumps(data, indent=1) + "\n")
    write_table(data)


if __name__ == "__main__":
    main()
