"""Every label, annotation and environment key the product reads or writes, defined once.

Keys are API: users select on them, restore checks read them, and the chart's RBAC names them.
"""

from __future__ import annotations

GROUP = "hwcap.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MigrationDomain"
PLURAL = "migrationdomains"

#: Node label a member node carries for each domain it belongs to (value "true"); the webhook's affinity uses it.
DOMAIN_MEMBER_LABEL_PREFIX = f"domain.{GROUP}/"

#: Node Feature Discovery label prefix for CPUID / HWCAP flags.
NFD_CPUID_LABEL_PREFIX = "feature.node.kubernetes.io/cpu-cpuid."
NFD_NAMESPACE_DEFAULT = "node-feature-discovery"
#: NFD's NodeFeature API (the objects nfd-worker publishes per node).
NFD_GROUP, NFD_VERSION, NFD_PLURAL = "nfd.k8s-sigs.io", "v1alpha1", "nodefeatures"

#: What the node agent publishes on its Node (annotations; see docs/concepts.md).
AGENT_ANNOTATION_PREFIX = f"agent.{GROUP}/"
AGENT_HWCAP_ANNOTATION = f"{AGENT_ANNOTATION_PREFIX}hwcap"  # "0x..,0x..,0x..,0x.." words AT_HWCAP..AT_HWCAP4
AGENT_KERNEL_RELEASE_ANNOTATION = f"{AGENT_ANNOTATION_PREFIX}kernel-release"
AGENT_INHERITANCE_ANNOTATION = f"{AGENT_ANNOTATION_PREFIX}hwcap-inheritance"  # supported|unsupported|unknown
#: arm64 ID-register overrides in the node's /proc/cmdline, space-separated, "" = none (docs/kernel.md#idreg-override)
AGENT_IDREG_OVERRIDES_ANNOTATION = f"{AGENT_ANNOTATION_PREFIX}idreg-overrides"
#: Label of the NFD NodeFeature objects the agent publishes (agent.nodeFeature.enabled); the operator skips them.
NODEFEATURE_PUBLISHER_LABEL = f"{GROUP}/published-by"

#: Pod annotations written by the webhook (what a restore check reads) and the per-pod opt-out.
POD_DOMAIN_ANNOTATION = f"{GROUP}/domain"
POD_MASK_ID_ANNOTATION = f"{GROUP}/mask-id"
POD_MASK_ANNOTATION = f"{GROUP}/mask"
POD_OPT_OUT_ANNOTATION = f"{GROUP}/inject"  # "false" opts a pod out
POD_HWCAP_WORDS_ANNOTATION = f"{GROUP}/hwcap"  # "0x..,0x..,0x..,0x.." like AGENT_HWCAP_ANNOTATION
POD_UNWRAPPED_ANNOTATION = f"{GROUP}/unwrapped"  # comma list of containers admitted without the wrapper
#: Per-container entrypoint override, key + container name; value: JSON list (the image ENTRYPOINT).
POD_ENTRYPOINT_ANNOTATION_PREFIX = f"{GROUP}/entrypoint."

#: Annotation on the MutatingWebhookConfiguration: the chart's webhook entry (JSON) the operator copies for
#: each domain's entry, kept because the operator replaces the entries themselves.
WEBHOOK_TEMPLATE_ANNOTATION = f"{GROUP}/webhook-template"

#: Environment variables injected into wrapped containers.
ENV_DOMAIN = "HWCAP_DOMAIN"
ENV_MASK_ID = "HWCAP_MASK_ID"

#: Node label the dev cluster's fake nodes carry: the name of the real CPU dump they were made from.
DEVCLUSTER_PROFILE_LABEL = f"{GROUP}/test-profile"
