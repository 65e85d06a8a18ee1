"""The demo's state file: which processes ``up`` started and where the control plane keeps its own state.

``down`` and ``status`` read it, in another process and possibly much later, so it is a JSON file in the state
directory (``~/.cache/hwcap-operator/demo`` by default), not anything held in memory.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwcap_dev.devcluster import build
from hwcap_dev.devcluster.processes import ManagedProcess, pid_runs


def default_state_dir() -> Path:
    """``~/.cache/hwcap-operator/demo`` (follows ``$HWCAP_OPERATOR_CACHE`` / ``$XDG_CACHE_HOME``)."""
    return build.cache_root() / "demo"


@dataclass
class DemoState:
    """What ``down`` needs: the demo's own processes and where the control plane keeps its state."""

    state_dir: Path
    processes: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.state_dir / "demo.json"

    @property
    def cluster_dir(self) -> Path:
        return self.state_dir / "cluster"

    @property
    def kubeconfig(self) -> Path:
        return self.cluster_dir / "kubeconfig"

    def record(self, proc: ManagedProcess, program: Path) -> None:
        self.processes.append({"name": proc.name, "pid": proc.pid, "program": str(program),
                               "log": str(proc.log_path)})  # fmt: skip
        self.save()

    def save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"processes": self.processes, "info": self.info}, indent=2) + "\n")

    @classmethod
    def load(cls, state_dir: Path) -> DemoState:
        state = cls(state_dir)
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(state.path.read_text())
            state.processes = list(data.get("processes", []))
            state.info = dict(data.get("info", {}))
        return state

    def running(self) -> bool:
        """True when the demo's processes and the control plane all still run."""
        cluster = _read_json(self.cluster_dir / "state.json")
        procs = [*self.processes, *(cluster or {}).get("processes", [])]
        return bool(self.processes) and cluster is not None and all(
            pid_runs(int(p["pid"]), Path(p["program"])) for p in procs
        )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data
