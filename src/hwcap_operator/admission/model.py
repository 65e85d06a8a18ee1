"""The webhook's inputs and output as plain values: what it knows of a domain, its configuration, its answer.

Built by the operator from the MigrationDomain status it already holds in memory (no API call on the
request path); everything here is immutable so one view can serve concurrent admissions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from hwcap_operator import features, keys
from hwcap_operator.admission.fallbacks import FallbackKind, FallbackPlan, plan_fallbacks
from hwcap_operator.admission.selection import LabelSelector
from hwcap_operator.domain.api import MigrationDomainSpec
from hwcap_operator.mask import FeatureMask

#: Value of the member label the reconciler puts on each member node.
MEMBER_LABEL_VALUE = "true"

UnresolvedPolicy = Literal["Deny", "Warn"]
OnFailure = Literal["fail", "warn"]
DecisionResult = Literal["mutated", "untouched", "denied"]


@dataclass(frozen=True)
class DomainView:
    """What the webhook needs to know about one MigrationDomain (from its spec and published status).

    ``hwcap`` are the mask words AT_HWCAP..AT_HWCAP4; ``mask_canonical`` is ``FeatureMask.canonical()``
    (recorded on the pod for restore checks); ``namespace_selector`` None selects no namespace.
    ``on_failure`` is passed to hwcap-exec: ``fail`` when the domain requires kernel inheritance
    (``enforcement.kernelInheritance: Required``), else ``warn`` so a prctl failure never stops a workload
    the domain only prefers to mask.
    """

    name: str
    arch: str
    hwcap: tuple[int, int, int, int]
    mask_id: str
    mask_canonical: str
    namespace_selector: LabelSelector | None
    pod_selector: LabelSelector = field(default_factory=LabelSelector)
    excluded_namespaces: frozenset[str] = frozenset()
    fallbacks: FallbackPlan = field(default_factory=FallbackPlan)
    unresolved_entrypoint: UnresolvedPolicy = "Deny"
    on_failure: OnFailure = "warn"
    #: ``spec.workloads.optOut: Forbid``: a selected pod that opts out is denied instead of running unmasked.
    forbid_opt_out: bool = False

    @classmethod
    def from_mask(
        cls,
        name: str,
        mask: FeatureMask,
        *,
        namespace_selector: LabelSelector | None,
        pod_selector: LabelSelector | None = None,
        excluded_namespaces: Iterable[str] = (),
        dropped_features: Iterable[str] = (),
        fallbacks: Iterable[FallbackKind] = (),
        unresolved_entrypoint: UnresolvedPolicy = "Deny",
        kernel_inheritance: Literal["Required", "Preferred", "Off"] = "Preferred",
        forbid_opt_out: bool = False,
    ) -> DomainView:
        """Build the view once per domain status change (not per admission).

        ``dropped_features`` are the status's dropped feature names (features some member has that the mask
        does not advertise); the fallback spellings come from the catalog, names it does not know are
        skipped (no runtime has a switch for them). ``kernel_inheritance`` is the domain's enforcement
        setting: only ``Required`` makes a failed prctl stop the container.
        """
        dropped = [f for n in dropped_features if (f := features.find(mask.arch, n)) is not None]
        return cls(
            name=name,
            arch=mask.arch,
            hwcap=mask.hwcap,
            mask_id=mask.mask_id,
            mask_canonical=mask.canonical(),
            namespace_selector=namespace_selector,
            pod_selector=pod_selector or LabelSelector(),
            excluded_namespaces=frozenset(excluded_namespaces),
            fallbacks=plan_fallbacks(dropped, fallbacks, kept=mask.names()),
            unresolved_entrypoint=unresolved_entrypoint,
            on_failure="fail" if kernel_inheritance == "Required" else "warn",
            forbid_opt_out=forbid_opt_out,
        )

    @classmethod
    def from_spec(
        cls, name: str, spec: MigrationDomainSpec, mask: FeatureMask, dropped_features: Iterable[str] = ()
    ) -> DomainView:
        """The view of a MigrationDomain from its spec and the mask/dropped features its status publishes."""
        workloads = spec.workloads
        return cls.from_mask(
            name,
            mask,
            namespace_selector=LabelSelector.parse(
                workloads.namespace_selector.to_wire(), field="spec.workloads.namespaceSelector"
            ),
            pod_selector=LabelSelector.parse(workloads.pod_selector.to_wire(), field="spec.workloads.podSelector"),
            excluded_namespaces=workloads.excluded_namespaces,
            dropped_features=dropped_features,
            fallbacks=spec.enforcement.userspace_fallbacks,
            unresolved_entrypoint=workloads.unresolved_entrypoint,
            kernel_inheritance=spec.enforcement.kernel_inheritance,
            forbid_opt_out=workloads.opt_out == "Forbid",
        )

    @property
    def member_label_key(self) -> str:
        """Node label carried by this domain's member nodes (``domain.hwcap.dev/<name>``)."""
        return f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{self.name}"

    def hwcap_words_text(self) -> str:
        """``0x..,0x..,0x..,0x..``: same format as the node agent's hwcap annotation, for direct comparison."""
        return ",".join(f"{w:#x}" for w in self.hwcap)


def _default_init_resources() -> dict[str, dict[str, str]]:
    # Namespaces with a ResourceQuota on limits reject containers without limits; copying <100 KiB is tiny.
    return {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}}


@dataclass(frozen=True)
class MutationConfig:
    """Operator-wide settings of the webhook (from the chart's values / command line)."""

    operator_namespace: str
    init_image: str
    nfd_namespace: str = keys.NFD_NAMESPACE_DEFAULT
    extra_excluded_namespaces: frozenset[str] = frozenset()
    init_image_pull_policy: str = "IfNotPresent"
    #: Where the operator image carries the shim.
    image_shim_path: str = "/usr/local/bin/hwcap-exec"
    #: The install step's argv; default ``<image_shim_path> --install <shim_path>`` (the shim copies itself,
    #: no shell or coreutils needed in the image). E.g. ``("cp", image_shim_path, shim_path)`` otherwise.
    install_argv: tuple[str, ...] | None = None
    init_container_name: str = "hwcap-install"
    volume_name: str = "hwcap-bin"
    mount_path: str = "/hwcap/bin"
    volume_size_limit: str = "16Mi"
    #: Non-root uid/gid of the install step (Pod Security "restricted" needs runAsNonRoot).
    run_as_user: int = 65532
    init_resources: Mapping[str, Mapping[str, str]] = field(default_factory=_default_init_resources)
    #: Wrap the pod's own init containers too: they run on the node like any other process of the pod.
    wrap_init_containers: bool = True

    @property
    def shim_path(self) -> str:
        """The shim's path inside every wrapped container."""
        return f"{self.mount_path.rstrip('/')}/hwcap-exec"

    @property
    def install_command(self) -> tuple[str, ...]:
        """The install step's command (see ``install_argv``)."""
        return self.install_argv or (self.image_shim_path, "--install", self.shim_path)


@dataclass(frozen=True)
class AdmissionEvent:
    """An Event the glue posts on the domain (the pod has no UID yet at admission time)."""

    domain: str
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class AdmissionDecision:
    """The webhook's answer for one pod: allowed or denied, a JSON patch, warnings and Events.

    ``result`` is the metric label; ``message`` is the denial text or why a pod was left untouched.
    """

    allowed: bool
    result: DecisionResult
    patch: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    warnings: tuple[str, ...] = ()
    events: tuple[AdmissionEvent, ...] = ()
    domain: str | None = None
