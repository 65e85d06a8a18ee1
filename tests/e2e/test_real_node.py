"""Pods of a domain really run: a real kubelet + containerd + runc node of the dev cluster, the operator's
webhook injecting the init image from the loopback registry, and what the processes then see.

A platform engineer's view: an x86 domain over the real node; a Pod Security ``restricted`` pod in a
selected namespace starts, its install step completes, its app's PID 1 is the app itself (hwcap-exec
exec'd in place) with argv, env and working directory as written; ``kubectl logs`` works; the wrapper's
``--on-failure=fail`` under a seccomp profile that denies ``prctl`` exits 71 with the reason in the
termination message; an image without a command runs its registry ENTRYPOINT; a ``Required``-inheritance
domain excludes the node (this kernel says unsupported) and its pod stays Pending with a clear Event;
deleting the pod and draining the node leave no container behind. Expected values come from the pod we
wrote and the kernel facts (``docs/kernel.md#v5-semantics``), never from the output under test.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hwcap_dev.devcluster.node_cleanup import cgroup_pids
from hwcap_dev.devcluster.realnodes import RealNodes
from hwcap_dev.devcluster.testing import ClusterAccess, running_real_nodes
from hwcap_dev.shim import shim_path
from hwcap_operator import keys
from hwcap_operator.agent.report import format_words
from hwcap_operator.auxv import parse_auxv
from tests.e2e.webhook_support import WebhookTLS, installed_webhook, webhook_configuration
from tests.support.domains import Domains, domain_manifest
from tests.support.operator import OperatorProcess, running_operator
from tests.support.ports import free_port
from tests.support.waits import wait_for

pytestmark = pytest.mark.needs_root


@pytest.fixture(autouse=True, scope="module")
def _root() -> None:
    """Real nodes start containerd, runc and network namespaces: root only (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.fail("the real-node tests run a kubelet, containerd and runc: run them as root (CI does)")

Json = dict[str, Any]
DENY_PRCTL = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


@pytest.fixture(scope="module")
def real(control_plane: ClusterAccess) -> Iterator[RealNodes]:
    """One real node next to the session's control plane; torn down (and checked empty) after the module."""
    assert control_plane.plane is not None, "real nodes need the local control plane"
    with running_real_nodes(control_plane.plane, name_prefix="real-e2e", hwcap_exec=shim_path()) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def node_name(real: RealNodes, kubectl: Any) -> str:
    """The real node, labelled for this module's domains (``hwcap.dev/test=real``)."""
    name = real.nodes[0].name
    kubectl("label", "node", name, "hwcap.dev/test=real", "--overwrite")
    (real.nodes[0].layout.seccomp_dir / "deny-prctl.json").write_text(json.dumps(DENY_PRCTL))
    return name


@pytest.fixture(scope="module")
def real_operator(real: RealNodes, crd: None, local_control_plane: ClusterAccess, tls: WebhookTLS,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:  # fmt: skip
    """The operator injecting the loopback registry's init image, looking entrypoints up there too."""
    assert real.images is not None
    extra = ["--init-image", real.images.init, "--insecure-registries", real.registry_host]
    with running_operator(local_control_plane.kubeconfig, tmp_path_factory.mktemp("operator"),
                          webhook=(free_port(), tls.cert, tls.key), extra=extra) as op:  # fmt: skip
        yield op


def test_agent_reports_this_machines_words_and_the_kernels_verdict(kubectl: Any, node_name: str,
                                                                   real: RealNodes) -> None:
    """The agent runs with the node's own credentials (Node authorizer + NodeRestriction allow it its Node)."""
    own = parse_auxv(Path("/proc/self/auxv").read_bytes(), source="/proc/self/auxv")
    probe = subprocess.run([str(shim_path(build=False)), "--probe"], capture_output=True, text=True, check=False)
    expected = {0: "supported", 3: "unsupported"}.get(probe.returncode, "unknown")

    def published() -> dict[str, str] | None:
        node = json.loads(kubectl("get", "node", node_name, "-o", "json").stdout)
        notes: dict[str, str] = node["metadata"].get("annotations") or {}
        return notes if keys.AGENT_INHERITANCE_ANNOTATION in notes else None

    notes = wait_for("the agent's annotations on the real node", published, timeout=60)
    assert notes[keys.AGENT_HWCAP_ANNOTATION] == format_words(own.hwcap)
    assert notes[keys.AGENT_KERNEL_RELEASE_ANNOTATION] == os.uname().release
    assert notes[keys.AGENT_INHERITANCE_ANNOTATION] == expected == "unsupported"  # this kernel (no series)
    agent_log = (real.nodes[0].log_dir / "agent.log").read_text()
    assert "forbidden" not in agent_log.lower()


def _apply_domain(kubectl: Any, domains: Domains, name: str, namespace_label: str, **spec: Any) -> None:
    body = yaml.safe_load(domain_manifest(name, "real", **spec))
    body["spec"]["workloads"] = {"namespaceSelector": {"matchLabels": {"hwcap.dev/real": namespace_label}}}
    kubectl("apply", "-f", "-", input=yaml.safe_dump(body))


def _restricted_pod(name: str, image: str, container: Json) -> Json:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": image, **container,
                            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}}}],
        },
    }  # fmt: skip


def _pod(kubectl: Any, namespace: str, name: str) -> Json:
    out: Json = json.loads(kubectl("get", "pod", "-n", namespace, name, "-o", "json").stdout)
    return out


def _wait_phase(kubectl: Any, namespace: str, name: str, phases: tuple[str, ...], timeout: float = 180) -> Json:
    def done() -> Json | None:
        pod = _pod(kubectl, namespace, name)
        return pod if pod.get("status", {}).get("phase") in phases else None

    return wait_for(f"pod {namespace}/{name} in {phases}", done, timeout=timeout)


@pytest.fixture
def domain_namespace(kubectl: Any, namespace: str) -> str:
    """The test's namespace, labelled so this module's domains select it, enforcing Pod Security restricted."""
    kubectl("label", "namespace", namespace, f"hwcap.dev/real={namespace}",
            "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    return namespace


@pytest.fixture
def x86_domain(kubectl: Any, domains: Domains, domain_namespace: str, node_name: str,
               real_operator: OperatorProcess, tls: WebhookTLS, api_client: Any) -> Iterator[str]:  # fmt: skip
    """A Ready x86 domain over the real node (Preferred inheritance) and the webhook for the test namespace."""
    name = f"x86-{domain_namespace[-6:]}"
    _apply_domain(kubectl, domains, name, domain_namespace, arch="amd64", allowHidingSecurityFeatures=True,
                  baseline={"mode": "Preset", "preset": "x86-64-v3"},  # hides AVX-512 and SHA-NI here
                  enforcement={"kernelInheritance": "Preferred",
                               "userspaceFallbacks": ["glibcTunables", "goDebug", "opensslIa32cap"]})
    domains.wait_condition(name, "Ready", "True", timeout=90)
    assert real_operator.webhook is not None
    body = webhook_configuration(f"hwcap-{domain_namespace}", real_operator.webhook[0], tls, [domain_namespace])
    with installed_webhook(api_client, body):
        yield name
    domains.delete(name)


def test_injected_pod_runs_in_place_with_argv_env_and_cwd(kubectl: Any, x86_domain: str,
                                                          domain_namespace: str, real: RealNodes) -> None:
    assert real.images is not None
    script = 'echo "pid1=$(tr "\\0" " " < /proc/1/cmdline)"; echo "args=$*"; echo "cwd=$(pwd)"; echo "greet=$GREET"'
    pod = _restricted_pod("runs", real.images.sample, {
        "command": ["/bin/sh", "-c", script, "sh", "first arg", "second"],
        "env": [{"name": "GREET", "value": "hello there"}], "workingDir": "/tmp"})
    kubectl("create", "-n", domain_namespace, "-f", "-", input=yaml.safe_dump(pod))
    done = _wait_phase(kubectl, domain_namespace, "runs", ("Succeeded", "Failed"))
    init = done["status"]["initContainerStatuses"][0]
    assert init["image"].endswith("hwcap/hwcap-exec:dev") or real.images.init.split("/", 1)[1] in init["image"]
    assert init["state"]["terminated"]["exitCode"] == 0, init
    assert done["status"]["phase"] == "Succeeded", done["status"]
    logs = kubectl("logs", "-n", domain_namespace, "runs", "-c", "app").stdout.splitlines()
    # exec in place: PID 1 is the shell we wrote, not hwcap-exec (which exec'd into it)
    assert f"pid1=/bin/sh -c {script} sh first arg second " in logs, logs
    assert "args=first arg second" in logs
    assert "cwd=/tmp" in logs
    assert "greet=hello there" in logs


def test_on_failure_fail_exits_71_with_the_reason_in_describe(kubectl: Any, node_name: str, namespace: str,
                                                              real: RealNodes) -> None:
    """The webhook picks ``--on-failure=fail`` only for ``Required`` domains, which exclude this node (its
    kernel does not inherit), so the wrapped pod is written out here as the webhook would write it."""
    assert real.images is not None
    pod = _restricted_pod("denied", real.images.sample, {
        "command": ["/hwcap/bin/hwcap-exec", "--hwcap", "0x1", "--on-failure=fail", "--",
                    "/bin/sh", "-c", "echo should-not-run"],
        "volumeMounts": [{"name": "hwcap", "mountPath": "/hwcap/bin", "readOnly": True}],
        "terminationMessagePolicy": "FallbackToLogsOnError"})
    pod["spec"]["nodeName"] = node_name
    pod["spec"]["securityContext"]["seccompProfile"] = {"type": "Localhost", "localhostProfile": "deny-prctl.json"}
    pod["spec"]["volumes"] = [{"name": "hwcap", "emptyDir": {}}]
    pod["spec"]["initContainers"] = [{
        "name": "hwcap-install", "image": real.images.init,
        "command": ["/usr/local/bin/hwcap-exec", "--install", "/hwcap/bin/hwcap-exec"],
        "volumeMounts": [{"name": "hwcap", "mountPath": "/hwcap/bin"}],
        "securityContext": pod["spec"]["containers"][0]["securityContext"]}]
    kubectl("create", "-n", namespace, "-f", "-", input=yaml.safe_dump(pod))
    done = _wait_phase(kubectl, namespace, "denied", ("Succeeded", "Failed"))
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 71, term
    message = term.get("message", "")
    assert "should-not-run" not in message
    assert "prctl" in message or "PR_SET_MM" in message, term
    described = kubectl("describe", "pod", "-n", namespace, "denied").stdout
    assert "Exit Code:    71" in described and message.strip().splitlines()[0] in described


def test_image_without_command_runs_its_registry_entrypoint(kubectl: Any, x86_domain: str,
                                                            domain_namespace: str, real: RealNodes) -> None:
    assert real.images is not None
    kubectl("create", "-n", domain_namespace, "-f", "-",
            input=yaml.safe_dump(_restricted_pod("report", real.images.sample, {})))
    done = _wait_phase(kubectl, domain_namespace, "report", ("Succeeded", "Failed"))
    assert done["status"]["phase"] == "Succeeded", done["status"]
    app = done["spec"]["containers"][0]
    assert app["command"][0].endswith("hwcap-exec") and "/usr/local/bin/cpu-report" in app["command"]
    logs = kubectl("logs", "-n", domain_namespace, "report").stdout
    assert "== Go: gocpu" in logs and "AVX512F off" in logs  # GODEBUG fallback of the x86-64-v3 domain


def test_required_inheritance_excludes_the_real_node(kubectl: Any, domains: Domains, domain_namespace: str,
                                                     node_name: str, real_operator: OperatorProcess, node_factory: Any,
                                                     tls: WebhookTLS, api_client: Any, real: RealNodes) -> None:
    """The real node's agent probes this kernel (unsupported: docs/kernel.md#selftest), so a ``Required``
    domain excludes it. A second, simulated node whose kernel says ``supported`` keeps the domain Ready; it
    is cordoned, so the wrapped pod, which may only run on members, has nowhere to go and says why."""
    assert real.images is not None
    member = node_factory("x86_64-amd-zen4-genoa-epyc9654", labels={"hwcap.dev/test": "real"})["metadata"]["name"]
    kubectl("annotate", "node", member, f"{keys.AGENT_INHERITANCE_ANNOTATION}=supported", "--overwrite")
    kubectl("cordon", member)
    name = f"req-{domain_namespace[-6:]}"
    _apply_domain(kubectl, domains, name, domain_namespace, arch="amd64", allowHidingSecurityFeatures=True,
                  enforcement={"kernelInheritance": "Required"})
    try:
        status = domains.wait_status(name, lambda s: bool((s.get("members") or {}).get("count")), "a member",
                                     timeout=90)
        excluded = {n["name"]: n for n in status["excluded"]["nodes"]}
        assert excluded[node_name]["reason"] == "KernelCannotInherit", excluded
        assert status["members"]["names"] == [member]
        assert real_operator.webhook is not None
        body = webhook_configuration(f"hwcap-{domain_namespace}", real_operator.webhook[0], tls, [domain_namespace])
        with installed_webhook(api_client, body):
            pod = _restricted_pod("unplaced", real.images.sample, {"command": ["/bin/true"]})
            kubectl("create", "-n", domain_namespace, "-f", "-", input=yaml.safe_dump(pod))

            def unschedulable() -> str | None:
                out = kubectl("get", "events", "-n", domain_namespace, "--field-selector",
                              "involvedObject.name=unplaced,reason=FailedScheduling", "-o", "json").stdout
                items = json.loads(out)["items"]
                return items[0]["message"] if items else None

            message = wait_for("a FailedScheduling event", unschedulable, timeout=60)
            assert "didn't match Pod's node affinity/selector" in message, message
            assert "unschedulable" in message, message  # the cordoned member
            stored = _pod(kubectl, domain_namespace, "unplaced")
            assert stored["status"]["phase"] == "Pending" and not stored["spec"].get("nodeName")
    finally:
        domains.delete(name)


def test_delete_and_drain_leave_no_container(kubectl: Any, x86_domain: str, domain_namespace: str,
                                             node_name: str, real: RealNodes) -> None:
    assert real.images is not None
    pod = _restricted_pod("sleeper", real.images.sample, {"command": ["/bin/sleep", "300"]})
    kubectl("create", "-n", domain_namespace, "-f", "-", input=yaml.safe_dump(pod))
    _wait_phase(kubectl, domain_namespace, "sleeper", ("Running",))
    root = real.nodes[0].layout.cgroup_root
    assert len(cgroup_pids(root)) >= 2  # the sandbox's pause and the sleeping app
    kubectl("delete", "pod", "-n", domain_namespace, "sleeper", "--wait=true", "--timeout=60s")
    wait_for("no process left in the node's pod cgroups", lambda: not cgroup_pids(root), timeout=60)
    second = {**pod, "metadata": {"name": "s2", "labels": {"drained-by": domain_namespace}}}
    kubectl("create", "-n", domain_namespace, "-f", "-", input=yaml.safe_dump(second))
    _wait_phase(kubectl, domain_namespace, "s2", ("Running",))
    try:
        # Only this test's pod: finished pods of earlier tests sit in namespaces that stay Terminating (no
        # namespace controller here), where the API refuses to create the Eviction a drain needs.
        kubectl("drain", node_name, f"--pod-selector=drained-by={domain_namespace}", "--ignore-daemonsets",
                "--delete-emptydir-data", "--force", "--timeout=90s")
        wait_for("no process left after the drain", lambda: not cgroup_pids(root), timeout=60)
    finally:
        kubectl("uncordon", node_name)
    assert Path(real.nodes[0].layout.base).is_dir()
