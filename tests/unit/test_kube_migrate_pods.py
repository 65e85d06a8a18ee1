"""The pods ``hwcapctl migrate`` makes on a CRI-O target and how it reads them (kube/migrate.py, no cluster)."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from hwcap_operator.kube.migrate import PULL_ONLY_COMMAND, image_pull_pod, images_pulled, restored_running

SOURCE: dict[str, Any] = {
    "metadata": {"name": "shop", "namespace": "apps"},
    "spec": {"nodeName": "a", "imagePullSecrets": [{"name": "reg"}],
             "containers": [{"name": "app", "image": "r/app:1", "imagePullPolicy": "Always"},
                            {"name": "side", "image": "r/side:2"}]},
}  # fmt: skip


def pod(*states: client.V1ContainerState) -> client.V1Pod:
    statuses = [client.V1ContainerStatus(name=f"c{i}", image=f"img{i}", image_id="", ready=False, restart_count=0,
                                         state=state) for i, state in enumerate(states)]  # fmt: skip
    return client.V1Pod(status=client.V1PodStatus(container_statuses=statuses))


def waiting(reason: str, message: str = "") -> client.V1ContainerState:
    return client.V1ContainerState(waiting=client.V1ContainerStateWaiting(reason=reason, message=message))


RUNNING = client.V1ContainerState(running=client.V1ContainerStateRunning())


def test_the_pull_pod_pulls_only_the_checkpointed_containers_images_and_runs_nothing_of_them() -> None:
    manifest = image_pull_pod(SOURCE, "b", ("app",))
    spec = manifest["spec"]
    assert manifest["metadata"] == {"name": "shop-pull", "namespace": "apps",
                                    "labels": {"app.kubernetes.io/managed-by": "hwcapctl-migrate"}}  # fmt: skip
    assert spec["nodeName"] == "b" and spec["restartPolicy"] == "Never"
    assert [(c["name"], c["image"], c["command"], c["imagePullPolicy"]) for c in spec["containers"]] == [
        ("app", "r/app:1", [PULL_ONLY_COMMAND], "Always")]
    assert spec["imagePullSecrets"] == [{"name": "reg"}]  # the same credentials as the source
    assert spec["securityContext"]["runAsNonRoot"] is True  # admitted under Pod Security restricted


def test_images_count_as_pulled_once_the_kubelet_got_past_the_pull_whatever_the_container_then_did() -> None:
    assert images_pulled(pod()) == (False, None)  # no status yet
    assert images_pulled(pod(waiting("ContainerCreating"))) == (False, None)
    assert images_pulled(pod(waiting("CreateContainerError", "exec: not found"))) == (True, None)
    assert images_pulled(pod(RUNNING, waiting("RunContainerError"))) == (True, None)
    done, why = images_pulled(pod(waiting("ErrImagePull", "http: server gave HTTP response to HTTPS client")))
    assert not done and why == "img0: ErrImagePull: http: server gave HTTP response to HTTPS client"


def test_a_restored_pod_counts_as_running_only_when_every_container_runs_and_says_why_not() -> None:
    assert restored_running(pod(RUNNING, RUNNING)) == (True, None)
    assert restored_running(pod(RUNNING, waiting("ContainerCreating"))) == (False, None)
    assert restored_running(pod(waiting("CreateContainerError", "image not known"))) == (
        False, "container c0: CreateContainerError: image not known")
    exited = client.V1ContainerState(terminated=client.V1ContainerStateTerminated(exit_code=137, reason="Error"))
    assert restored_running(pod(exited)) == (False, "container c0 exited (Error, code 137)")
