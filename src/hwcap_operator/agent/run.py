"""The agent's loop: observe the node, merge-patch its annotations when they changed, serve metrics.

It patches only its own Node and only when something changed, so 5,000 agents cost the API server a
read per interval and almost no writes.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from hwcap_operator.agent import nodefeature
from hwcap_operator.agent.report import MaskedAgentError, annotation_patch, observe
from hwcap_operator.auxv import AuxvParseError
from hwcap_operator.kube import raw_api

log = logging.getLogger("hwcap_operator.agent")


@dataclass
class AgentMetrics:
    registry: CollectorRegistry

    def __post_init__(self) -> None:
        self.reports = Counter("hwcap_agent_reports_total", "Agent observation rounds by result.", ["result"],
                               registry=self.registry)  # fmt: skip
        self.inheritance = Gauge("hwcap_agent_kernel_inherits_hwcaps",
                                 "1 when this node's kernel inherits HWCAPs across exec, 0 when not, -1 unknown.",
                                 registry=self.registry)  # fmt: skip


_INHERITANCE_VALUE = {"supported": 1, "unsupported": 0, "unknown": -1}


def run_once(api: client.ApiClient, node_name: str, hwcap_exec: Path | None, metrics: AgentMetrics,
             nodefeature_namespace: str | None = None) -> str:  # fmt: skip
    """One round; returns the result label (``patched``, ``unchanged`` or an error kind) and never raises
    for node-side problems, so a transient API error does not kill the DaemonSet pod. With
    ``nodefeature_namespace`` the reading is also published as an NFD NodeFeature there."""
    try:
        report = observe(hwcap_exec)
    except MaskedAgentError as exc:
        log.error("refusing to report", extra={"node": node_name, "reason": str(exc)})
        return "masked"
    except (OSError, AuxvParseError) as exc:
        log.error("cannot read this node's auxv", extra={"node": node_name, "reason": str(exc)})
        return "auxv-error"
    metrics.inheritance.set(_INHERITANCE_VALUE[report.inheritance])
    try:
        node = raw_api.read_node(api, node_name)
        patch = annotation_patch((node.get("metadata") or {}).get("annotations"), report)
        if patch is not None:
            raw_api.patch_node(api, node_name, {"metadata": {"annotations": patch}})
        published = nodefeature_namespace is not None and nodefeature.publish(
            api, report, node_name, nodefeature_namespace
        )
    except ApiException as exc:
        log.error("cannot update the Node", extra={"node": node_name, "status": exc.status, "reason": exc.reason})
        return "api-error"
    if patch is None and not published:
        return "unchanged"
    log.info("published node features", extra={"node": node_name, "nodeFeature": published, **(patch or {})})
    return "patched"


def run(api_client: client.ApiClient, node_name: str, hwcap_exec: Path | None, interval: float,
        metrics_port: int | None, once: bool = False, nodefeature_namespace: str | None = None) -> int:  # fmt: skip
    """Loop until SIGTERM/SIGINT; exit status 1 only when ``once`` and the round failed."""
    metrics = AgentMetrics(CollectorRegistry())
    if metrics_port:
        start_http_server(metrics_port, registry=metrics.registry)
    api = api_client
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signum})
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while True:
        result = run_once(api, node_name, hwcap_exec, metrics, nodefeature_namespace)
        metrics.reports.labels(result=result).inc()
        if once:
            return 0 if result in ("patched", "unchanged") else 1
        if stop.wait(interval):
            return 0
