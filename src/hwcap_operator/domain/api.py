"""The MigrationDomain API (hwcap.dev/v1alpha1): pydantic models that ARE the CRD's schema.

The CRD YAML in ``crds/`` is generated from these classes (:mod:`hwcap_operator.domain.crdgen`), so a field,
its default, enum, pattern and bound are written once, here. Field names are camelCase on the wire
(aliases) and snake_case in Python. Cross-field rules are written twice on purpose: as a pydantic validator
(pure code, CLI, tests) and as a CEL ``x-kubernetes-validations`` rule (so ``kubectl apply`` rejects them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator
from pydantic.alias_generators import to_camel

from hwcap_operator import keys, presets
from hwcap_operator.arch import Arch

#: How many node or pod names the status lists before it only counts (an object must stay far below 1 MiB).
NAME_CAP = 50
#: How many missing features one excluded node's entry lists.
FEATURE_CAP = 64
#: How many target nodes one pod-impact entry names.
MOVE_TARGET_CAP = 10

#: A canonical feature name (the /proc/cpuinfo spelling, lowercase) as users write it in a spec.
FeatureName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")]
#: A Kubernetes label key ("prefix/name" or "name").
LabelKey = Annotated[str, Field(min_length=1, max_length=317)]
LabelValue = Annotated[str, Field(max_length=63)]
NodeName = Annotated[str, Field(min_length=1, max_length=253)]
NamespaceName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
HexWord = Annotated[str, Field(pattern=r"^0x[0-9a-f]{1,16}$")]
Reason = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")]


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields rejected (the apiserver prunes them anyway)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, use_enum_values=True
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict a patch or manifest carries (camelCase, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---------------------------------------------------------------------------------------------- selectors


class LabelSelectorRequirement(_Model):
    """One ``matchExpressions`` term, exactly as in ``metav1.LabelSelectorRequirement``."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
                    "message": "values must be non-empty for In/NotIn and empty for Exists/DoesNotExist",
                }
            ]
        }
    )

    key: LabelKey = Field(description="The label key the term applies to, e.g. `topology.kubernetes.io/zone`.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In/NotIn: the label's value is (not) one of `values`. Exists/DoesNotExist: the key is "
        "(not) set; `values` must then be empty."
    )
    values: list[LabelValue] = Field(
        default_factory=list,
        max_length=256,
        description="Label values for In/NotIn (at least one), e.g. `[eu-1a, eu-1b]`; empty for Exists/DoesNotExist.",
    )

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        wants_values = self.operator in ("In", "NotIn")
        if wants_values != bool(self.values):
            raise ValueError(
                f"matchExpressions key {self.key!r}: operator {self.operator} "
                + ("needs at least one value" if wants_values else "takes no values")
            )
        return self


class LabelSelector(_Model):
    """A ``metav1.LabelSelector``: all ``matchLabels`` and all ``matchExpressions`` must hold (empty = all)."""

    match_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Labels that must all be set to exactly these values, e.g. "
        "`{node.kubernetes.io/instance-type: c7g.large}`.",
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, max_length=64, description="Set-based terms that must all hold."
    )


# -------------------------------------------------------------------------------------------------- spec


class Workloads(_Model):
    """Which pods get the init step (consumed by the admission webhook)."""

    namespace_selector: LabelSelector = Field(
        description="Namespaces whose pods are wrapped. Required: `{}` means every namespace that is not "
        "excluded (the operator's, NFD's and kube-system never are)."
    )
    pod_selector: LabelSelector = Field(
        default_factory=LabelSelector, description="Pods within those namespaces; empty selects all."
    )
    excluded_namespaces: list[NamespaceName] = Field(
        default_factory=list,
        max_length=256,
        description="Extra namespaces never touched, on top of the operator's, NFD's and kube-system, e.g. "
        "`[batch, ci-runners]`.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    unresolved_entrypoint: Literal["Deny", "Warn"] = Field(
        default="Deny",
        description="A container without `command` whose image entrypoint cannot be resolved: deny the pod, "
        "or admit it with that container unwrapped plus a warning and an Event.",
    )
    opt_out: Literal["Allow", "Forbid"] = Field(
        default="Allow",
        description="Whether a pod may opt out with `hwcap.dev/inject: \"false\"` (any tenant can set it). "
        "`Allow`: it runs unmasked and is listed in status.podImpact.unmasked; `Forbid`: the webhook denies it "
        "with a message naming this domain.",
    )


class Baseline(_Model):
    """Where the mask comes from before leveling, ``require`` and ``exclude`` apply."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                # has(self.mode): the apiserver checks these rules against a default value as written, before
                # nested defaults apply (crdgen also writes defaults in full; this keeps a hand edit safe).
                {
                    "rule": "!has(self.mode) || self.mode != 'Preset' || has(self.preset)",
                    "message": "mode Preset needs preset",
                },
                {
                    "rule": "!has(self.mode) || self.mode != 'Explicit' "
                    "|| (has(self.features) && size(self.features) > 0)",
                    "message": "mode Explicit needs features",
                },
                {
                    "rule": "(has(self.mode) && self.mode == 'Preset') || !has(self.preset)",
                    "message": "preset is only allowed with mode Preset",
                },
            ]
        }
    )

    mode: Literal["Auto", "Preset", "Explicit"] = Field(
        default="Auto",
        description="Auto: the features every member has. Preset: a named CPU level or core. "
        "Explicit: exactly the listed features.",
    )
    preset: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Preset name when mode is Preset: an x86-64 psABI level, an x86 CPU model, an Arm "
        "architecture version's mandatory set, or an Arm core (QEMU's model; `hwcapctl explain presets`).",
        json_schema_extra={"enum": list[JsonValue](presets.preset_names())},
    )
    features: list[FeatureName] = Field(
        default_factory=list,
        max_length=512,
        description="The mask's features (canonical /proc/cpuinfo names) when mode is Explicit, e.g. "
        "`[fp, asimd, atomics]`.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @model_validator(mode="after")
    def _mode_fields(self) -> Baseline:
        if self.mode == "Preset" and not self.preset:
            raise ValueError("baseline.mode Preset needs baseline.preset")
        if self.mode == "Explicit" and not self.features:
            raise ValueError("baseline.mode Explicit needs baseline.features")
        if self.preset is not None and self.preset not in presets.preset_names():
            raise ValueError(f"baseline.preset {self.preset!r} unknown; known: {', '.join(presets.preset_names())}")
        if self.mode != "Preset" and self.preset is not None:
            raise ValueError("baseline.preset is only allowed with baseline.mode Preset")
        return self


class Leveling(_Model):
    """How the mask evolves as nodes come and go (the Deckhouse/EVC lesson: never move it silently)."""

    mode: Literal["Frozen", "Follow"] = Field(
        default="Frozen",
        description="Frozen: the mask is fixed once established and changes only on a re-level request, a "
        "baseline change, or Lower. Follow: recomputed on every membership change.",
    )
    relevel_generation: int = Field(
        default=0,
        ge=0,
        description="Bump to recompute a Frozen mask from the current nodes (pods keep their old mask until "
        "restarted; status.podImpact says where they may still run).",
    )
    on_missing_features: Literal["Exclude", "Lower"] = Field(
        default="Exclude",
        description="A node lacking features of the mask: Exclude it (the mask stays), or Lower the mask to "
        "what the node has.",
    )


class Enforcement(_Model):
    """How strongly the mask is enforced (consumed by the webhook and reported in status)."""

    kernel_inheritance: Literal["Required", "Preferred", "Off"] = Field(
        default="Preferred",
        description="Required: nodes whose kernel is not known to inherit HWCAPs across exec are excluded. "
        "Preferred: they stay members and are listed in status. Off: not checked.",
    )
    userspace_fallbacks: list[
        Literal["glibcTunables", "goDebug", "opensslIa32cap", "javaToolOptions", "numpyCpuFeatures",
                "opensslArmcap", "openblasCoretype", "onednnMaxCpuIsa", "mklEnableInstructions"]
    ] = Field(
        default_factory=list,
        max_length=9,
        description="Environment-based fallbacks derived from the dropped features (GLIBC_TUNABLES, GODEBUG, "
        "OPENSSL_ia32cap, JAVA_TOOL_OPTIONS, NPY_DISABLE_CPU_FEATURES, OPENSSL_armcap, OPENBLAS_CORETYPE, "
        "ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS); the only enforcement for x86 CPUID "
        "features HWCAPs cannot carry, and on arm64 for kernels that do not pass the mask past the first exec. "
        "javaToolOptions makes every JVM print one 'Picked up JAVA_TOOL_OPTIONS' line on stderr.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    node_leveling: Literal["Off", "Report", "Required"] = Field(
        default="Off",
        description="arm64 ID-register overrides (boot parameters such as `arm64.nosve`) that take a member down to "
        "the mask on its own kernel, also for MRS. Report: status.nodeLeveling says per member what it needs. "
        "Required: a member still above the mask is excluded with the exact command line it needs. Off: not "
        "computed.",
    )
    id_register_access: Literal["Auto", "Keep", "Clear"] = Field(
        default="Auto",
        description="arm64: whether the mask advertises HWCAP_CPUID (`cpuid`), which tells software it may read "
        "the ID registers with MRS; the kernel answers those reads with the node's own features, whatever the "
        "mask hides. Auto: cleared whenever a newly computed mask hides a feature some member has. Keep: "
        "advertised anyway (status says which hidden features the ID registers reveal). Clear: never advertised. "
        "Applies when a mask is computed; changing it re-levels a Frozen mask like a baseline change.",
    )


class MigrationDomainSpec(_Model):
    """A set of nodes of one arch whose pods all start under one common feature mask."""

    arch: Arch = Field(description="Kubernetes GOARCH; nodes of any other arch are never members.")
    node_selector: LabelSelector = Field(
        default_factory=LabelSelector, description="Candidate nodes (ANDed with kubernetes.io/arch)."
    )
    workloads: Workloads
    baseline: Baseline = Field(default_factory=Baseline)
    require: list[FeatureName] = Field(
        default_factory=list,
        max_length=256,
        description="Features every member must have, e.g. `[atomics, sve]`; a node lacking any is excluded "
        "with the missing ones.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    exclude: list[FeatureName] = Field(
        default_factory=list,
        max_length=256,
        description="Features never advertised, even when every member has them, e.g. `[sve2, sme]`.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    allow_hiding_security_features: bool = Field(
        default=False,
        description="false: a mask that hides a security feature (PAC, BTI, MTE, shadow stack, ...) that a "
        "member has is refused.",
    )
    leveling: Leveling = Field(default_factory=Leveling)
    enforcement: Enforcement = Field(default_factory=Enforcement)

    @model_validator(mode="after")
    def _require_not_excluded(self) -> MigrationDomainSpec:
        both = sorted(set(self.require) & set(self.exclude))
        if both:
            raise ValueError(f"features both required and excluded: {', '.join(both)}")
        return self


# ------------------------------------------------------------------------------------------------ status


class Condition(_Model):
    """``metav1.Condition``: lastTransitionTime moves only when ``status`` changes."""

    type: str = Field(
        min_length=1,
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Ready (a mask is published and the webhook injects it), MaskValid, Degraded or "
        "KernelSupport; e.g. `kubectl wait --for=condition=Ready migrationdomain/<name>`.",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation the condition was computed from."
    )
    last_transition_time: datetime = Field(
        description="When `status` last changed (RFC 3339, e.g. `2026-01-31T12:00:00Z`)."
    )
    reason: Reason = Field(description="CamelCase machine-readable cause, e.g. `MaskPublished`.")
    message: str = Field(max_length=32768, description="Human-readable details.")


class MaskBasis(_Model):
    """What the published mask was computed from: a change here (not a node change) re-levels a Frozen mask."""

    baseline_mode: Literal["Auto", "Preset", "Explicit"] = Field(description="spec.baseline.mode at the time.")
    fingerprint: str = Field(max_length=64, description="Digest of arch, baseline and exclude.")
    relevel_generation: int = Field(ge=0, description="spec.leveling.relevelGeneration at the time.")


class MaskStatus(_Model):
    """The published mask, each HWCAP word in hex, with names and a content id."""

    id: str = Field(max_length=64, description="Short content id, recorded on every injected pod, e.g. `51db386f72b6`.")
    canonical: str = Field(
        max_length=16384,
        description="Canonical string, `<arch>:hwcap=0x..;hwcap2=0x..;hwcap3=0x..;hwcap4=0x..`, e.g. "
        "`arm64:hwcap=0x103;hwcap2=0x0;hwcap3=0x0;hwcap4=0x0`; `hwcapctl check --mask` reads it.",
    )
    hwcap: HexWord = Field(description="AT_HWCAP word the mask advertises, in hex, e.g. `0x1fff`.")
    hwcap2: HexWord = Field(description="AT_HWCAP2 word, in hex (`0x0` where the arch has none).")
    hwcap3: HexWord = Field(description="AT_HWCAP3 word, in hex (`0x0` where the arch has none).")
    hwcap4: HexWord = Field(description="AT_HWCAP4 word, in hex (`0x0` where the arch has none).")
    cpuid: list[str] = Field(default_factory=list, description="x86 CPUID flags (not carried by HWCAPs).")
    features: list[str] = Field(default_factory=list, description="The advertised features by name.")
    popcount: int = Field(ge=0, description="How many features the mask advertises.")
    basis: MaskBasis


class NodeNames(_Model):
    """A count plus the first names (capped at NAME_CAP)."""

    count: int = Field(ge=0, description="How many nodes.")
    names: list[NodeName] = Field(
        default_factory=list, max_length=NAME_CAP, description=f"The first {NAME_CAP} node names, sorted."
    )


class ExcludedNode(_Model):
    """Why one selected node is not a member."""

    name: NodeName = Field(description="The Node's name.")
    reason: Reason = Field(description="CamelCase cause, e.g. `MissingMaskFeatures` or `KernelCannotInherit`.")
    message: str = Field(max_length=4096, description="Human-readable details.")
    missing_features: list[str] = Field(
        default_factory=list,
        max_length=FEATURE_CAP,
        description=f"Features of the mask or of spec.require the node lacks (the first {FEATURE_CAP}).",
    )


class NodeLevelingEntry(_Model):
    """What one member needs to look like the mask through every channel (arm64 ID-register overrides)."""

    name: NodeName = Field(description="The Node's name.")
    state: Literal["AtMask", "Levelled", "Available", "NotLevellable"] = Field(
        description="AtMask: nothing above the mask. Levelled: at the mask and booted with ID-register overrides "
        "(the agent read them in /proc/cmdline). Available: the parameters level it exactly. NotLevellable: "
        "features stay above the mask on its kernel (with or without the parameters)."
    )
    message: str = Field(max_length=4096, description="e.g. `levelling available: arm64.nosve arm64.nomops`.")
    parameters: list[str] = Field(
        default_factory=list, max_length=32, description="Boot parameters to append to its kernel command line."
    )
    remaining: list[str] = Field(
        default_factory=list,
        max_length=FEATURE_CAP,
        description=f"Features that stay above the mask even with the parameters (the first {FEATURE_CAP}).",
    )


class ExcludedNodes(_Model):
    """Selected nodes that are not members, with why."""

    count: int = Field(ge=0, description="How many selected nodes are excluded.")
    nodes: list[ExcludedNode] = Field(
        default_factory=list, max_length=NAME_CAP, description=f"The first {NAME_CAP} excluded nodes."
    )


class NodeSourceIssue(_Model):
    """A node whose feature sources were malformed, disagreed, or named features the catalog does not know."""

    name: NodeName = Field(description="The Node's name.")
    source: str = Field(max_length=32, description="Which source: `agent`, `nfd-nodefeature` or `nfd-labels`.")
    errors: list[str] = Field(default_factory=list, max_length=16, description="What was wrong with it.")
    unknown_features: list[str] = Field(
        default_factory=list, max_length=FEATURE_CAP, description="Feature names the catalog does not know."
    )


class KernelSupportStatus(_Model):
    """Members whose kernel cannot (or is not known to) inherit HWCAPs across exec."""

    unsupported: NodeNames = Field(description="Members whose kernel is known NOT to inherit HWCAPs across exec.")
    unknown: NodeNames = Field(description="Members whose kernel's behaviour is not known (no agent report).")


class PodImpactEntry(_Model):
    """One injected pod running under a mask other than the current one."""

    namespace: NamespaceName = Field(description="The pod's namespace.")
    name: str = Field(min_length=1, max_length=253, description="The pod's name.")
    mask_id: str = Field(max_length=64, description="The mask id the pod was started under.")
    node: str | None = Field(default=None, max_length=253, description="The node it runs on, once scheduled.")
    fits_node: bool | None = Field(default=None, description="Its mask still fits the node it runs on.")
    movable_to: int = Field(ge=0, description="Member nodes its mask fits.")
    movable_to_nodes: list[NodeName] = Field(
        default_factory=list, max_length=MOVE_TARGET_CAP, description=f"The first {MOVE_TARGET_CAP} of them."
    )


class UnmaskedPodEntry(_Model):
    """One running pod the domain selects that was not started under its mask."""

    namespace: NamespaceName = Field(description="The pod's namespace.")
    name: str = Field(min_length=1, max_length=253, description="The pod's name.")
    reason: Literal["NotInjected", "OptedOut"] = Field(
        description="`NotInjected`: admitted without the webhook (down under failurePolicy Ignore, or created "
        "before the domain or its namespace selection existed); `OptedOut`: `hwcap.dev/inject: \"false\"`."
    )
    node: str | None = Field(default=None, max_length=253, description="The node it runs on, once scheduled.")


class PodImpact(_Model):
    """Pods injected with an older mask id: whether they still fit, and where each may move; and pods of the
    domain that run without any mask at all."""

    stale_pods: int = Field(ge=0, description="Injected pods whose mask id is not the current one.")
    stranded_pods: int = Field(ge=0, description="Stale pods that fit no member node at all.")
    pods: list[PodImpactEntry] = Field(
        default_factory=list, max_length=NAME_CAP, description=f"The first {NAME_CAP} stale pods."
    )
    unmasked_pods: int = Field(
        default=0, ge=0, description="Running pods the domain selects that carry no mask of this domain."
    )
    unmasked: list[UnmaskedPodEntry] = Field(
        default_factory=list, max_length=NAME_CAP, description=f"The first {NAME_CAP} unmasked pods, with why."
    )


class ChannelCoverage(_Model):
    """Dropped features that the same channels still reveal and the same fallbacks of the domain cover."""

    features: list[str] = Field(max_length=512, description="The dropped features of this group.")
    channels: list[Literal["CPUID", "IDRegisters", "IDRegistersUnadvertised", "MIDR", "ProcCpuinfo"]] = Field(
        max_length=8,
        description="What still shows them to a process under the mask. CPUID: the x86 instruction (not trapped). "
        "IDRegisters: MRS of the arm64 ID registers, emulated by the kernel with the node's values, and the mask "
        "advertises HWCAP_CPUID. IDRegistersUnadvertised: the mask clears HWCAP_CPUID; only software ignoring the "
        "kernel's rule reads them. MIDR: the arm64 core's part number names its features. ProcCpuinfo: "
        "/proc/cpuinfo lists the node's features, not the mask.",
    )
    covered_by: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="The domain's spec.enforcement.userspaceFallbacks that switch them off in their runtime; "
        "empty: no runtime is told.",
    )


class MigrationDomainStatus(_Model):
    """Written only by the operator (status subresource)."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The spec generation this status was computed from."
    )
    mask: MaskStatus | None = Field(default=None, description="The published mask; absent until one is computed.")
    members: NodeNames | None = Field(
        default=None, description="Nodes that carry the domain's member label; the domain's pods run only there."
    )
    excluded: ExcludedNodes | None = Field(default=None, description="Selected nodes that are not members, with why.")
    dropped_features: list[str] = Field(
        default_factory=list, description="Features some member has that the mask does not advertise."
    )
    fallback_only_features: list[str] = Field(
        default_factory=list,
        description="Dropped features HWCAPs cannot hide (x86 CPUID); only userspace fallbacks enforce them.",
    )
    uncovered_features: list[str] = Field(
        default_factory=list,
        description="Fallback-only features none of spec.enforcement.userspaceFallbacks switches off: every runtime "
        "still sees them (CPUID). `hwcapctl explain --domain NAME` lists, per feature, the channels and runtimes.",
    )
    channel_coverage: list[ChannelCoverage] = Field(
        default_factory=list,
        max_length=64,
        description="The dropped features grouped by the channels that still reveal them and the fallbacks that "
        "cover them: one entry per distinct pair, so its size follows the feature catalog, never the node count. "
        "`hwcapctl explain --domain NAME` lists the runtimes per feature.",
    )
    kernel: KernelSupportStatus | None = None
    node_issues: list[NodeSourceIssue] = Field(
        default_factory=list,
        max_length=NAME_CAP,
        description="Nodes whose feature sources were malformed, disagreed or named unknown features.",
    )
    pod_impact: PodImpact | None = None
    node_leveling: list[NodeLevelingEntry] = Field(
        default_factory=list,
        max_length=NAME_CAP,
        description="With spec.enforcement.nodeLeveling Report or Required: per member (the first "
        f"{NAME_CAP}), the boot parameters that level it to the mask on its kernel, or why it cannot be.",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description="Ready, MaskValid, Degraded and KernelSupport (one per type; `kubectl wait` reads them).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class MigrationDomain(_Model):
    """The whole object, for tests, examples and the CLI (the apiserver owns metadata)."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = keys.API_VERSION
    kind: str = keys.KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: MigrationDomainSpec
    status: MigrationDomainStatus | None = None

    @model_validator(mode="after")
    def _is_a_domain(self) -> MigrationDomain:
        if (self.api_version, self.kind) != (keys.API_VERSION, keys.KIND):
            raise ValueError(
                f"expected apiVersion {keys.API_VERSION} kind {keys.KIND}, got {self.api_version} {self.kind}"
            )
        return self
