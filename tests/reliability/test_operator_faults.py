"""The operator killed and its control plane restarted, on the real apiserver, counted.

- SIGKILL at random points (≥ 50 trials in ``make reliability``): while the domain's members change and pods
  are admitted, the operator is killed 0–2 s after it became ready and started again (same Lease identity, as
  a container restarted in its pod). Afterwards: the same mask, no condition that ever flapped (each
  condition's lastTransitionTime never moves, watched throughout), every pod wrapped exactly once, none
  admitted without the mask.
- kube-apiserver restart and etcd restart mid-run: the operator, never restarted, follows a node change made
  after each restart.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev import reliability
from hwcap_dev.devcluster import faults
from hwcap_dev.devcluster.testing import ClusterAccess
from hwcap_operator import keys
from tests.e2e.webhook_support import (
    TEST_LABEL,
    WebhookTLS,
    installed_webhook,
    kubectl_create,
    read_pod,
    wait_until_injected,
    webhook_configuration,
)
from tests.support.domains import Domains
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.e2e

G2, G3 = "arm64-aws-graviton2-neoverse-n1", "arm64-aws-graviton3-neoverse-v1"
SHIM = "hwcap-exec"
Json = dict[str, Any]


def pod(name: str) -> Json:
    container = {"name": "app", "image": "registry.invalid/app:1", "command": ["/app"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container]}}


def wrappings(stored: Json) -> tuple[int, int]:
    """(install steps, the most times one container's command starts the shim): (1, 1) when wrapped once."""
    installs = sum(1 for c in stored["spec"].get("initContainers") or [] if c["name"] == "hwcap-install")
    per_container = [sum(1 for arg in c.get("command") or [] if str(arg).endswith(SHIM))
                     for c in stored["spec"]["containers"]]  # fmt: skip
    return installs, max(per_container, default=0)


class ConditionWatch:
    """Polls the domain and keeps every lastTransitionTime seen per condition type (a flap adds one)."""

    def __init__(self, domains: Domains, name: str) -> None:
        self.domains, self.name = domains, name
        self.seen: dict[str, set[str]] = {}
        self.masks: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ConditionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                status = self.domains.get(self.name).get("status") or {}
            except Exception:  # the poll itself may fail while the apiserver restarts
                continue
            for cond in status.get("conditions") or []:
                self.seen.setdefault(cond["type"], set()).add(f"{cond['status']}@{cond['lastTransitionTime']}")
            if status.get("mask"):
                self.masks.add(status["mask"]["id"])

    def flaps(self, steady: frozenset[str]) -> dict[str, int]:
        """Transitions of the conditions whose inputs never change in the test (a flap is any transition)."""
        return {t: len(v) - 1 for t, v in self.seen.items() if t in steady and len(v) > 1}


def _kill(op: OperatorProcess) -> None:
    assert op.proc is not None
    os.killpg(op.proc.pid, signal.SIGKILL)
    op.proc.wait(timeout=10)


def test_operator_sigkill_at_random_points_keeps_mask_conditions_and_wrapping(
    rig: tuple[OperatorProcess, str, WebhookTLS], api_client: client.ApiClient, core_v1: client.CoreV1Api,
    kubectl: Any, node_factory: Any, namespace: str, results: Path,
) -> None:  # fmt: skip
    op, name, tls = rig
    assert op.webhook is not None
    trials = reliability.scaled(full=50, ci=3)
    rng = random.Random(11)
    domains = Domains(api_client)
    mask = domains.get(name)["status"]["mask"]["id"]
    weaker = node_factory(G2, labels={TEST_LABEL: "elsewhere"})["metadata"]["name"]  # joins and leaves: excluded
    losses = {"mask changed": 0, "condition flaps": 0, "pods wrapped more than once": 0,
              "pods admitted without mask": 0, "pods refused while ready": 0}  # fmt: skip
    config = webhook_configuration(f"hwcap-{namespace}", op.webhook[0], tls, [namespace], failure_policy="Fail")
    started = time.monotonic()
    with installed_webhook(api_client, config), ConditionWatch(domains, name) as watch:
        wait_until_injected(core_v1, namespace, name)
        for trial in range(trials):
            # A membership change for the operator to be in the middle of when it dies (frozen: mask unchanged).
            core_v1.patch_node(weaker, {"metadata": {"labels": {TEST_LABEL: namespace if trial % 2 == 0 else "x"}}})
            created = kubectl_create(kubectl, namespace, pod(f"p{trial}"))
            if created.returncode != 0:
                losses["pods refused while ready"] += 1
            else:
                stored = read_pod(core_v1, namespace, f"p{trial}")
                annotations = stored["metadata"].get("annotations") or {}
                if annotations.get(keys.POD_MASK_ID_ANNOTATION) != mask:
                    losses["pods admitted without mask"] += 1
                if wrappings(stored) != (1, 1):
                    losses["pods wrapped more than once"] += 1
            time.sleep(rng.uniform(0.0, 2.0))
            _kill(op)
            op.start()  # ready = the view is loaded again
        excluded = 1 if (trials - 1) % 2 == 0 else 0
        status = domains.wait_status(name, lambda s: (s.get("excluded") or {}).get("count", 0) == excluded,
                                     "the final membership", timeout=60)  # fmt: skip
    losses["mask changed"] = int(status["mask"]["id"] != mask) + len(watch.masks - {mask})
    # Degraded follows the weaker node's exclusion (it changes by design); these must never move.
    steady = frozenset({"Ready", "MaskValid", "KernelSupport"})
    losses["condition flaps"] = sum(watch.flaps(steady).values())
    elapsed = time.monotonic() - started
    reliability.record("operator SIGKILL at random points", "operator", trials, losses,
                       f"kill -9 0-2 s after ready, a weaker node joining/leaving each trial, one pod admitted "
                       f"per trial under failurePolicy Fail; {elapsed:.0f} s. Watched: {', '.join(sorted(steady))} "
                       f"(Degraded follows the exclusion by design)",
                       directory=results)  # fmt: skip
    print(f"\nSIGKILL trials: {trials}, losses: {losses}, {elapsed:.0f}s")
    assert losses == dict.fromkeys(losses, 0)


def test_apiserver_and_etcd_restarts_are_survived_without_restarting_the_operator(
    rig: tuple[OperatorProcess, str, WebhookTLS], control_plane: ClusterAccess, api_client: client.ApiClient,
    node_factory: Any, namespace: str, results: Path,
) -> None:  # fmt: skip
    op, name, _ = rig
    if control_plane.plane is None:
        pytest.fail("restarting components needs the local control plane")
    rounds = reliability.scaled(full=3, ci=1)
    domains = Domains(api_client)
    pid = op.proc.pid if op.proc else None
    for component in ("kube-apiserver", "etcd"):
        lost = 0
        downtime: list[float] = []
        for _ in range(rounds):
            downtime.append(faults.restart(control_plane.plane, component))  # type: ignore[arg-type]
            before = domains.get(name)["status"]["members"]["count"]
            node_factory(G3, labels={TEST_LABEL: namespace})
            try:
                domains.wait_status(name, lambda s, n=before: s["members"]["count"] == n + 1,
                                    f"a new member after the {component} restart", timeout=120)  # fmt: skip
            except AssertionError:
                lost += 1
        restarted = int(op.proc is None or op.proc.poll() is not None or op.proc.pid != pid)
        reliability.record(f"{component} restart mid-run", "control plane", rounds,
                           {"status not following a node change": lost, "operator restarts needed": restarted},
                           f"{component} stopped ~2 s and started again (down {max(downtime):.1f} s at most); then "
                           "a node joins and the status must follow within 120 s", directory=results)  # fmt: skip
        assert (lost, restarted) == (0, 0), component
