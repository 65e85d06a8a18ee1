"""Node levelling: the arm64 ID-register override boot parameters that bring a node down to a domain's mask.

Per-process inheritance (the HWCAP mask) needs a patched kernel; the ID-register overrides of
``arch/arm64/kernel/pi/idreg-override.c`` work on today's kernels, per node, at boot, and also change what MRS
reports. This module is the pure decision: which fields to lower, to which value, with which alias, what that
removes, and what stays above the mask because that kernel has no override for it (docs/kernel.md#idreg-override).
A feature the mask keeps is never removed; security features only with ``allow_hiding_security``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hwcap_operator.features import catalog
from hwcap_operator.features.data_idreg_overrides import FIELDS, TABLES, OverrideField, OverrideTable
from hwcap_operator.mask import FeatureMask

DEFAULT_KERNEL = "6.12"
_RELEASE = re.compile(r"^v?(\d+)\.(\d+)")


class LevelingError(ValueError):
    """The question has no answer (wrong arch, unknown or too old kernel); the message says why."""


@dataclass(frozen=True, slots=True)
class LevelingPlan:
    """The boot parameters for one node and what they achieve, against one mask on one kernel release."""

    kernel: str
    table: str
    source: str
    parameters: tuple[str, ...]
    settings: tuple[tuple[str, int], ...]
    removed: tuple[str, ...]
    id_register_effects: tuple[str, ...]
    remaining: tuple[str, ...]
    blocked_security: tuple[str, ...]
    no_override: tuple[str, ...]
    removed_mask: FeatureMask

    @property
    def levelled(self) -> bool:
        """True when nothing stays above the mask once the parameters are on the node's command line."""
        return not self.remaining

    @property
    def cmdline(self) -> str:
        """The parameters as one line to append to the kernel command line."""
        return " ".join(self.parameters)

    def to_dict(self) -> dict[str, object]:
        return {
            "kernel": self.kernel,
            "table": self.table,
            "source": self.source,
            "parameters": list(self.parameters),
            "cmdline": self.cmdline,
            "settings": [f"{k}={v}" for k, v in self.settings],
            "removed": list(self.removed),
            "removedWords": list(self.removed_mask.hex_words()),
            "idRegisterEffects": list(self.id_register_effects),
            "remaining": list(self.remaining),
            "blockedSecurity": list(self.blocked_security),
            "noOverride": list(self.no_override),
            "levelled": self.levelled,
        }


def table_for(release: str) -> OverrideTable:
    """The newest table not newer than ``release`` ("6.12.48-amd64", "v6.6", "6.1"): a field added later is
    never assumed, so a release between two tables gets the older (smaller) set."""
    m = _RELEASE.match(release.strip())
    if m is None:
        raise LevelingError(f"kernel release {release!r}: expected MAJOR.MINOR[...], e.g. 6.12 or 6.12.48-amd64")
    wanted = (int(m.group(1)), int(m.group(2)))
    older = [t for t in TABLES if t.release <= wanted]
    if not older:
        known = ", ".join(t.name for t in TABLES)
        raise LevelingError(f"kernel release {release!r}: no override table that old (tables: {known})")
    return max(older, key=lambda t: t.release)


def _providers() -> dict[str, list[tuple[str, int]]]:
    """HWCAP name -> every (field key, threshold) that provides it."""
    out: dict[str, list[tuple[str, int]]] = {}
    for f in FIELDS.values():
        for threshold, names in f.provides:
            for n in names:
                out.setdefault(n, []).append((f.key, threshold))
    return out


def _lowest_value(f: OverrideField, keep: set[str]) -> int:
    """The lowest value of ``f`` that removes none of ``keep`` (each kept name needs its threshold; a kept
    family member needs the field above 0)."""
    floor = 1 if keep.intersection(f.family) else 0
    return max((t for t, names in f.provides if keep.intersection(names)), default=floor)


def _is_security(name: str) -> bool:
    feat = catalog.find("arm64", name)
    return feat is not None and feat.security


def _removed(settings: dict[str, int], present: set[str], providers: dict[str, list[tuple[str, int]]]) -> set[str]:
    """Present HWCAPs every provider of which is set below the HWCAP's threshold, or whose register a
    field set to 0 zeroes (the SVE and SME families)."""
    zeroed = {n for k, v in settings.items() if v == 0 for n in FIELDS[k].family}
    return {n for n in present if n in zeroed or (n in providers
            and all(k in settings and settings[k] < t for k, t in providers[n]))}  # fmt: skip


def _with_aliases(table: OverrideTable, settings: dict[str, int]) -> tuple[str, ...]:
    """Replace settings by an alias whose whole expansion they contain (largest alias first)."""
    left = dict(settings)
    params: list[str] = []
    for alias, expansion in sorted(table.aliases.items(), key=lambda a: (-len(a[1]), a[0])):
        if all(left.get(k) == v for k, v in expansion):
            params.append(alias)
            for k, _ in expansion:
                del left[k]
    params += [f"{k}={v}" for k, v in sorted(left.items())]
    return tuple(params)


def overrides_in_cmdline(cmdline: str) -> tuple[str, ...]:
    """The tokens of a kernel command line that some release's override table accepts (field settings and the
    feature aliases), in order: what the node agent reports so a levelled node can be told from one that is not.
    ``-`` reads as ``_`` as 6.12 reads it."""
    aliases = {a for t in TABLES for a in t.aliases}
    found: list[str] = []
    for token in cmdline.split():
        if token == "--":
            break
        key = token.replace("-", "_")
        if key in aliases or key.split("=", 1)[0] in FIELDS:
            found.append(token)
    return tuple(found)


def plan_leveling(
    node: FeatureMask, mask: FeatureMask, kernel: str = DEFAULT_KERNEL, *, allow_hiding_security: bool = False
) -> LevelingPlan:
    """The boot parameters that take ``node`` as close to ``mask`` as ``kernel``'s override table allows."""
    if node.arch != "arm64" or mask.arch != "arm64":
        raise LevelingError(
            f"node levelling by ID-register overrides exists on arm64 only (node {node.arch}, mask {mask.arch}); "
            "on x86, clearcpuid= hides features from the kernel and /proc/cpuinfo but NOT from the CPUID instruction"
        )
    table = table_for(kernel)
    present = set(node.names())
    keep = present & set(mask.names())
    # HWCAP_CPUID is the kernel's MRS emulation, not a CPU feature: no override lowers it, and a mask that cleared it
    # (docs/kernel.md#hwcap-cpuid) asks nothing of the node's boot.
    excess = present - keep - {"cpuid"}
    providers = _providers()
    settings: dict[str, int] = {}
    blocked: set[str] = set()
    for key in table.fields:
        f = FIELDS[key]
        value = _lowest_value(f, keep)
        hits = f.removed_by(value) & present
        if not hits:
            continue
        if not allow_hiding_security and any(_is_security(n) for n in hits):
            blocked |= hits
            continue
        settings[key] = value
    removed = _removed(settings, present, providers)
    # A setting that removes nothing on its own (a PAuth field whose partners were blocked) is dropped.
    settings = {k: v for k, v in settings.items() if FIELDS[k].removed_by(v) & removed}
    removed = _removed(settings, present, providers)
    remaining = excess - removed
    effects = [f"{k}={v}" for k, v in sorted(settings.items())]
    effects += [f"{FIELDS[k].side_effect}" for k, v in sorted(settings.items()) if v == 0 and FIELDS[k].side_effect]
    return LevelingPlan(
        kernel=kernel,
        table=table.name,
        source=table.source,
        parameters=_with_aliases(table, settings),
        settings=tuple(sorted(settings.items())),
        removed=tuple(sorted(removed)),
        id_register_effects=tuple(effects),
        remaining=tuple(sorted(remaining)),
        blocked_security=tuple(sorted(remaining & blocked)),
        no_override=tuple(sorted(remaining - blocked)),
        removed_mask=FeatureMask.from_names("arm64", sorted(removed)),
    )
