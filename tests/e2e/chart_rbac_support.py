"""Pieces for running the operator and the agent with the chart's own ServiceAccount tokens, and for proving
there were no RBAC denials.

- An audit policy + log for a dedicated control plane: every request of a ServiceAccount is recorded at
  ``Metadata`` level, which carries the response code and the authorizer's decision
  (``authorization.k8s.io/decision: allow|forbid``). A denial the operator swallowed and only logged, or one
  it retried silently, is still in the audit log.
- TokenRequest for a ServiceAccount, optionally bound to a Pod (the agent's token: bound to a pod that sits on
  its node, the API server adds the ``authentication.kubernetes.io/node-name`` claim the chart's
  ValidatingAdmissionPolicy needs).
- The operator's command line taken from the chart's rendered Deployment (only the pod-local paths and ports
  are left to the local harness), so the local process runs as the chart would run it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import struct
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

#: Only ServiceAccounts (the identities under test) are audited; the admin and the scheduler are not.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "userGroups": ["system:serviceaccounts"]},
        {"level": "None"},
    ],
}
DECISION = "authorization.k8s.io/decision"
#: Options of ``hwcap-operator run`` whose chart values are pod-local (container port, mounted Secret): the
#: local harness supplies its own.
POD_LOCAL_OPTIONS = ("--webhook-port", "--tls-cert-file", "--tls-key-file", "--metrics-port")


def audit_apiserver_args(directory: Path) -> tuple[list[str], Path]:
    """kube-apiserver flags writing a JSON audit log of ServiceAccount requests; returns (flags, log path)."""
    directory.mkdir(parents=True, exist_ok=True)
    policy = directory / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    log = directory / "audit.log"
    # blocking mode (the log backend's default): an event is written before the response is sent.
    return [f"--audit-policy-file={policy}", f"--audit-log-path={log}", "--audit-log-format=json",
            "--audit-log-mode=blocking", "--audit-log-maxsize=0"], log  # fmt: skip


@dataclass(frozen=True)
class AuditEvent:
    """One completed request as the API server recorded it."""

    user: str
    verb: str
    resource: str  # "nodes", "migrationdomains/status", ...
    name: str
    code: int
    decision: str
    uri: str

    def __str__(self) -> str:
        return f"{self.user} {self.verb} {self.resource}/{self.name} -> {self.code} ({self.decision}) {self.uri}"


class AuditLog:
    """The API server's audit log, read afresh on every call (it only grows)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self, users: Iterable[str] | None = None) -> list[AuditEvent]:
        wanted = set(users) if users is not None else None
        out: list[AuditEvent] = []
        if not self.path.exists():
            return out
        for line in self.path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            raw = json.loads(line)
            # A request is recorded when it completes; a watch also when it starts (it completes only when the
            # watcher goes away), and a denied watch completes at once.
            stage = raw.get("stage")
            if stage != "ResponseComplete" and not (stage == "ResponseStarted" and raw.get("verb") == "watch"):
                continue
            user = raw.get("user", {}).get("username", "")
            if wanted is not None and user not in wanted:
                continue
            ref = raw.get("objectRef") or {}
            resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            out.append(AuditEvent(
                user=user, verb=raw.get("verb", ""), resource=resource, name=ref.get("name", ""),
                code=int((raw.get("responseStatus") or {}).get("code", 0)),
                decision=(raw.get("annotations") or {}).get(DECISION, ""), uri=raw.get("requestURI", ""),
            ))  # fmt: skip
        return out

    def denials(self, users: Iterable[str]) -> list[AuditEvent]:
        """Requests the authorizer forbade, or that were answered 401/403 (admission denials included)."""
        return [e for e in self.events(users) if e.decision == "forbid" or e.code in (401, 403)]

    def succeeded(self, user: str, verb: str, resource: str, name: str | None = None) -> list[AuditEvent]:
        return [e for e in self.events([user]) if e.verb == verb and e.resource == resource
                and (name is None or e.name == name) and 200 <= e.code < 300]  # fmt: skip


@contextlib.contextmanager
def denials_explained(audit: AuditLog, users: Sequence[str]) -> Iterator[None]:
    """A failing assertion inside also names the requests of ``users`` the API server denied: a domain that
    never gets Ready because of RBAC then says so, instead of only "timed out"."""
    try:
        yield
    except AssertionError as exc:
        denied = audit.denials(users)
        if not denied:
            raise
        listing = "\n".join(str(e) for e in denied[:20])
        raise AssertionError(f"{exc}\nrequests the API server denied ({len(denied)}):\n{listing}") from exc


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def request_token(core_v1: Any, namespace: str, service_account: str,
                  bound_pod: Any | None = None, seconds: int = 3600) -> str:  # fmt: skip
    """A token of ``service_account`` from TokenRequest (what the kubelet mounts into a pod); bound to
    ``bound_pod`` (a V1Pod as stored) when given, so it dies with the pod and names the pod's node."""
    spec = client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    if bound_pod is not None:
        spec.bound_object_ref = client.V1BoundObjectReference(
            api_version="v1", kind="Pod", name=bound_pod.metadata.name, uid=bound_pod.metadata.uid)
    review = core_v1.create_namespaced_service_account_token(
        service_account, namespace, client.AuthenticationV1TokenRequest(spec=spec))
    return str(review.status.token)


def agent_pod(name: str, service_account: str, node: str, image: str) -> dict[str, Any]:
    """The agent pod the DaemonSet controller would create for ``node`` (already bound: spec.nodeName). No
    kubelet runs it; it exists so that the agent's token can be bound to a pod on that node."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/component": "node-agent"}},
        "spec": {"serviceAccountName": service_account, "nodeName": node,
                 "containers": [{"name": "agent", "image": image}]},
    }  # fmt: skip


def pull_secret(name: str, registry: str) -> dict[str, Any]:
    """A ``kubernetes.io/dockerconfigjson`` Secret with the test registry's credentials (what ``kubectl create
    secret docker-registry`` makes)."""
    from tests.support.registry import PASSWORD, USER

    config = {"auths": {registry: {"username": USER, "password": PASSWORD}}}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}  # fmt: skip


def chart_operator_args(manifest_text: str, namespace: str) -> list[str]:
    """The ``hwcap-operator run`` options of the chart's rendered Deployment, ``$(POD_NAMESPACE)`` resolved,
    without the pod-local ones (ports, mounted certificate paths)."""
    deployments = [d for d in yaml.safe_load_all(manifest_text) if d and d["kind"] == "Deployment"]
    assert len(deployments) == 1, [d["metadata"]["name"] for d in deployments]
    (container,) = deployments[0]["spec"]["template"]["spec"]["containers"]
    args = [str(a).replace("$(POD_NAMESPACE)", namespace) for a in container["args"]]
    run = args[args.index("run") + 1:]
    out: list[str] = []
    i = 0
    while i < len(run):
        if run[i] in POD_LOCAL_OPTIONS:
            i += 2
            continue
        out.append(run[i])
        i += 1
    return out


def run_agent_once(kubeconfig: Path, node: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``hwcap-operator agent --node-name NODE --once`` (the DaemonSet's program) with ``kubeconfig``."""
    argv = [sys.executable, "-m", "hwcap_operator.cli.operator_main", "--kubeconfig", str(kubeconfig),
            "--log-format", "json", "agent", "--node-name", node, "--once"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


_FORBIDDEN = re.compile(r"forbidden|unauthorized", re.IGNORECASE)


def log_denials(records: Sequence[dict[str, Any]], text: str) -> list[str]:
    """What a process's log says about denials: JSON records with status 401/403, and any line naming
    Forbidden/Unauthorized (kopf's APIForbiddenError, the client's ``(403) Reason: Forbidden``)."""
    found = [json.dumps(r) for r in records if str(r.get("status")) in ("401", "403")]
    found += [line for line in text.splitlines() if _FORBIDDEN.search(line)]
    return found


def read_auxv_words(path: Path = Path("/proc/self/auxv")) -> tuple[int, int, int, int]:
    """AT_HWCAP, AT_HWCAP2, AT_HWCAP3, AT_HWCAP4 (auxv types 16, 26, 29, 30) of this machine, read with plain
    ``struct`` (native unsigned long pairs), independently of the product's auxv parser."""
    raw = path.read_bytes()
    size = struct.calcsize("LL")
    values: dict[int, int] = {}
    for offset in range(0, len(raw) - size + 1, size):
        key, value = struct.unpack_from("LL", raw, offset)
        if key == 0:
            break
        values[key] = value
    return values.get(16, 0), values.get(26, 0), values.get(29, 0), values.get(30, 0)
