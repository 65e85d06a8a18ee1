"""The demo's real-node part: this machine joins the x86 domain as a real node and a wrapped pod really runs.

With root, ``make demo`` starts two real nodes (kubelet + CRI-O + runc, :mod:`hwcap_dev.devcluster.realnodes`;
CRI-O because it restores a pod from a checkpoint image, which the migration after this step needs) next to the
fake ones, labels them into the x86 pool, and runs the sample image in the x86 domain's namespace on the first.
The pod's ``kubectl logs`` show, in order: the words hwcap-exec applied (the pod's ``hwcap.dev/hwcap``
annotation, read through the downward API), this kernel's inheritance verdict (``hwcap-exec --probe``), and
what glibc, Go and OpenSSL decide under the fallbacks the webhook merged into the environment. Without root
the step says why it is skipped; arm64 stays simulated (no arm64 machine here).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from hwcap_dev.demo.console import Step
from hwcap_dev.demo.processes import ClusterCommands, wait_for
from hwcap_dev.devcluster.realnodes import RealNodes
from hwcap_operator import keys

REAL_POD = "cpu-report"
REAL_NODE_PREFIX = "demo-real-amd64"
#: What the pod runs (the webhook wraps it in hwcap-exec, which execs it in place).
REPORT_SCRIPT = (
    'echo "== hwcap-exec applied the domain mask: AT_HWCAP..AT_HWCAP4 = $HWCAP_WORDS '
    '(domain $HWCAP_DOMAIN, mask $HWCAP_MASK_ID)"; '
    'echo "== this kernel, asked by hwcap-exec --probe: $(/hwcap/bin/hwcap-exec --probe)"; '
    "exec /usr/local/bin/cpu-report"
)

ON_A_PATCHED_KERNEL = """\
    What holds where:
    - On a kernel with HWCAP inheritance (probe: supported) every process of the pod would see the domain's
      AT_HWCAP words, as hwcap-exec set them, and runtimes that read AT_HWCAP (arm64: glibc, Go, OpenSSL)
      would pick code paths every member runs.
    - On this kernel (probe: unsupported) the mask stops at the first exec: the app sees the machine's words.
      On x86 that changes little: glibc, Go and OpenSSL read CPUID, which no HWCAP can hide, so the
      fallbacks above (GLIBC_TUNABLES, GODEBUG, OPENSSL_ia32cap) are what makes them skip AVX-512 here, on
      any kernel. A Required domain would exclude this node instead (the e2e tests show that)."""


def can_run_real_nodes() -> str | None:
    """None when this machine can run a real node, else why not."""
    if os.geteuid() != 0:
        return "real nodes need root (kubelet, CRI-O, runc, CNI); run `make demo` as root to see pods run and migrate"
    return None


def report_pod(image: str, node: str) -> dict[str, Any]:
    """The sample pod as its author writes it: Pod Security restricted, pinned to the real node."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": REAL_POD},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.io/hostname": node},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "report", "image": image, "command": ["/bin/sh", "-c", REPORT_SCRIPT],
                "env": [{"name": "HWCAP_WORDS", "valueFrom": {"fieldRef": {
                    "fieldPath": f"metadata.annotations['{keys.POD_HWCAP_WORDS_ANNOTATION}']"}}}],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
            }],
        },
    }  # fmt: skip


def run_real_pod(real: RealNodes, sh: ClusterCommands, namespace: str, pool_label: str, pool: str,
                 say: Callable[[str], None], step: Callable[[str], Step], timeout: float) -> None:
    """Start the real node, put it in ``pool``, run the report pod in ``namespace``, show its logs."""
    assert real.images is not None
    with step(f"starting {real.count} real nodes on this machine (kubelet + CRI-O + runc; first run builds them)"):
        real.start_nodes()
        for started in real.nodes:
            sh.kubectl("label", "node", started.name, f"{pool_label}={pool}", "--overwrite", show=False)
        node = real.nodes[0].name
    sh.kubectl("get", "node", *(started.name for started in real.nodes), "-o", "wide")
    with step(f"running {REAL_POD} (image {real.images.sample}) in {namespace} on {node}"):
        sh.kubectl("apply", "-n", namespace, "-f", "-", input_text=json.dumps(report_pod(real.images.sample, node)))

        def finished() -> str | None:
            phase = str(sh.get_json("pod", "-n", namespace, REAL_POD).get("status", {}).get("phase", ""))
            return phase if phase in ("Succeeded", "Failed") else None

        phase = wait_for(f"{REAL_POD} to run to completion", finished, max(timeout, 180.0))
    sh.kubectl("get", "pod", "-n", namespace, REAL_POD, "-o", "wide")
    say(f"$ kubectl logs -n {namespace} {REAL_POD}   # phase {phase}")
    for line in sh.kubectl("logs", "-n", namespace, REAL_POD, show=False).stdout.splitlines():
        say("  " + line)
    say(ON_A_PATCHED_KERNEL)
