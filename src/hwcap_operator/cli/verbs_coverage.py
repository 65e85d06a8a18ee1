"""hwcapctl explain --domain NAME: per dropped feature, the channels that still show it and who is told to ignore it."""

from __future__ import annotations

import argparse
from typing import Any

from hwcap_operator import features
from hwcap_operator.admission.coverage import CHANNELS, channel_groups, domain_coverage
from hwcap_operator.cli import verbs_cluster
from hwcap_operator.cli.output import emit, render_table
from hwcap_operator.domain import api, id_registers


def coverage_document(
    name: str, spec: api.MigrationDomainSpec, status: api.MigrationDomainStatus | None
) -> dict[str, Any]:
    """The coverage of a domain's published dropped features under its own fallbacks (no cluster access)."""
    dropped_names = status.dropped_features if status is not None else []
    dropped = [f for n in dropped_names if (f := features.find(spec.arch, n)) is not None]
    kinds = list(spec.enforcement.userspace_fallbacks)
    # HWCAP_CPUID: what the published mask advertises (the ID-register policy may clear it)
    cpuid = status is None or status.mask is None or "cpuid" in status.mask.features
    cover = domain_coverage(dropped, kinds, cpuid_advertised=cpuid)
    groups = channel_groups(cover)
    cpuid_verdict = id_registers.from_status(spec, status)
    return {
        "domain": name,
        "arch": spec.arch,
        "userspaceFallbacks": kinds,
        "idRegistersAdvertised": cpuid if spec.arch == "arm64" else None,
        # why: spec.enforcement.idRegisterAccess and what the ID registers would show (docs/kernel.md#hwcap-cpuid)
        "idRegisters": None if cpuid_verdict is None else {
            "access": spec.enforcement.id_register_access, "outcome": cpuid_verdict.outcome,
            "revealed": list(cpuid_verdict.revealed), "note": cpuid_verdict.note()},
        "coverage": [c.to_dict() for c in cover],
        "channelCoverage": [{"features": f, "channels": list(ch), "coveredBy": list(k)} for ch, k, f in groups],
        "channels": {c: CHANNELS[c] for chans, _, _ in groups for c in chans},
        "uncoveredEverywhere": [c.feature for c in cover if not c.covered_by and not c.hidden_from_auxv],
    }


def explain_domain(args: argparse.Namespace) -> int:
    obj = verbs_cluster._get_domain(verbs_cluster._client(args), args.domain)
    spec, status = verbs_cluster._parse(obj)
    document = coverage_document(args.domain, spec, status)
    rows = [[c["feature"], "yes" if c["hiddenFromAuxv"] else "no", c["channels"], c["coveredBy"], len(c["uncovered"])]
            for c in document["coverage"]]  # fmt: skip
    kinds = ",".join(document["userspaceFallbacks"]) or "<none>"
    legend = "".join(f"  {ch}: {text}\n" for ch, text in document["channels"].items())
    id_line = f"ID REGISTERS {document['idRegisters']['note']}\n" if document["idRegisters"] else ""
    table = (f"DOMAIN {args.domain}   ARCH {spec.arch}   FALLBACKS {kinds}\n" + id_line
             + (render_table(["dropped", "hidden from auxv", "still visible via", "covered by", "uncovered runtimes"],
                             rows) + "channels:\n" + legend if rows else "no dropped features\n"))  # fmt: skip
    emit(document, table, args.output)
    return 0
