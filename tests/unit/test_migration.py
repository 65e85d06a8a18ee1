"""The migration's order and its failure rule (domain/migration.py): the source pod is deleted last, only after
the restore is confirmed, and a failing step undoes the target side and leaves the source alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from hwcap_operator import keys
from hwcap_operator.domain.migration import (
    CHECKPOINT_NAME_ANNOTATION,
    STEPS,
    MigrationRequest,
    StepFailed,
    checkpoint_api_path,
    checkpoint_image_manifest,
    membership_reason,
    restored_pod_manifest,
    run_migration,
)

REQUEST = MigrationRequest("shop", "cart-0", ("app", "sidecar"), "node-a", "node-b")


class Recorder:
    """Steps that record each call and fail at the step named ``fail_at``."""

    def __init__(self, fail_at: str | None = None, fail_undo: bool = False, left: tuple[str, ...] = ()) -> None:
        self.calls: list[str] = []
        self.fail_at = fail_at
        self.fail_undo = fail_undo
        self.left = list(left)
        self.cleaned: tuple[dict[str, str], dict[str, str]] | None = None

    def _maybe_fail(self, step: str) -> None:
        self.calls.append(step)
        if step == self.fail_at:
            raise StepFailed(step, f"{step} broke")

    def checkpoint(self, request: MigrationRequest, container: str) -> str:
        self._maybe_fail("checkpoint")
        return f"/var/lib/kubelet/checkpoints/{container}.tar"

    def build_image(self, request: MigrationRequest, container: str, archive: str) -> str:
        self._maybe_fail("image")
        return f"registry/{container}:1"

    def restore(self, request: MigrationRequest, images: Mapping[str, str]) -> str:
        self._maybe_fail("restore")
        return "cart-0-m"

    def confirm(self, request: MigrationRequest, restored: str) -> None:
        self._maybe_fail("confirm")

    def undo_restore(self, request: MigrationRequest, restored: str) -> None:
        self.calls.append("undo")
        if self.fail_undo:
            raise StepFailed("restore", "undo broke")

    def delete_source(self, request: MigrationRequest) -> None:
        self._maybe_fail("delete-source")

    def clean_up(self, request: MigrationRequest, archives: Mapping[str, str], images: Mapping[str, str]) -> list[str]:
        self.calls.append("clean-up")
        self.cleaned = (dict(archives), dict(images))
        return self.left


def test_success_runs_every_step_once_per_container_and_deletes_the_source_last() -> None:
    steps = Recorder()
    lines: list[str] = []
    outcome = run_migration(REQUEST, steps, lines.append)
    assert outcome.ok and outcome.done == list(STEPS)
    assert steps.calls == ["checkpoint", "checkpoint", "image", "image", "restore", "confirm", "delete-source",
                           "clean-up"]  # fmt: skip
    assert outcome.images == {"app": "registry/app:1", "sidecar": "registry/sidecar:1"}
    assert [line.split(":")[0] for line in lines] == [f"[{i}/6] {s}" for i, s in enumerate(STEPS, 1)]
    # The memory images go once the move is done: both containers' archives and images are removed.
    assert steps.cleaned == ({"app": "/var/lib/kubelet/checkpoints/app.tar",
                              "sidecar": "/var/lib/kubelet/checkpoints/sidecar.tar"},
                             {"app": "registry/app:1", "sidecar": "registry/sidecar:1"})  # fmt: skip
    assert outcome.kept == []


def test_what_the_clean_up_cannot_remove_is_named_and_the_move_still_succeeds() -> None:
    lines: list[str] = []
    outcome = run_migration(REQUEST, Recorder(left=("image registry/app:1: 405 UNSUPPORTED",)), lines.append)
    assert outcome.ok and outcome.done == list(STEPS)
    assert outcome.kept == ["image registry/app:1: 405 UNSUPPORTED"]
    assert lines[-1] == "clean-up: left image registry/app:1: 405 UNSUPPORTED"


def test_keep_checkpoint_removes_nothing_and_names_what_stays() -> None:
    steps = Recorder()
    lines: list[str] = []
    request = MigrationRequest("shop", "cart-0", ("app",), "node-a", "node-b", keep_checkpoint=True)
    outcome = run_migration(request, steps, lines.append)
    assert outcome.ok and "clean-up" not in steps.calls
    assert outcome.kept == ["archive /var/lib/kubelet/checkpoints/app.tar on node node-a", "image registry/app:1"]
    assert lines[-1] == ("[6/6] clean-up: kept, as asked: archive /var/lib/kubelet/checkpoints/app.tar on node "
                         "node-a; image registry/app:1")  # fmt: skip


@pytest.mark.parametrize("fail_at", ["checkpoint", "image", "restore"])
def test_a_failure_before_anything_runs_on_the_target_keeps_the_source_and_undoes_nothing(fail_at: str) -> None:
    steps = Recorder(fail_at)
    outcome = run_migration(REQUEST, steps)
    assert not outcome.ok and outcome.failed is not None and outcome.failed.step == fail_at
    assert "delete-source" not in steps.calls and "undo" not in steps.calls and "clean-up" not in steps.calls
    assert outcome.source_untouched


def test_an_unconfirmed_restore_is_removed_and_the_source_keeps_running() -> None:
    steps = Recorder("confirm")
    lines: list[str] = []
    outcome = run_migration(REQUEST, steps, lines.append)
    assert steps.calls[-2:] == ["confirm", "undo"] and "delete-source" not in steps.calls
    assert outcome.source_untouched and outcome.restored == "cart-0-m"
    assert lines[-2] == "undo: removing cart-0-m from node-b; the source keeps running"
    # A failed move keeps what it made for inspection or a manual restore, and says where it is.
    assert outcome.kept == ["archive /var/lib/kubelet/checkpoints/app.tar on node node-a",
                            "archive /var/lib/kubelet/checkpoints/sidecar.tar on node node-a",
                            "image registry/app:1", "image registry/sidecar:1"]  # fmt: skip
    assert lines[-1].startswith("kept (they hold the containers' memory; delete them when done): archive ")


def test_a_failed_undo_is_reported_not_raised() -> None:
    lines: list[str] = []
    outcome = run_migration(REQUEST, Recorder("confirm", fail_undo=True), lines.append)
    assert outcome.failed is not None and outcome.failed.step == "confirm"
    assert lines[-2] == "undo failed, remove it by hand: restore: undo broke"


def test_a_failing_source_delete_keeps_the_confirmed_restore() -> None:
    steps = Recorder("delete-source")
    outcome = run_migration(REQUEST, steps)
    assert "undo" not in steps.calls and "clean-up" not in steps.calls  # the restored pod runs: keep it
    assert not outcome.source_untouched and outcome.done == ["checkpoint", "image", "restore", "confirm"]


def test_membership_is_the_domain_label() -> None:
    label = f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}gravitons"
    assert membership_reason("gravitons", "n1", {label: "true"}) is None
    assert membership_reason("gravitons", "n1", {}) == f"node n1 is not a member of domain gravitons (no label {label})"
    assert membership_reason("gravitons", "n1", {label: "false"}, "MissingFeatures: lacks sve") == (
        f"node n1 is not a member of domain gravitons (no label {label}): MissingFeatures: lacks sve")


def test_kubelet_path_and_checkpoint_image() -> None:
    assert checkpoint_api_path("n1", "shop", "cart-0", "app") == "/api/v1/nodes/n1/proxy/checkpoint/shop/cart-0/app"
    manifest = checkpoint_image_manifest(("sha256:c", 10), ("sha256:l", 20), "app")
    assert manifest["annotations"] == {"io.kubernetes.cri-o.annotations.checkpoint.name": "app"}
    assert manifest["layers"] == [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:l",
                                   "size": 20}]  # fmt: skip
    assert CHECKPOINT_NAME_ANNOTATION == "io.kubernetes.cri-o.annotations.checkpoint.name"


def test_restored_pod_runs_the_checkpoint_images_on_the_target() -> None:
    source: dict[str, Any] = {"metadata": {"name": "cart-0", "namespace": "shop", "labels": {"app": "cart"},
                           "annotations": {keys.POD_MASK_ANNOTATION: "m"}, "resourceVersion": "7", "uid": "u"},
              "spec": {"nodeName": "node-a", "nodeSelector": {"x": "y"},
                       "containers": [{"name": "app", "image": "shop/cart:1", "imagePullPolicy": "Always"},
                                      {"name": "log", "image": "l:1", "imagePullPolicy": "Always"}]},
              "status": {"phase": "Running"}}  # fmt: skip
    pod = restored_pod_manifest(source, "node-b", {"app": "registry/app:1"})
    assert pod["spec"]["nodeName"] == "node-b" and "nodeSelector" not in pod["spec"]
    assert [c["image"] for c in pod["spec"]["containers"]] == ["registry/app:1", "l:1"]
    # A restart on the target must not need the registry, which the clean-up empties: the node keeps its copy.
    assert [c["imagePullPolicy"] for c in pod["spec"]["containers"]] == ["IfNotPresent", "Always"]
    annotations = {keys.POD_MASK_ANNOTATION: "m", "hwcap.dev/migrated-from": "node-a/cart-0"}
    assert pod["metadata"] == {"name": "cart-0-m", "namespace": "shop", "labels": {"app": "cart"},
                               "annotations": annotations}
    assert "status" not in pod
    assert source["spec"]["containers"][0]["image"] == "shop/cart:1"  # the source document is not changed


class FlakyCheckpoint(Recorder):
    """A runtime whose checkpoint fails ``failures`` times first (``transient``: with a server error)."""

    def __init__(self, failures: int, transient: bool) -> None:
        super().__init__()
        self.failures, self.transient = failures, transient

    def checkpoint(self, request: MigrationRequest, container: str) -> str:
        self.calls.append("checkpoint")
        if self.failures:
            self.failures -= 1
            raise StepFailed("checkpoint", "criu failed: type DUMP errno 0", transient=self.transient)
        return f"/var/lib/kubelet/checkpoints/{container}.tar"


def test_a_transient_checkpoint_failure_is_tried_once_more_and_said() -> None:
    steps = FlakyCheckpoint(failures=1, transient=True)
    lines: list[str] = []
    outcome = run_migration(REQUEST, steps, lines.append)
    assert outcome.ok
    assert steps.calls[:3] == ["checkpoint", "checkpoint", "checkpoint"]  # app twice, then sidecar
    assert any("trying once more" in line and "source kept running" in line for line in lines)


def test_a_checkpoint_failing_twice_or_for_good_stops_with_the_source_untouched() -> None:
    for steps in (FlakyCheckpoint(failures=2, transient=True), FlakyCheckpoint(failures=1, transient=False)):
        outcome = run_migration(REQUEST, steps)
        assert outcome.failed is not None and outcome.failed.step == "checkpoint"
        assert outcome.source_untouched and "delete-source" not in steps.calls and "undo" not in steps.calls
        assert steps.calls.count("checkpoint") == (2 if steps.transient else 1)
