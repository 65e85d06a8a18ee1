"""Parse /proc/cpuinfo (or lscpu) text into a FeatureSet.

Feature lines per arch: arm64 ``Features``, x86 ``flags`` (lscpu ``Flags:``), s390x ``features``,
riscv ``isa`` (an ISA string, e.g. ``rv64imafdc_zicsr_zba``). ppc64 cpuinfo has no feature list at all
(only ``cpu : POWER9, altivec supported``): the result is empty with a warning saying so, because a
baseline built from it would be meaningless. When several CPUs are listed, the result is what *all* of
them have (a process may run on any CPU); a warning says when the lines differ.
"""

from __future__ import annotations

import re

from hwcap_operator.arch import Arch, UnknownArchError, normalize_arch
from hwcap_operator.features import catalog
from hwcap_operator.features.model import Feature
from hwcap_operator.features.result import FeatureParseError, FeatureSet, ParseIssue

_TOKEN = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")
_X86_VENDORS = ("genuineintel", "authenticamd", "hygongenuine", "centaurhauls", "shanghai")
_RISCV_ISA = re.compile(r"^rv(32|64|128)([a-z]*)((?:_[a-z0-9]+)*)$")


#: Catalog features /proc/cpuinfo never lists, whatever the CPU: osxsave (the kernel shows avx instead) and the
#: CET shadow-stack CPUID bit (the kernel shows only user_shstk, once it enables shadow stacks for user mode).
CPUINFO_NEVER_SHOWS: dict[str, tuple[str, ...]] = {"amd64": ("osxsave", "shstk")}


def _key_values(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        k = key.strip().lower()
        if k.startswith("#") and k != "# processors":
            continue  # metadata comments of the shared dumps
        out.append((k, value.strip()))
    return out


def _detect_arch(source: str, kv: list[tuple[str, str]]) -> Arch | None:
    keys = {k: v for k, v in reversed(kv)}  # first occurrence wins
    if "architecture" in keys:  # lscpu
        try:
            return normalize_arch(keys["architecture"])
        except UnknownArchError as e:
            raise FeatureParseError(source, keys["architecture"], "unknown Architecture") from e
    for vkey in ("vendor_id", "vendor id"):
        vendor = keys.get(vkey, "").lower()
        if vendor.startswith("ibm/s390"):
            return "s390x"
        if vendor in _X86_VENDORS:
            return "amd64"
    if "isa" in keys and keys["isa"].lower().startswith("rv"):
        return "riscv64"
    if "cpu implementer" in keys:
        return "arm64"
    cpu = keys.get("cpu", "").lower()
    if cpu.startswith("power") or "altivec" in cpu:
        return "ppc64le"
    if "flags" in keys:
        return "amd64"
    if "features" in keys:
        return "arm64"
    return None


def _riscv_tokens(source: str, isa: str, errors: list[ParseIssue]) -> list[str]:
    m = _RISCV_ISA.match(isa.lower())
    if not m:
        errors.append(ParseIssue(source, isa, "malformed riscv ISA string"))
        return []
    if m.group(1) != "64":
        errors.append(ParseIssue(source, isa, "not an rv64 ISA string"))
    letters = m.group(2).replace("g", "imafd")
    return [*letters, *(x for x in m.group(3).split("_") if x)]


def parse_cpuinfo(text: str, source: str = "<cpuinfo>", arch: str | None = None) -> FeatureSet:
    """Parse cpuinfo/lscpu ``text``; ``source`` names the input in messages.

    ``arch`` forces the architecture; it must agree with what the text says. Raises
    :class:`FeatureParseError` when no feature line exists (except ppc64) or the arch is unclear.
    """
    kv = _key_values(text)
    detected = _detect_arch(source, kv)
    if arch is not None:
        forced = normalize_arch(arch)
        if detected is not None and detected != forced:
            raise FeatureParseError(source, detected, f"text is from {detected}, not {forced}")
        detected = forced
    if detected is None:
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        raise FeatureParseError(source, first[:60], "not cpuinfo/lscpu text: cannot tell the architecture")
    a: Arch = detected
    # lscpu says "Flags:" on every arch; cpuinfo says "Features" (arm64), "features" (s390x), "flags" (x86).
    wanted = ("isa",) if a == "riscv64" else ("flags",) if a == "amd64" else ("features", "flags")
    want = "/".join(wanted)
    lines = [v for k, v in kv if k in wanted]
    if a == "ppc64le" and not lines:
        return FeatureSet(source, a, (), warnings=(
            "ppc64 /proc/cpuinfo has no feature list; read AT_HWCAP/AT_HWCAP2 (node agent) instead",),
            unobserved=tuple(f.name for f in catalog.features(a)))
    if not lines:
        raise FeatureParseError(source, want, f"no '{want}' line found in {a} cpuinfo")

    errors: list[ParseIssue] = []
    warnings: list[str] = []
    per_line: list[set[str]] = []
    for value in lines:
        tokens = _riscv_tokens(source, value, errors) if a == "riscv64" else value.split()
        good: set[str] = set()
        for t in tokens:
            if _TOKEN.match(t):
                good.add(t)
            else:
                errors.append(ParseIssue(source, t, f"malformed {want} token"))
        per_line.append(good)
    common = set.intersection(*per_line)
    if any(s != per_line[0] for s in per_line[1:]):
        warnings.append(f"{len(per_line)} '{want}' lines differ; kept the {len(common)} names all of them share")

    known: list[Feature] = []
    unknown: list[str] = []
    for name in sorted(common):
        f = catalog.find(a, name)
        if f is None:
            unknown.append(name)
        else:
            known.append(f)
    if a == "riscv64" and unknown:
        warnings.append("riscv extensions other than i/m/a/f/d/c/v are not in AT_HWCAP (riscv_hwprobe only); "
                        "listed as unknown: " + " ".join(unknown))
    order = catalog.catalog_order(a)
    known.sort(key=lambda f: order[f])
    names = {f.name for f in known}
    unobserved = tuple(n for n in CPUINFO_NEVER_SHOWS.get(a, ()) if n not in names)
    return FeatureSet(source, a, tuple(known), tuple(unknown), tuple(dict.fromkeys(errors)), tuple(warnings),
                      unobserved)  # fmt: skip
