"""The I/O of ``hwcapctl migrate``: the kubelet checkpoint call, the checkpoint image push, the restore.

* checkpoint — ``POST /api/v1/nodes/<node>/proxy/checkpoint/<ns>/<pod>/<container>`` through the API server
  (RBAC: ``nodes/proxy``, see docs/migration.md#rbac). The kubelet asks the runtime's CRI
  ``CheckpointContainer``; containerd leaves the container running. The answer names the archive's path on
  the *node*.
* image — the archive becomes a one-layer OCI image (the tar itself, uncompressed, with the checkpoint
  annotation) pushed with the ORAS client. The archive must be readable where this runs: true in the dev
  cluster (the nodes are this machine) or on the node itself; elsewhere the step fails and says so.
* restore — only a runtime whose CRI restores from a checkpoint image can do it: CRI-O creates a container
  from such an image as a restore, so on a CRI-O target a pod bound to the target with the checkpoint images
  is created. containerd v2.4.2's CRI has no such path (its ``internal/cri/server`` has ``CheckpointContainer``
  and nothing that restores), so on a containerd target the step fails naming that, before anything is made.
  CRI-O restores the container's filesystem on top of the container's *own* image, which it looks up by the
  ID recorded in the archive and never pulls: a short-lived pull pod on the target (the containers' images,
  a command that does not exist, deleted once the kubelet has the images) makes the kubelet pull them first.
* confirm — the restored pod's containers are running; delete-source — the source pod is deleted.
* clean-up — the archives are deleted where they were read, and each checkpoint image's tag in the registry
  (its manifest; the registry's own garbage collection frees the blobs). What cannot be removed is named.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import oras.provider
import requests
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hwcap_operator.domain.migration import (
    MigrationRequest,
    StepFailed,
    checkpoint_api_path,
    checkpoint_image_config,
    checkpoint_image_manifest,
    restored_pod_manifest,
)


def _api_message(exc: ApiException) -> str:
    body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or "")
    with contextlib.suppress(ValueError, AttributeError):
        body = str(json.loads(body).get("message", body))
    return f"{exc.status} {exc.reason}: {body.strip()[:400]}"


#: Waiting reasons that end the wait for a pod at once: the image cannot be had, or the container cannot be made.
PULL_FAILED = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CREATE_FAILED = ("CreateContainerError", "CreateContainerConfigError", "RunContainerError", "CrashLoopBackOff")

#: The pull pod's command: no image has it, so nothing of the workload runs; the kubelet pulls the image first.
PULL_ONLY_COMMAND = "/.hwcap-migrate-pull-only"


def image_pull_pod(source: Mapping[str, Any], target_node: str, containers: tuple[str, ...]) -> dict[str, Any]:
    """A pod bound to ``target_node`` whose only job is to make its kubelet pull the images of ``containers``
    (restricted-compliant, never restarted, nothing of the workload runs: its command exists in no image)."""
    metadata: Mapping[str, Any] = source.get("metadata") or {}
    spec: Mapping[str, Any] = source.get("spec") or {}
    pulls = [{"name": c["name"], "image": c["image"], "command": [PULL_ONLY_COMMAND],
              "imagePullPolicy": c.get("imagePullPolicy", "IfNotPresent"),
              "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
             for c in spec.get("containers") or [] if c.get("name") in containers]  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{metadata.get('name')}-pull", "namespace": metadata.get("namespace"),
                     "labels": {"app.kubernetes.io/managed-by": "hwcapctl-migrate"}},
        "spec": {"nodeName": target_node, "restartPolicy": "Never", "automountServiceAccountToken": False,
                 "imagePullSecrets": list(spec.get("imagePullSecrets") or []), "containers": pulls,
                 "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                     "seccompProfile": {"type": "RuntimeDefault"}}},
    }  # fmt: skip


def images_pulled(pod: client.V1Pod) -> tuple[bool, str | None]:
    """(every container's image is on the node, why it cannot be) from a pull pod's container statuses."""
    statuses = (pod.status.container_statuses if pod.status else None) or []
    if not statuses:
        return False, None
    done = True
    for status in statuses:
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason in PULL_FAILED:
            return False, f"{status.image}: {waiting.reason}: {waiting.message or ''}".strip()
        if waiting is not None and waiting.reason not in CREATE_FAILED:
            done = False  # still pulling (ContainerCreating)
    return done, None


def runtime_of(node: Mapping[str, Any]) -> str:
    """``containerd``, ``cri-o`` or another runtime name, from ``status.nodeInfo.containerRuntimeVersion``."""
    version = str(((node.get("status") or {}).get("nodeInfo") or {}).get("containerRuntimeVersion") or "")
    return version.split("://", 1)[0] or "unknown"


def restored_running(pod: client.V1Pod) -> tuple[bool, str | None]:
    """(every container runs, why one cannot) from a restored pod's container statuses."""
    statuses = (pod.status.container_statuses if pod.status else None) or []
    for status in statuses:
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason in PULL_FAILED + CREATE_FAILED:
            return False, f"container {status.name}: {waiting.reason}: {waiting.message or ''}".strip()
        terminated = status.state.terminated if status.state else None
        if terminated is not None:
            return False, f"container {status.name} exited ({terminated.reason}, code {terminated.exit_code})"
    return bool(statuses) and all(s.state and s.state.running for s in statuses), None


class KubeMigrationSteps:
    """:class:`~hwcap_operator.domain.migration.MigrationSteps` against a cluster and a registry."""

    def __init__(self, api: client.ApiClient, registry: str, *, insecure_registry: bool = False,
                 kubelet_direct: bool = False, confirm_timeout: float = 120.0) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.registry = registry.rstrip("/")
        self.insecure_registry = insecure_registry
        self.confirm_timeout = confirm_timeout
        self.kubelet_direct = kubelet_direct

    def checkpoint(self, request: MigrationRequest, container: str) -> str:
        if self.kubelet_direct:
            return self._checkpoint_direct(request, container)
        path = checkpoint_api_path(request.source_node, request.namespace, request.pod, container)
        try:
            method, url, headers, body, post = self.api.param_serialize(  # type: ignore[no-untyped-call]
                "POST", path, auth_settings=["BearerToken"])
            response = self.api.call_api(method, url, headers, body, post, _request_timeout=300)  # type: ignore[no-untyped-call]
            response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            raise StepFailed("checkpoint", f"the kubelet on {request.source_node} refused {path}: "
                                           f"{_api_message(exc)}",
                             transient=(exc.status or 0) >= 500) from exc  # fmt: skip
        if response.status >= 300:
            refused = ApiException(status=response.status, reason=response.reason)
            refused.body = response.data
            raise StepFailed("checkpoint", f"the kubelet on {request.source_node} refused {path}: "
                                           f"{_api_message(refused)}", transient=response.status >= 500)  # fmt: skip
        items = json.loads(response.data or b"{}").get("items") or []
        if not items:
            raise StepFailed("checkpoint", f"the kubelet on {request.source_node} named no archive for {container}")
        return str(items[0])

    def _checkpoint_direct(self, request: MigrationRequest, container: str) -> str:
        """The kubelet's own endpoint, for API servers that refuse to proxy to the node's address (loopback
        nodes: "address not allowed"). Same credentials; the kubelet authorizes them with the API server. Its
        serving certificate is not verified (kubelets commonly serve a self-signed one)."""
        node = self.core.read_node(request.source_node)
        addresses = [a.address for a in (node.status.addresses or []) if a.type == "InternalIP"]  # type: ignore[union-attr]
        port = node.status.daemon_endpoints.kubelet_endpoint.port  # type: ignore[union-attr]
        if not addresses:
            raise StepFailed("checkpoint", f"node {request.source_node} reports no InternalIP for its kubelet")
        url = f"https://{addresses[0]}:{port}/checkpoint/{request.namespace}/{request.pod}/{container}"
        conf = self.api.configuration
        headers = {"Authorization": conf.api_key["authorization"]} if conf.api_key.get("authorization") else {}
        cert = (conf.cert_file, conf.key_file) if conf.cert_file else None
        try:
            with warnings.catch_warnings():  # the unverified kubelet certificate is said in the docstring and docs
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
                answer = requests.post(url, headers=headers, cert=cert, verify=False, timeout=300)
        except requests.RequestException as exc:
            raise StepFailed("checkpoint", f"the kubelet at {url} could not be reached: {exc}") from exc
        if answer.status_code >= 300:
            raise StepFailed("checkpoint", f"the kubelet at {url} answered {answer.status_code}: {answer.text[:400]}",
                             transient=answer.status_code >= 500)  # fmt: skip
        items = answer.json().get("items") or []
        if not items:
            raise StepFailed("checkpoint", f"the kubelet on {request.source_node} named no archive for {container}")
        return str(items[0])

    def build_image(self, request: MigrationRequest, container: str, archive: str) -> str:
        local = Path(archive)
        if not os.access(local, os.R_OK):
            raise StepFailed("image", f"the archive {archive} is on node {request.source_node} and not readable "
                             "here; run migrate where the node's /var/lib/kubelet/checkpoints is mounted")
        reference = f"{self.registry}/checkpoint/{request.namespace}-{request.pod}-{container}:{int(time.time())}"
        try:
            self._push(reference, local, container)
        except Exception as exc:  # requests/oras raise many kinds; all mean the push did not happen
            raise StepFailed("image", f"pushing {reference}: {exc}") from exc
        return reference

    def _push(self, reference: str, archive: Path, container: str) -> None:
        registry = oras.provider.Registry(insecure=self.insecure_registry)
        target = registry.get_container(reference)
        layer_digest = f"sha256:{hashlib.sha256(archive.read_bytes()).hexdigest()}"
        layer_size = archive.stat().st_size
        layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}
        registry.upload_blob(str(archive), target, layer).raise_for_status()
        config = json.dumps(checkpoint_image_config(layer_digest, "amd64")).encode()
        with tempfile.NamedTemporaryFile(suffix=".json") as fh:
            fh.write(config)
            fh.flush()
            config_digest = f"sha256:{hashlib.sha256(config).hexdigest()}"
            config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                           "size": len(config)}  # fmt: skip
            registry.upload_blob(fh.name, target, config_desc).raise_for_status()
        manifest = checkpoint_image_manifest((config_digest, len(config)), (layer_digest, layer_size), container)
        registry.upload_manifest(manifest, target).raise_for_status()

    def restore(self, request: MigrationRequest, images: Mapping[str, str]) -> str:
        node = self.api.sanitize_for_serialization(self.core.read_node(request.target_node))  # type: ignore[no-untyped-call]
        runtime = runtime_of(node)
        if runtime != "cri-o":
            raise StepFailed("restore", f"node {request.target_node} runs {runtime}: only CRI-O restores a "
                                        "container from a checkpoint image through the CRI (containerd v2.4.2 has "
                                        "CheckpointContainer but no restore path); nothing was created there. "
                                        f"Checkpoint images kept: {', '.join(images.values())}")  # fmt: skip
        source = self.api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
            self.core.read_namespaced_pod(request.pod, request.namespace))
        self._pull_images(request, source)
        manifest = restored_pod_manifest(source, request.target_node, images)
        try:
            self.core.create_namespaced_pod(request.namespace, manifest)  # type: ignore[arg-type]
        except ApiException as exc:
            raise StepFailed("restore", f"creating {manifest['metadata']['name']}: {_api_message(exc)}") from exc
        return str(manifest["metadata"]["name"])

    def _pull_images(self, request: MigrationRequest, source: Mapping[str, Any]) -> None:
        """Have the target's kubelet pull the checkpointed containers' own images (CRI-O's restore needs them
        there and does not pull them); the pull pod is deleted whatever happens."""
        manifest = image_pull_pod(source, request.target_node, request.containers)
        name = str(manifest["metadata"]["name"])
        try:
            self.core.create_namespaced_pod(request.namespace, manifest)  # type: ignore[arg-type]
        except ApiException as exc:
            raise StepFailed("restore", f"creating the pull pod {name} on {request.target_node}: "
                                        f"{_api_message(exc)}") from exc  # fmt: skip
        try:
            self._wait(request, name, lambda pod: images_pulled(pod), "pulling the containers' images")
        finally:
            self.undo_restore(request, name)

    def _wait(self, request: MigrationRequest, name: str, probe: Callable[[client.V1Pod], tuple[bool, str | None]],
              what: str, step: str = "restore") -> None:
        """Poll pod ``name`` until ``probe`` says done (True) or names a failure; at most ``confirm_timeout``."""
        deadline = time.monotonic() + self.confirm_timeout
        while time.monotonic() < deadline:
            done, failure = probe(self.core.read_namespaced_pod(name, request.namespace))
            if failure is not None:
                raise StepFailed(step, f"{name} on {request.target_node}, {what}: {failure}")
            if done:
                return
            time.sleep(0.5)
        raise StepFailed(step, f"{name} on {request.target_node}, {what}: not done after {self.confirm_timeout:.0f}s")

    def confirm(self, request: MigrationRequest, restored: str) -> None:
        self._wait(request, restored, restored_running, "the restored containers running", step="confirm")

    def undo_restore(self, request: MigrationRequest, restored: str) -> None:
        try:
            self.core.delete_namespaced_pod(restored, request.namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise StepFailed("restore", f"deleting {restored}: {_api_message(exc)}") from exc

    def clean_up(self, request: MigrationRequest, archives: Mapping[str, str], images: Mapping[str, str]) -> list[str]:
        left: list[str] = []
        for archive in archives.values():
            try:
                Path(archive).unlink(missing_ok=True)
            except OSError as exc:
                left.append(f"archive {archive} on node {request.source_node}: {exc.strerror or exc}")
        registry = oras.provider.Registry(insecure=self.insecure_registry)
        for reference in images.values():
            try:
                registry.delete_tag(reference, reference.rpartition(":")[2])  # False: already gone
            except Exception as exc:  # requests/oras raise many kinds; all mean the image is still there
                left.append(f"image {reference}: {exc}")
        return left

    def delete_source(self, request: MigrationRequest) -> None:
        try:
            self.core.delete_namespaced_pod(request.pod, request.namespace)
        except ApiException as exc:
            raise StepFailed("delete-source", f"deleting {request.namespace}/{request.pod}: {_api_message(exc)} "
                             "(the restored pod runs; delete it by hand)") from exc
