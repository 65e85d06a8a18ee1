"""The verbs that work on files alone (no cluster): baseline, explain, check, fallbacks, simulate."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from hwcap_operator.admission.coverage import domain_coverage
from hwcap_operator.admission.fallbacks import FALLBACK_KINDS, FallbackKind, plan_fallbacks
from hwcap_operator.arch import UnknownArchError, normalize_arch
from hwcap_operator.auxv import AuxvParseError, at_name, parse_auxv
from hwcap_operator.cli.inputs import BadInput, parse_mask_spec, read_feature_file, same_arch
from hwcap_operator.cli.output import OutputFormat, emit, render_table
from hwcap_operator.domain.baseline import common_features
from hwcap_operator.execmodel.id_registers import mrs_view
from hwcap_operator.execmodel.pod_simulation import NodeSpec, validate
from hwcap_operator.features import (
    WORD_NAMES,
    FeatureSet,
    by_bit,
    unknown_bit_name,
)
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import UnknownPresetError, preset, preset_kind, preset_left_out, preset_names, preset_source


def mask_document(mask: FeatureMask) -> dict[str, Any]:
    """The mask as every verb prints it: words in hex, feature names, canonical string and id."""
    return {
        "arch": mask.arch,
        "canonical": mask.canonical(),
        "maskId": mask.mask_id,
        "words": dict(zip(WORD_NAMES, mask.hex_words(), strict=True)),
        "features": mask.names(),
        "popcount": mask.popcount,
    }


def _warnings(sets: list[FeatureSet]) -> list[str]:
    out = [f"{s.source}: unknown feature {name!r} kept out of the mask" for s in sets for name in s.unknown]
    out += [f"{s.source}: {w}" for s in sets for w in s.warnings]
    return out


def baseline(args: argparse.Namespace) -> int:
    sets = [read_feature_file(path) for path in args.files]
    same_arch(sets)
    # a source's silence is not absence: what an input cannot observe does not pull the common mask down
    common = common_features([(s.mask, s.possible) for s in sets])
    inputs: list[dict[str, Any]] = [
        {"source": s.source, "features": len(s.features), "dropped": (s.mask - common).names(),
         "securityHidden": [f.name for f in (s.mask - common).security_features()], "unknown": list(s.unknown)}
        for s in sets
    ]  # fmt: skip
    warnings = _warnings(sets) + [
        f"{i['source']}: the common mask hides security feature(s) {' '.join(i['securityHidden'])}; a domain "
        "refuses such a mask unless allowHidingSecurityFeatures is set"
        for i in inputs
        if i["securityHidden"]
    ]
    notes = _cpuid_notes(sets, common)
    document = {"mask": mask_document(common), "inputs": inputs, "warnings": warnings, "notes": notes}
    words = "  ".join(f"{n}={w}" for n, w in zip(WORD_NAMES, common.hex_words(), strict=True))
    table = (
        f"ARCH {common.arch}   MASK-ID {common.mask_id}   FEATURES {common.popcount}\n{words}\n"
        f"kept: {' '.join(common.names()) or '<none>'}\n\n"
        + render_table(["input", "features", "dropped"], [[i["source"], i["features"], i["dropped"]] for i in inputs])
        + "".join(f"warning: {w}\n" for w in document["warnings"])
        + "".join(f"note: {n}\n" for n in document["notes"])
    )
    emit(document, table, args.output)
    return 0


def _cpuid_notes(sets: list[Any], common: FeatureMask) -> list[str]:
    """arm64: a domain publishing this mask would clear HWCAP_CPUID (domain.id_registers), and why."""
    if common.arch != "arm64" or "cpuid" not in common:
        return []
    shown = mrs_view(common.union(*(s.mask for s in sets))) - common
    if shown.is_empty:
        return []
    return [f"a MigrationDomain publishing this mask clears cpuid (HWCAP_CPUID; spec.enforcement.idRegisterAccess: "
            f"Auto): the ID registers would reveal {shown.popcount} hidden feature(s) to software that checks it "
            f"(docs/kernel.md#hwcap-cpuid)"]  # fmt: skip


def _word_value(flag: str, text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError as exc:
        raise BadInput(f"--{flag} {text!r}: not an integer (use 0x-prefixed hex)") from exc
    if not 0 <= value < 1 << 64:
        raise BadInput(f"--{flag} {text!r}: does not fit in 64 bits")
    return value


def explain_preset(what: str, fmt: OutputFormat) -> int:
    """``presets``: every preset; ``preset:NAME``: its features, security features marked."""
    if what == "presets":
        rows = [[n, preset(n).arch, preset(n).popcount, preset_kind(n)] for n in preset_names()]
        document: dict[str, Any] = {"presets": [{"name": r[0], "arch": r[1], "features": r[2], "kind": r[3]}
                                                for r in rows]}  # fmt: skip
        emit(document, render_table(["preset", "arch", "features", "kind"], rows), fmt)
        return 0
    name = what.removeprefix("preset:")
    try:
        mask = preset(name)
    except UnknownPresetError as exc:
        raise BadInput(str(exc)) from exc
    security = [f.name for f in mask.security_features()]
    left_out = preset_left_out(name)
    document = {"preset": name, "kind": preset_kind(name), "source": preset_source(name),
                "mask": mask_document(mask), "security": security,
                "leftOut": [{"feature": f, "why": why} for f, why in left_out.items()]}  # fmt: skip
    text = (f"PRESET {name} ({preset_kind(name)})   ARCH {mask.arch}   FEATURES {mask.popcount}\n"
            f"{' '.join(mask.names())}\nsecurity features kept: {' '.join(security) or '<none>'}\n"
            f"source: {preset_source(name)}\n"
            + "".join(f"left out: {f}: {why}\n" for f, why in left_out.items()))  # fmt: skip
    emit(document, text, fmt)
    return 0


def explain(args: argparse.Namespace) -> int:
    if getattr(args, "what", None):
        return explain_preset(args.what, args.output)
    if not args.arch:
        raise BadInput("--arch is required to name HWCAP bits (or give preset:NAME, or presets)")
    try:
        arch = normalize_arch(args.arch)
    except UnknownArchError as exc:
        raise BadInput(f"--arch: {exc}") from exc
    rows: list[list[object]] = []
    for word, name in enumerate(WORD_NAMES):
        value = _word_value(name, getattr(args, name))
        for bit in range(64):
            if not value >> bit & 1:
                continue
            feature = by_bit(arch, word, bit, compat=args.compat)
            if feature is None:
                rows.append([name, bit, unknown_bit_name(word, bit), "", "unknown to the catalog"])
            else:
                rows.append([name, bit, feature.name, feature.macro, "security" if feature.security else ""])
    document = {
        "arch": arch,
        "compat": args.compat,
        "bits": [{"word": r[0], "bit": r[1], "name": r[2], "macro": r[3], "note": r[4]} for r in rows],
        "names": [str(r[2]) for r in rows],
    }
    emit(document, render_table(["word", "bit", "name", "macro", "note"], rows), args.output)
    return 0


def check(args: argparse.Namespace) -> int:
    mask = parse_mask_spec(args.mask)
    node = read_feature_file(args.node)
    reasons: list[str] = []
    missing: list[str] = []
    unobservable: list[str] = []
    if node.arch != mask.arch:
        reasons.append(f"the node is {node.arch}, the mask is {mask.arch}")
    else:
        lacking = mask - node.mask
        unobserved = set(node.unobserved)
        missing = [n for n in lacking.names() if n not in unobserved]
        unobservable = [n for n in lacking.names() if n in unobserved]
        if missing:
            reasons.append(f"the node lacks {len(missing)} feature(s) of the mask: {' '.join(missing)}")
    ok = not reasons
    notes = (
        [f"{node.source} cannot show {len(unobservable)} feature(s) of the mask either way (not counted as "
         f"missing): {' '.join(unobservable)}"]
        if unobservable
        else []
    )  # fmt: skip
    document = {"ok": ok, "mask": mask_document(mask), "node": node.source, "missing": missing,
                "unconfirmed": unobservable, "reasons": reasons, "notes": notes}  # fmt: skip
    verdict = "OK: a process holding this mask may run on this node" if ok else "NOT OK: " + "; ".join(reasons)
    text = f"{verdict}\nmask {mask.canonical()} ({mask.mask_id})\nnode {node.source}\n"
    emit(document, text + "".join(f"note: {n}\n" for n in notes), args.output)
    return 0 if ok else 1


def fallbacks(args: argparse.Namespace) -> int:
    """The env a container of a domain with ``--mask`` gets on ``--node`` (the webhook's own merge)."""
    mask = parse_mask_spec(args.mask)
    node = read_feature_file(args.node)
    if node.arch != mask.arch:
        raise BadInput(f"--node {args.node}: the node is {node.arch} but the mask is {mask.arch}")
    kinds: tuple[FallbackKind, ...] = tuple(args.fallback or FALLBACK_KINDS)
    dropped = (node.mask - mask).features()
    plan = plan_fallbacks(dropped, kinds, kept=mask.names())
    env = {var: plan.merge(var, None) for var in plan.variables()}
    cover = domain_coverage(dropped, kinds, cpuid_advertised=mask.arch != "arm64" or "cpuid" in mask)
    hidden = [f.name for f in dropped if f.security]
    warnings = ([f"the mask hides security feature(s) {' '.join(hidden)} of this node: a domain refuses it unless "
                 "allowHidingSecurityFeatures"] if hidden else [])  # fmt: skip
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.output == "env":
        sys.stdout.write("".join(f"{var}={shlex.quote(value)}\n" for var, value in env.items()))
        return 0
    document = {"mask": mask.canonical(), "node": node.source, "fallbacks": list(kinds), "env": env,
                "dropped": [f.name for f in dropped], "coverage": [c.to_dict() for c in cover],
                "warnings": warnings}  # fmt: skip
    rows = [[c.feature, "yes" if c.hidden_from_auxv else "no", c.channels, c.covered_by, len(c.uncovered)]
            for c in cover]  # fmt: skip
    table = ("".join(f"{var}={value}\n" for var, value in env.items()) + "\n"
             + render_table(["dropped", "hidden from auxv", "still visible via", "covered by", "uncovered runtimes"],
                            rows))  # fmt: skip
    emit(document, table, args.output)
    return 0


def auxv(args: argparse.Namespace) -> int:
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise BadInput(f"{args.file}: cannot read: {exc.strerror or exc}") from exc
    try:
        arch = normalize_arch(args.arch)
        vector = parse_auxv(data, source=args.file, layout=args.layout)
    except (AuxvParseError, UnknownArchError) as exc:
        raise BadInput(str(exc)) from exc
    mask = FeatureMask.from_words(arch, *vector.hwcap)
    entries = [[at_name(t), t, f"{v:#x}"] for t, v in vector.entries]
    document = {"source": args.file, "layout": vector.layout, "entries": [
        {"type": e[0], "number": e[1], "value": e[2]} for e in entries
    ], "hwcap": mask_document(mask), "warnings": list(vector.warnings)}  # fmt: skip
    table = (
        f"{args.file}: layout {vector.layout}, {len(vector.entries)} entries\n"
        + render_table(["type", "number", "value"], entries)
        + f"\nhwcap features: {' '.join(mask.names()) or '<none>'}\n"
        + "".join(f"warning: {w}\n" for w in vector.warnings)
    )
    emit(document, table, args.output)
    return 0


def simulate(args: argparse.Namespace) -> int:
    mask = parse_mask_spec(args.mask)
    node = read_feature_file(args.node)
    if node.arch != mask.arch:
        raise BadInput(f"--node {args.node}: the node is {node.arch} but the mask is {mask.arch}")
    try:
        result = validate(mask, NodeSpec.from_mask(args.node, node.mask, patch=args.kernel))
    except ValueError as exc:  # ModelError: e.g. a HWCAP word this arch's kernel does not have
        raise BadInput(f"--mask: {exc}") from exc
    document = result.to_dict()
    processes = [
        [p.name, p.pid, p.abi, p.parent, "yes" if p.masked else "no",
         _words(p.seen),
         "yes" if p.as_expected else "NO"]
        for p in result.processes
    ]  # fmt: skip
    trace = [[e.pid, e.name, e.op, e.result, "yes" if e.user_hwcap else "no", _words(e.hwcap), e.note]
             for e in result.trace]
    findings = [[f.severity, f.code, f.message] for f in result.findings]
    table = (
        f"node {args.node} ({node.arch}, kernel patch {args.kernel})   mask {mask.mask_id}\n\n"
        + render_table(["pid", "process", "op", "result", "inherits", "hwcap words seen", "note"], trace) + "\n"
        + render_table(["process", "pid", "abi", "parent", "inherits", "hwcap words seen", "as expected"],
                       processes) + "\n"
        + (render_table(["severity", "finding", "message"], findings) if findings else "no findings\n")
    )  # fmt: skip
    emit(document, table, args.output)
    return 0 if result.ok else 1


def _words(words: tuple[int, ...]) -> str:
    """Hex HWCAP words, zero words after AT_HWCAP left out (a table cell stays readable)."""
    shown = [f"{name}={w:#x}" for i, (name, w) in enumerate(zip(WORD_NAMES, words, strict=False)) if w or i == 0]
    return " ".join(shown)


__all__ = ["auxv", "baseline", "check", "explain", "explain_preset", "fallbacks", "mask_document", "simulate"]
