"""Faults on a running dev control plane: stop a component (etcd, kube-apiserver) and start it again with the
same arguments, ports, certificates and data, as a crash-and-restart or a node reboot would.

For the reliability tests: the operator must recover from both without being restarted itself.
"""

from __future__ import annotations

import time
from typing import Literal

from hwcap_dev.devcluster.runner import LOOPBACK, ControlPlane, StartupError, _http_ok

Component = Literal["etcd", "kube-apiserver"]


def restart(plane: ControlPlane, component: Component, *, down_for: float = 2.0, timeout: float = 60.0) -> float:
    """Stop ``component``, keep it down ``down_for`` seconds, start it again and wait until it is healthy.

    Returns the seconds from the stop to healthy again. Raises :class:`StartupError` with the component's log
    when it does not come back within ``timeout``.
    """
    proc = next((p for p in plane._procs if p.name == component), None)
    if proc is None:
        raise StartupError(f"no {component} in this control plane (started: {[p.name for p in plane._procs]})")
    stopped = time.monotonic()
    proc.stop(plane.options.stop_timeout)
    time.sleep(down_for)
    proc.start()

    def healthy() -> bool:
        if component == "etcd":
            return _http_ok(f"http://{LOOPBACK}:{plane.ports.etcd_client}/health")
        return plane._api_ok("/readyz")

    deadline = time.monotonic() + timeout
    while not healthy():
        if proc.exited() is not None or time.monotonic() > deadline:
            raise StartupError(f"{component} did not come back within {timeout:.0f}s:\n{proc.log_tail()}")
        time.sleep(0.2)
    return time.monotonic() - stopped
