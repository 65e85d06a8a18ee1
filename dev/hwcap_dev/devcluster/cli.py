"""``hwcap-dev cluster up|down|kubeconfig|status|build`` (also ``python -m hwcap_dev.devcluster``).

``up`` starts a detached control plane whose state lives in one directory (default
``~/.cache/hwcap-operator/devcluster/default``), with ``--real-nodes N`` also N kubelets with their own
containerd on this machine (see :mod:`.realnodes`); ``down`` stops it all from the recorded pids and removes
what the nodes left (processes, mounts, network links, namespaces), ``kubeconfig``
prints the admin kubeconfig path (``export KUBECONFIG=$(... kubeconfig)``), ``build`` builds or reuses the
pinned binaries and says how long it took. Exit codes: 0 ok, 1 failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from hwcap_dev.images.debs import DebError
from hwcap_dev.images.recipes import ImageBuildError
from hwcap_dev.images.registry import RegistryError
from hwcap_dev.shim import ShimNotFound, shim_path

from . import build
from .assets import AssetError, resolve_binaries
from .crio import ensure_crio_built
from .node_build import ensure_node_built
from .realnodes import RealNodes, read_recorded, stop_recorded_nodes
from .runner import ControlPlane, Options, StartupError, read_state, state_is_running, stop_recorded


def default_state_dir() -> Path:
    """Where ``up`` keeps a named cluster's state unless ``--state-dir`` says otherwise."""
    return build.cache_root() / "devcluster" / "default"


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="local kube-apiserver + etcd (+ scheduler)")
    parser.add_argument(
        "--state-dir", type=Path, default=None,
        help="state directory (default: ~/.cache/hwcap-operator/devcluster/default)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a control plane (detached unless --foreground)")
    up.add_argument("--no-scheduler", action="store_true", help="do not run kube-scheduler")
    up.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops everything")
    up.add_argument("--no-build", action="store_true", help="fail instead of building missing binaries")
    up.add_argument("--timeout", type=float, default=120.0, help="startup timeout in seconds")
    up.add_argument(
        "--real-nodes", type=int, default=0, metavar="N",
        help="also start N real nodes (kubelet + containerd on this machine, root only); pods really run",
    )
    up.add_argument(
        "--runtime", choices=("containerd", "cri-o"), default="containerd",
        help="the real nodes' container runtime (cri-o: restores pods from checkpoint images; hwcapctl migrate)",
    )
    sub.add_parser("down", help="stop the control plane recorded in the state directory")
    sub.add_parser("kubeconfig", help="print the admin kubeconfig path of a running control plane")
    sub.add_parser("status", help="say whether the control plane is running")
    b = sub.add_parser("build", help="build (or reuse) the pinned binaries and print where they are")
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    b.add_argument("--node", action="store_true", help="also build the real nodes' kubelet and containerd")
    b.add_argument("--crio", action="store_true", help="also build CRI-O for real nodes (--runtime cri-o)")
    return parser


def _up(args: argparse.Namespace, state_dir: Path) -> int:
    state = read_state(state_dir)
    if state is not None and state_is_running(state):
        print(f"already running: {state['server']}\nKUBECONFIG={state['kubeconfig']}")
        return 0
    if state is not None:
        stop_recorded(state_dir)  # half-dead leftovers of an earlier run
    binaries = resolve_binaries(allow_build=not args.no_build)
    options = Options(
        state_dir=state_dir, scheduler=not args.no_scheduler, start_timeout=args.timeout,
        detached=not args.foreground,
    )
    plane = ControlPlane(binaries, options)
    plane.start()
    print(f"control plane up: {plane.server}\nKUBECONFIG={plane.kubeconfig}\nlogs: {plane.log_dir}", flush=True)
    real = RealNodes(plane, args.real_nodes, detached=not args.foreground,
                     hwcap_exec=shim_path() if args.real_nodes else None, runtime=args.runtime)
    if args.real_nodes:
        try:
            real.start()
        except BaseException:
            plane.stop()
            raise
        names = ", ".join(node.name for node in real.nodes)
        print(f"real nodes Ready: {names} (registry {real.registry_host})", flush=True)
    if not args.foreground:
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    real.stop()
    plane.stop()
    print("control plane stopped")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m hwcap_dev.devcluster") -> int:
    """Entry point; returns the process exit code (``prog`` names the command in help, e.g.
    ``hwcap-dev cluster`` when the CLI delegates to it)."""
    try:
        args = _parser(prog).parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 2
    state_dir: Path = args.state_dir or default_state_dir()
    try:
        if args.command == "up":
            if args.real_nodes < 0 or (args.real_nodes and os.geteuid() != 0):
                print("devcluster up: --real-nodes needs N >= 0 and root (kubelet, containerd, runc, CNI)",
                      file=sys.stderr)
                return 2
            return _up(args, state_dir)
        if args.command == "down":
            stopped = stop_recorded_nodes(state_dir) + stop_recorded(state_dir)
            print("stopped: " + ", ".join(stopped) if stopped else f"nothing running in {state_dir}")
            return 0
        if args.command in ("kubeconfig", "status"):
            state = read_state(state_dir)
            if state is None or not state_is_running(state):
                print(f"no control plane running in {state_dir}; start one with `up`", file=sys.stderr)
                return 1
            print(state["kubeconfig"] if args.command == "kubeconfig" else f"running: {state['server']}")
            real = read_recorded(state_dir) if args.command == "status" else None
            for node in (real or {}).get("nodes", []):
                print(f"real node {node['name']}: kubelet 127.0.0.1:{node['kubelet_port']}, files {node['base']}")
            return 0
        if args.command == "build":
            results = [build.ensure_built(force=args.force)]
            if args.node:
                results.append(ensure_node_built(force=args.force))
            if args.crio:
                results.append(ensure_crio_built(force=args.force))
            for result in results:
                how = "reused cached binaries" if result.cached else "built"
                print(f"{how} in {result.seconds:.1f}s: {result.bin_dir}")
            return 0
    except (AssetError, build.BuildError, StartupError, ImageBuildError, RegistryError, DebError,
            ShimNotFound) as err:
        print(f"devcluster {args.command}: {err}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
