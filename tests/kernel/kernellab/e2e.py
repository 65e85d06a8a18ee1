"""Issue 7 item 4 on emulated nodes: agent reading -> operator baseline -> hwcap-exec on the richest model.

Each booted CPU model is a "node". What its /init read from /proc/self/auxv goes through the node agent's
own parser and annotation format, and what ``hwcap-exec --probe`` answered in that guest becomes the agent's
inheritance annotation. The operator's pure functions turn those Node objects into a MigrationDomain's
Auto baseline. That mask is then applied by the real ``/hwcap-exec`` on the model with the most features,
and the entrypoint, its child and its grandchild must see exactly the mask.

Not covered here (no cluster in the guest): the agent process itself (``agent.run``) and the kopf reconciler;
the same pure functions they call are used instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hwcap_operator import keys
from hwcap_operator.agent.report import AgentReport, Inheritance, report_annotations
from hwcap_operator.auxv import parse_auxv
from hwcap_operator.domain import api
from hwcap_operator.domain.baseline import target_baseline
from hwcap_operator.domain.node_features import NodeFeatures, node_features
from hwcap_operator.execmodel.kernel import Binary
from hwcap_operator.execmodel.scenarios import Scenario, Step
from hwcap_operator.mask import FeatureMask

from .build import LabError
from .guest import CpuModel, boot, initramfs_for
from .lab import ModelRun
from .scenariofile import scenario_files


def agent_report(run: ModelRun) -> AgentReport:
    """The agent's report for one guest: its /init's /proc/self/auxv parsed by the agent's parser."""
    auxv = probe = None
    for r in run.boot.records:
        if r.get("scn") == "baseline" and r.get("op") == "observe" and r.get("abi") == "native":
            auxv = bytes.fromhex(r["auxv"])
        if r.get("scn") == "baseline" and r.get("event") == "probe":
            probe = r
    if auxv is None:
        raise LabError(f"{run.model.key}/{run.variant}: no baseline /proc/self/auxv in the console")
    vector = parse_auxv(auxv, source=f"{run.model.key} /proc/self/auxv")
    inheritance: Inheritance = "unknown"
    detail = "the guest did not run hwcap-exec --probe"
    if probe is not None:
        word = str(probe.get("output", "")).split(":")[0].strip()
        inheritance = word if word in ("supported", "unsupported") else "unknown"  # type: ignore[assignment]
        detail = f"hwcap-exec --probe exit {probe.get('exit')}: {probe.get('output')}"
    release = f"6.12-lab-{run.variant}"
    return AgentReport(run.model.arch, vector.hwcap, release, inheritance, detail)  # type: ignore[arg-type]


def node_object(run: ModelRun, report: AgentReport) -> dict[str, Any]:
    """A Node as the API server would hold it once the agent annotated it."""
    name = f"lab-{run.variant}-{run.model.name}".lower()
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/arch": run.model.arch, "kubernetes.io/hostname": name},
            "annotations": report_annotations(report),
        },
        "status": {"nodeInfo": {"architecture": run.model.arch, "kernelVersion": report.kernel_release}},
    }


@dataclass(frozen=True)
class DomainBaseline:
    nodes: tuple[NodeFeatures, ...]
    mask: FeatureMask
    richest: ModelRun


def domain_baseline(runs: Sequence[ModelRun], arch: str = "arm64") -> DomainBaseline:
    """The operator's Auto baseline over the given nodes (one per CPU model) and the richest of them."""
    chosen = [r for r in runs if r.model.arch == arch]
    if not chosen:
        raise LabError(f"no {arch} guest to build a domain from")
    nodes = tuple(node_features(node_object(r, agent_report(r))) for r in chosen)
    bad = [f"{n.name}: {'; '.join(n.errors)}" for n in nodes if not n.usable]
    if bad:
        raise LabError("the operator rejected lab nodes: " + " | ".join(bad))
    spec = api.MigrationDomainSpec.model_validate(
        {"arch": arch, "workloads": {"namespaceSelector": {"matchLabels": {"hwcap-lab": "yes"}}}}
    )
    mask = target_baseline(spec, nodes)
    if mask is None:
        raise LabError("the operator computed no baseline")
    richest = max(chosen, key=lambda r: sum(bin(w).count("1") for w in r.baseline()[0]))
    return DomainBaseline(nodes, mask, richest)


def init_step_scenario(mask: FeatureMask) -> Scenario:
    """hwcap-exec with the domain's words as uid 65534; the entrypoint forks a child that forks a grandchild."""
    native = Binary("/probe")
    words = tuple(mask.hwcap[:2])
    return Scenario(
        "domain-init-step",
        "the operator's baseline applied by hwcap-exec; entrypoint, child and grandchild",
        (
            Step("spawn", "entry", binary=native, uid=65534),
            Step("hwcap_exec", "entry", mask=words, binary=native),
            Step("observe", "entry"),
            Step("fork", "entry", child="child"),
            Step("exec", "child", binary=native),
            Step("fork", "child", child="grandchild"),
            Step("exec", "grandchild", binary=native),
            Step("observe", "child"),
            Step("observe", "grandchild"),
        ),
    )


def run_init_step(domain: DomainBaseline) -> ModelRun:
    """Boot the richest model again with only the domain's init-step scenario."""
    r = domain.richest
    model: CpuModel = r.model
    scenarios = [init_step_scenario(domain.mask)]
    initrd = initramfs_for(model.arch, scenario_files(model.arch, scenarios))
    result = boot(model, r.kernel.image, initrd)
    return ModelRun(r.variant, model, r.kernel, result, scenarios)


def observed_words(run: ModelRun, scenario: str) -> dict[str, tuple[int, ...]]:
    """AT_HWCAP, AT_HWCAP2 each named process of the scenario saw on its stack."""
    return {
        r["proc"]: tuple(int(w, 16) for w in r["stack"])
        for r in run.boot.records
        if r.get("scn") == scenario and r.get("op") == "observe"
    }


__all__ = ["DomainBaseline", "agent_report", "domain_baseline", "keys", "run_init_step"]
