"""Moving a running pod to another node: may it go there, and in which order the steps run (pure).

The decision is the one ``hwcapctl check --domain --pod --node`` prints (:func:`move_verdict`; its messages
are that command's), plus membership for ``migrate``: the target must carry the domain's member label, since
only members are guaranteed to stay compatible as the domain's mask evolves.

:func:`run_migration` is the order that keeps the source safe: checkpoint (the runtime leaves the source
running), build the checkpoint image, restore on the target, confirm the restored container runs, and only
then delete the source; last, remove the checkpoint archives and images, which hold the containers' memory
(unless asked to keep them). A failing step stops the run, undoes what the earlier steps made on the target
side, leaves the source pod as it was, and keeps the archives and images, naming them. The steps themselves
are I/O (kube/migrate.py); this module only calls them through :class:`MigrationSteps`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hwcap_operator import keys
from hwcap_operator.domain.node_features import NodeFeatures
from hwcap_operator.mask import FeatureMask, MaskParseError

#: The annotation CRI-O reads to recognise a checkpoint image and the container it restores (containerd
#: v2.4.2's CRI has no restore-from-image path; the annotation is what the image carries either way).
CHECKPOINT_NAME_ANNOTATION = "io.kubernetes.cri-o.annotations.checkpoint.name"

#: Set on a restored pod: the node and pod it was checkpointed from.
MIGRATED_FROM_ANNOTATION = f"{keys.GROUP}/migrated-from"

#: Step names, in order, as progress lines and errors show them.
STEPS = ("checkpoint", "image", "restore", "confirm", "delete-source", "clean-up")


class PodMaskUnreadable(ValueError):
    """The pod's recorded mask annotation is missing or does not parse."""


@dataclass(frozen=True)
class MoveVerdict:
    """The pod's recorded mask and every reason it may not move to the node (none: it may)."""

    mask: FeatureMask
    reasons: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.reasons


def move_verdict(pod_ref: str, annotations: Mapping[str, str], domain: str, node_name: str,
                 target: NodeFeatures) -> MoveVerdict:
    """May the pod ``pod_ref`` (injected by ``domain``, its mask in its annotations) run on ``target``."""
    reasons: list[str] = []
    if annotations.get(keys.POD_DOMAIN_ANNOTATION) != domain:
        reasons.append(f"pod {pod_ref} was not injected by domain {domain} "
                       f"({keys.POD_DOMAIN_ANNOTATION}={annotations.get(keys.POD_DOMAIN_ANNOTATION)!r})")  # fmt: skip
    try:
        mask = FeatureMask.parse(annotations.get(keys.POD_MASK_ANNOTATION, ""))
    except (MaskParseError, ValueError) as exc:
        raise PodMaskUnreadable(f"pod {pod_ref}: annotation {keys.POD_MASK_ANNOTATION} unreadable: {exc}") from exc
    if target.mask is None or not target.usable:
        reasons.append(f"node {node_name} has no usable feature data: {'; '.join(target.errors)}")
    elif target.arch != mask.arch:
        reasons.append(f"node {node_name} is {target.arch}, the pod's mask is {mask.arch}")
    else:
        missing = (mask - target.mask).names()
        if missing:
            reasons.append(f"node {node_name} lacks {' '.join(missing)}")
    return MoveVerdict(mask, tuple(reasons))


def membership_reason(domain: str, node_name: str, node_labels: Mapping[str, str],
                      excluded_because: str | None = None) -> str | None:
    """Why ``node_name`` is not a member of ``domain`` (None when it is): the domain's label decides."""
    if node_labels.get(f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{domain}") == "true":
        return None
    label = f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{domain}"
    why = f": {excluded_because}" if excluded_because else ""
    return f"node {node_name} is not a member of domain {domain} (no label {label}){why}"


#: Tries of one container's checkpoint when the runtime fails it transiently (a CRIU dump failed once in ~20
#: demo runs, with the source untouched; the next try succeeded).
CHECKPOINT_TRIES = 2


def _checkpoint(steps: MigrationSteps, request: MigrationRequest, container: str,
                say: Callable[[str, str], None]) -> str:  # fmt: skip
    for attempt in range(1, CHECKPOINT_TRIES + 1):
        try:
            return steps.checkpoint(request, container)
        except StepFailed as exc:
            if not exc.transient or attempt == CHECKPOINT_TRIES:
                raise
            say("checkpoint", f"{container}: {exc}; the source kept running, trying once more")
    raise AssertionError("unreachable")


def checkpoint_api_path(node: str, namespace: str, pod: str, container: str) -> str:
    """The kubelet checkpoint endpoint, reached through the API server's ``nodes/proxy`` subresource."""
    return f"/api/v1/nodes/{node}/proxy/checkpoint/{namespace}/{pod}/{container}"


def checkpoint_image_annotations(container: str) -> dict[str, str]:
    """The manifest annotations of a checkpoint image (what CRI-O's restore looks for)."""
    return {CHECKPOINT_NAME_ANNOTATION: container}


@dataclass(frozen=True)
class MigrationRequest:
    """One pod to move: where it runs, where it goes, which containers' state travels."""

    namespace: str
    pod: str
    containers: tuple[str, ...]
    source_node: str
    target_node: str
    #: Leave the archives and checkpoint images in place after a migration (they hold the containers' memory:
    #: by default a completed migration removes them).
    keep_checkpoint: bool = False


class StepFailed(RuntimeError):
    """A step could not be done; ``step`` names it (one of :data:`STEPS`), the message says why."""

    def __init__(self, step: str, message: str, *, transient: bool = False) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
        #: Worth one more try with nothing undone first (e.g. a checkpoint the runtime failed with a server
        #: error: CRIU dumps with --leave-running, so the source was never stopped).
        self.transient = transient


class MigrationSteps(Protocol):
    """The I/O of a migration, one method per step; each raises :class:`StepFailed` with a clear message."""

    def checkpoint(self, request: MigrationRequest, container: str) -> str:
        """Checkpoint ``container`` leaving it running; return the archive's location on the source node."""

    def build_image(self, request: MigrationRequest, container: str, archive: str) -> str:
        """Turn the archive into a checkpoint image in the registry; return its reference."""

    def restore(self, request: MigrationRequest, images: Mapping[str, str]) -> str:
        """Restore the containers from ``images`` on the target; return what was created there (a name)."""

    def confirm(self, request: MigrationRequest, restored: str) -> None:
        """Return once the restored containers run on the target; raise when they do not."""

    def undo_restore(self, request: MigrationRequest, restored: str) -> None:
        """Remove what :meth:`restore` created (the run failed after it)."""

    def delete_source(self, request: MigrationRequest) -> None:
        """Delete the source pod (only after the restore is confirmed)."""

    def clean_up(self, request: MigrationRequest, archives: Mapping[str, str], images: Mapping[str, str]) -> list[str]:
        """Remove the archives and the checkpoint images once the move is done; return what is left, each with
        why (the migration succeeded either way)."""


@dataclass
class MigrationOutcome:
    """What ran: the steps done in order, the images and restored object, and the failure if any."""

    done: list[str] = field(default_factory=list)
    archives: dict[str, str] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    #: Checkpoint archives and images that still exist when the run ends (kept, or not removable), with why.
    kept: list[str] = field(default_factory=list)
    restored: str | None = None
    failed: StepFailed | None = None
    source_untouched: bool = True

    @property
    def ok(self) -> bool:
        return self.failed is None


def run_migration(request: MigrationRequest, steps: MigrationSteps,
                  progress: Callable[[str], None] = lambda line: None) -> MigrationOutcome:
    """Run the steps in order; on the first failure undo the target side and keep the source pod as it is."""
    outcome = MigrationOutcome()

    def step(name: str, what: str) -> None:
        progress(f"[{len(outcome.done) + 1}/{len(STEPS)}] {name}: {what}")

    try:
        step("checkpoint", f"{request.namespace}/{request.pod} on {request.source_node} "
                           f"({', '.join(request.containers)}; the source keeps running)")  # fmt: skip
        for container in request.containers:
            outcome.archives[container] = _checkpoint(steps, request, container, step)
        outcome.done.append("checkpoint")
        step("image", "checkpoint archives into checkpoint images in the registry")
        for container in request.containers:
            outcome.images[container] = steps.build_image(request, container, outcome.archives[container])
        outcome.done.append("image")
        step("restore", f"on {request.target_node}")
        outcome.restored = steps.restore(request, outcome.images)
        outcome.done.append("restore")
        step("confirm", f"{outcome.restored} runs on {request.target_node}")
        steps.confirm(request, outcome.restored)
        outcome.done.append("confirm")
        step("delete-source", f"{request.namespace}/{request.pod} on {request.source_node}")
        outcome.source_untouched = False
        steps.delete_source(request)
        outcome.done.append("delete-source")
    except StepFailed as exc:
        outcome.failed = exc
        if outcome.restored is not None and "delete-source" not in outcome.done and outcome.source_untouched:
            progress(f"undo: removing {outcome.restored} from {request.target_node}; the source keeps running")
            try:
                steps.undo_restore(request, outcome.restored)
            except StepFailed as undo:
                progress(f"undo failed, remove it by hand: {undo}")
        outcome.kept = _checkpoint_files(request, outcome)
        if outcome.kept:
            progress(f"kept (they hold the containers' memory; delete them when done): {'; '.join(outcome.kept)}")
        return outcome
    if request.keep_checkpoint:
        outcome.kept = _checkpoint_files(request, outcome)
        step("clean-up", f"kept, as asked: {'; '.join(outcome.kept)}")
    else:
        step("clean-up", "removing the checkpoint archives and images (they hold the containers' memory)")
        outcome.kept = steps.clean_up(request, outcome.archives, outcome.images)
        for left in outcome.kept:
            progress(f"clean-up: left {left}")
    outcome.done.append("clean-up")
    return outcome


def _checkpoint_files(request: MigrationRequest, outcome: MigrationOutcome) -> list[str]:
    return ([f"archive {a} on node {request.source_node}" for a in outcome.archives.values()]
            + [f"image {i}" for i in outcome.images.values()])  # fmt: skip


def checkpoint_image_config(layer_digest: str, arch: str) -> dict[str, object]:
    """The OCI image config of a checkpoint image: one uncompressed layer, the archive itself."""
    return {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}


def checkpoint_image_manifest(config: tuple[str, int], layer: tuple[str, int], container: str) -> dict[str, object]:
    """The OCI manifest of a checkpoint image: ``config`` and ``layer`` are (digest, size)."""
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config[0], "size": config[1]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer[0], "size": layer[1]}],
        "annotations": checkpoint_image_annotations(container),
    }


def restored_pod_manifest(source: Mapping[str, Any], target_node: str, images: Mapping[str, str]) -> dict[str, Any]:
    """The pod a CRI-O target restores from: the source pod's spec bound to ``target_node``, each checkpointed
    container's image replaced by its checkpoint image (CRI-O restores a container whose image is one)."""
    metadata: Mapping[str, Any] = source.get("metadata") or {}
    spec: dict[str, Any] = dict(source.get("spec") or {})
    source_node = spec.get("nodeName")
    containers = [dict(c) for c in spec.get("containers") or []]
    for container in containers:
        if container.get("name") in images:
            container["image"] = images[container["name"]]
            # The checkpoint image is made for this move and never changes; the node keeps the copy it pulled,
            # so a container restart does not depend on the registry (clean-up removes the image there).
            container["imagePullPolicy"] = "IfNotPresent"
    spec.update({"containers": containers, "nodeName": target_node})
    spec.pop("nodeSelector", None)
    annotations = dict(metadata.get("annotations") or {})
    annotations[MIGRATED_FROM_ANNOTATION] = f"{source_node}/{metadata.get('name')}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{metadata.get('name')}-m", "namespace": metadata.get("namespace"),
                     "labels": dict(metadata.get("labels") or {}), "annotations": annotations},
        "spec": spec,
    }
