"""Reusable pieces for the webhook tests on the real control plane.

- a serving certificate for the operator's webhook from a CA the test makes (SAN 127.0.0.1/localhost);
- the MutatingWebhookConfiguration the tests install (url clientConfig on loopback, limited to the test's
  namespaces so other tests never reach it), always deleted afterwards: a dangling Fail webhook would break
  every later pod creation in those namespaces;
- MigrationDomain manifests whose node and namespace selectors use the test's own labels;
- a readiness probe through the real admission chain (server-side dry run, which calls the webhook);
- the user's view of a stored pod: what each container runs (the kubelet's command/args/ENTRYPOINT/CMD
  rules and ``$(VAR)`` expansion, from ``tests/unit/admission_support``, written independently of the code
  under test);
- an OCI image built by hand (config blob with Entrypoint/Cmd, one small gzip tar layer, manifest) and
  pushed with plain HTTP to a loopback registry.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import ssl
import subprocess
import tarfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from kubernetes import client

from hwcap_dev.devcluster.pki import CertificateAuthority
from hwcap_operator import keys
from hwcap_operator.admission import ImageEntrypoint
from tests.support.domains import domain_manifest as harness_domain_manifest
from tests.support.registry import OCI_CONFIG, OCI_MANIFEST, Registry
from tests.support.waits import wait_for
from tests.unit.admission_support import effective_argv

WEBHOOK_NAME = "pods.hwcap.dev"
MUTATE_PATH = "/mutate-pods"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
#: The test label the domains select nodes and namespaces by (values are per test).
TEST_LABEL = "hwcap.dev/test"


@dataclass(frozen=True)
class WebhookTLS:
    """The webhook's serving certificate and key, and the CA the API server must trust for it."""

    ca_pem: bytes
    cert: Path
    key: Path

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca_pem).decode()


def webhook_tls(directory: Path) -> WebhookTLS:
    """A fresh CA and a serving certificate for https://127.0.0.1 (and localhost)."""
    ca = CertificateAuthority.generate("e2e-hwcap-webhook-ca")
    cert, key = ca.issue("hwcap-operator-webhook", dns_names=["localhost"], ip_addresses=["127.0.0.1"],
                         server=True).write(directory, "webhook")  # fmt: skip
    return WebhookTLS(ca.cert_pem, cert, key)


def webhook_configuration(name: str, port: int, tls: WebhookTLS, namespaces: Sequence[str], *,
                          failure_policy: str = "Fail", timeout_seconds: int = 3) -> dict[str, Any]:  # fmt: skip
    """The pod webhook as a platform team would install it, but reaching only ``namespaces``."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": WEBHOOK_NAME,
            "clientConfig": {"url": f"https://127.0.0.1:{port}{MUTATE_PATH}", "caBundle": tls.ca_bundle},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"],
                       "scope": "Namespaced"}],
            "namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(namespaces)}]},
            "objectSelector": {"matchExpressions": [
                {"key": keys.POD_OPT_OUT_ANNOTATION, "operator": "NotIn", "values": ["false"]}]},
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": failure_policy,
            "reinvocationPolicy": "IfNeeded",
            "timeoutSeconds": timeout_seconds,
        }],
    }  # fmt: skip


@contextlib.contextmanager
def installed_webhook(api: client.ApiClient, body: dict[str, Any]) -> Iterator[str]:
    """Create the configuration; delete it on exit whatever happened (also when the test failed)."""
    admission = client.AdmissionregistrationV1Api(api)
    name = str(body["metadata"]["name"])
    admission.create_mutating_webhook_configuration(body)
    try:
        yield name
    finally:
        admission.delete_mutating_webhook_configuration(name)


def domain_manifest(name: str, node_label: str, namespace_labels: dict[str, str], **spec: Any) -> str:
    """A MigrationDomain over arm64 nodes labelled ``hwcap.dev/test=<node_label>`` and the namespaces that
    carry ``namespace_labels`` (YAML for kubectl)."""
    workloads = {"namespaceSelector": {"matchLabels": namespace_labels}, **spec.pop("workloads", {})}
    return harness_domain_manifest(name, node_label, workloads=workloads, **spec)


def kubectl_create(kubectl: Any, namespace: str, pod: dict[str, Any]) -> Any:
    """``kubectl create`` the pod as a user would; the CompletedProcess (stderr has denials and warnings)."""
    return kubectl("create", "-n", namespace, "-f", "-", "-o", "json", input=yaml.safe_dump(pod), check=False)


def admissions(metrics_text: str, result: str, metric: str = "hwcap_admission_requests_total") -> float:
    """A counter by ``result`` from the operator's /metrics text (what Prometheus would scrape)."""
    for line in metrics_text.splitlines():
        if line.startswith(f'{metric}{{result="{result}"}} '):
            return float(line.split()[-1])
    return 0.0


def delete_domain(api: client.ApiClient, name: str, timeout: float = 45.0) -> None:
    """Delete a MigrationDomain and wait until it is gone (its finalizer needs the operator still running)."""
    custom = client.CustomObjectsApi(api)
    with contextlib.suppress(client.ApiException):
        custom.delete_cluster_custom_object(keys.GROUP, keys.VERSION, keys.PLURAL, name)

    def gone() -> bool:
        try:
            custom.get_cluster_custom_object(keys.GROUP, keys.VERSION, keys.PLURAL, name)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(f"domain {name} to be deleted", gone, timeout)


def label_namespace(core_v1: client.CoreV1Api, namespace: str, labels: dict[str, str]) -> None:
    core_v1.patch_namespace(namespace, {"metadata": {"labels": labels}})


def probe_pod(name: str = "webhook-probe") -> dict[str, Any]:
    """A minimal restricted-compliant pod for dry-run probes."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "probe", "image": "registry.invalid/probe:1", "command": ["/probe"],
                            "securityContext": {"allowPrivilegeEscalation": False,
                                                "capabilities": {"drop": ["ALL"]}}}],
        },
    }  # fmt: skip


def dry_run_create(core_v1: client.CoreV1Api, namespace: str, pod: dict[str, Any]) -> dict[str, Any] | str:
    """Create ``pod`` with a server-side dry run (the whole admission chain runs, nothing is stored):
    the pod as it would be stored, or the API server's error message."""
    try:
        stored = core_v1.create_namespaced_pod(namespace, pod, dry_run="All")
    except client.ApiException as exc:
        return str(exc.body)
    result: dict[str, Any] = core_v1.api_client.sanitize_for_serialization(stored)
    return result


def wait_until_injected(core_v1: client.CoreV1Api, namespace: str, domain: str, timeout: float = 60.0) -> None:
    """Wait until a pod created in ``namespace`` would be injected for ``domain``: the API server has loaded
    the webhook configuration and the operator's view holds the domain's mask and the namespace's labels."""

    def probe() -> bool:
        got = dry_run_create(core_v1, namespace, probe_pod())
        return isinstance(got, dict) and pod_annotations(got).get(keys.POD_DOMAIN_ANNOTATION) == domain

    wait_for(f"pods in {namespace} to be injected for domain {domain}", probe, timeout)


def pod_annotations(pod: dict[str, Any]) -> dict[str, str]:
    return dict((pod.get("metadata") or {}).get("annotations") or {})


def read_pod(core_v1: client.CoreV1Api, namespace: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = core_v1.api_client.sanitize_for_serialization(core_v1.read_namespaced_pod(name, namespace))
    return pod


def all_containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return [*(spec.get("initContainers") or []), *spec["containers"]]


def runs(container: dict[str, Any], images: dict[str, tuple[list[str], list[str]]] | None = None) -> list[str]:
    """What the kubelet would run for ``container`` (``images``: image → (ENTRYPOINT, CMD))."""
    table = {k: ImageEntrypoint(tuple(e), tuple(c)) for k, (e, c) in (images or {}).items()}
    return effective_argv(container, table)


def mask_words(status: dict[str, Any]) -> list[str]:
    """The published mask words AT_HWCAP..AT_HWCAP4, as ``hwcap-exec`` takes them (hex)."""
    mask = status["mask"]
    return [f"{int(mask[k], 16):#x}" for k in ("hwcap", "hwcap2", "hwcap3", "hwcap4")]


def expected_wrapper(shim: str, status: dict[str, Any], on_failure: str = "warn") -> list[str]:
    """``hwcap-exec --hwcap W1 --hwcap2 W2 --hwcap3 W3 --hwcap4 W4 --on-failure=X --`` (the shim's CLI)."""
    argv = [shim]
    for option, word in zip(("--hwcap", "--hwcap2", "--hwcap3", "--hwcap4"), mask_words(status), strict=True):
        argv += [option, word]
    return [*argv, f"--on-failure={on_failure}", "--"]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env") or []}


def install_step(pod: dict[str, Any], name: str = "hwcap-install") -> dict[str, Any]:
    """The injected init container; it must run first (before the pod's own init containers)."""
    inits = pod["spec"].get("initContainers") or []
    assert inits and inits[0]["name"] == name, [c["name"] for c in inits]
    return dict(inits[0])


def installed_shim(pod: dict[str, Any]) -> str:
    """Where the install step puts hwcap-exec: the last argument of its ``--install DEST`` command, which
    must lie in an emptyDir volume it mounts writable."""
    step = install_step(pod)
    command = step["command"]
    assert "--install" in command, command
    dest = str(command[command.index("--install") + 1])
    volume = _mount_volume(step, dest)
    assert not volume[1], f"the install step mounts {volume[0]} read-only"
    kinds = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    assert "emptyDir" in kinds[volume[0]], kinds[volume[0]]
    return dest


def _mount_volume(container: dict[str, Any], path: str) -> tuple[str, bool]:
    """(volume name, read-only) of the mount holding ``path`` in ``container``; fails when none does."""
    for mount in container.get("volumeMounts") or []:
        if path.startswith(mount["mountPath"].rstrip("/") + "/"):
            return str(mount["name"]), bool(mount.get("readOnly"))
    raise AssertionError(f"container {container['name']}: no volume mount holds {path}")


def shim_volume(container: dict[str, Any], shim: str) -> str:
    """The volume through which ``container`` sees the installed shim."""
    return _mount_volume(container, shim)[0]


def required_terms(pod: dict[str, Any]) -> list[dict[str, Any]]:
    node_affinity = ((pod["spec"].get("affinity") or {}).get("nodeAffinity")) or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return list(required.get("nodeSelectorTerms") or [])


def strip_server_fields(pod: dict[str, Any]) -> dict[str, Any]:
    """What the user wrote, for comparing a stored pod with the submitted one: the server's defaults
    (status, uid, tolerations, service-account volume, ...) are out of scope here."""
    return {
        "annotations": pod_annotations(pod),
        "labels": dict(pod["metadata"].get("labels") or {}),
        "initContainers": [(c["name"], c.get("command"), c.get("args"), c.get("env"))
                           for c in pod["spec"].get("initContainers") or []],
        "containers": [(c["name"], c.get("command"), c.get("args"), c.get("env")) for c in pod["spec"]["containers"]],
        "affinity": pod["spec"].get("affinity"),
        "volumes": [v["name"] for v in pod["spec"].get("volumes") or []],
    }  # fmt: skip


def run_like_kubelet(pod: dict[str, Any], container: str, shim_binary: Path, volumes_root: Path,
                     timeout: float = 30.0) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run one container of a stored pod on this machine the way a kubelet would, after its install step.

    Every volume becomes a directory under ``volumes_root`` and mount paths are mapped onto it; the install
    step's image copy of hwcap-exec is ``shim_binary``. Then the container's effective argv (command/args
    with ``$(VAR)`` expanded) runs with its env. Returns the container's process result.
    """
    spec = pod["spec"]
    step = install_step(pod)

    def mapped(c: dict[str, Any], arg: str) -> str:
        for mount in c.get("volumeMounts") or []:
            base = mount["mountPath"].rstrip("/")
            if arg == base or arg.startswith(base + "/"):
                return str(volumes_root / mount["name"]) + arg[len(base):]
        return arg

    for volume in spec.get("volumes") or []:
        (volumes_root / volume["name"]).mkdir(parents=True, exist_ok=True)
    install = [str(shim_binary), *(mapped(step, a) for a in step["command"][1:])]
    done = subprocess.run(install, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"install step {install} failed: {done.stderr}"
    target = next(c for c in all_containers(pod) if c["name"] == container)
    argv = [mapped(target, a) if i == 0 else a for i, a in enumerate(runs(target))]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env_of(target)}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)


@contextlib.contextmanager
def sidecar_webhook(tls: WebhookTLS, sidecar: dict[str, Any]) -> Iterator[int]:
    """Another team's mutating webhook on loopback (HTTPS): appends ``sidecar`` to every pod's containers
    (once). Yields its port. Used to make the API server re-invoke our webhook after a later mutation."""

    async def mutate(request: web.Request) -> web.Response:
        review = await request.json()
        pod = review["request"]["object"]
        names = [c.get("name") for c in pod["spec"].get("containers") or []]
        patch = [] if sidecar["name"] in names else [{"op": "add", "path": "/spec/containers/-", "value": sidecar}]
        response: dict[str, Any] = {"uid": review["request"]["uid"], "allowed": True}
        if patch:
            response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode())
        return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                  "response": response})  # fmt: skip

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls.cert), str(tls.key))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = web.Application()
    app.router.add_post(MUTATE_PATH, mutate)  # the path webhook_configuration() points at
    runner = web.AppRunner(app)

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        return int(runner.addresses[0][1])

    try:
        yield asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


# ------------------------------------------------------------------------------------------- OCI images


def tiny_layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzip'd tar of ``files``; returns (blob, diff_id) where diff_id is the digest of the plain tar."""
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            tar.addfile(info, io.BytesIO(data))
    raw = plain.getvalue()
    return gzip.compress(raw, mtime=0), "sha256:" + hashlib.sha256(raw).hexdigest()


def push_oci_image(registry: Registry, repo: str, tag: str, entrypoint: list[str] | None, cmd: list[str] | None,
                   arch: str = "arm64") -> str:  # fmt: skip
    """Build an OCI image by hand (one small layer holding the entrypoint, a config with Entrypoint/Cmd, a
    manifest) and push it with plain HTTP; returns the manifest digest."""
    program = (entrypoint or cmd or ["/bin/app"])[0]
    layer, diff_id = tiny_layer({program: b'#!/bin/sh\nexec echo "$@"\n'})
    config = {"architecture": arch, "os": "linux",
              "config": {"Entrypoint": entrypoint, "Cmd": cmd, "Env": ["PATH=/usr/bin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}  # fmt: skip
    config_desc = registry.push_blob(repo, json.dumps(config).encode())
    layer_desc = {**registry.push_blob(repo, layer), "mediaType": OCI_LAYER}
    assert config_desc["mediaType"] == OCI_CONFIG
    return registry.push_manifest(repo, tag, {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                              "config": config_desc, "layers": [layer_desc]})  # fmt: skip
