"""``make demo`` / ``hwcap-dev demo up|down|status``: the product end to end on one machine.

The entry point: ``up`` runs the story (:mod:`hwcap_dev.demo.story`) and leaves everything running, or stops
what it started when a step fails or it is interrupted; ``down`` stops everything ``up`` started; ``status``
says whether it runs and where the logs are.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from hwcap_dev.demo.processes import DemoError, stop_demo, stop_quietly, terminate_as_interrupt
from hwcap_dev.demo.state import DemoState, default_state_dir
from hwcap_dev.demo.story import Demo
from hwcap_dev.devcluster import build
from hwcap_dev.devcluster import simulated_nodes as nodes
from hwcap_dev.devcluster.assets import AssetError
from hwcap_dev.devcluster.runner import StartupError


def cmd_up(state_dir: Path, timeout: float, keep_on_failure: bool = False) -> int:
    state = DemoState.load(state_dir)
    if state.running():
        print(f"the demo is already running (state: {state_dir})\n  export KUBECONFIG={state.kubeconfig}\n"
              "  make demo-down   # to stop it")  # fmt: skip
        return 0
    stop_demo(state_dir)  # leftovers of an interrupted or half-dead run
    for stale in ("cluster", "logs", "webhook", "helm"):
        shutil.rmtree(state_dir / stale, ignore_errors=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    demo = Demo(state_dir, timeout=timeout)
    try:
        with terminate_as_interrupt():
            demo.up()
    except (DemoError, StartupError, AssetError, build.BuildError, nodes.ProfileError) as err:
        print(f"\ndemo failed: {err}\nlogs: {state_dir / 'logs'} and {state_dir / 'cluster' / 'logs'}",
              file=sys.stderr)  # fmt: skip
        if keep_on_failure and demo.plane is not None:
            demo.state.save()
            print(f"left running for inspection: export KUBECONFIG={demo.state.kubeconfig}; then make demo-down",
                  file=sys.stderr)  # fmt: skip
            return 1
        stop_quietly(state_dir, demo.plane)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what the demo started", file=sys.stderr)
        stop_quietly(state_dir, demo.plane)
        return 130
    except BaseException:
        stop_quietly(state_dir, demo.plane)
        raise
    return 0


def cmd_down(state_dir: Path) -> int:
    stopped = stop_demo(state_dir)
    print("stopped: " + ", ".join(stopped) if stopped else f"nothing running in {state_dir}")
    return 0


def cmd_status(state_dir: Path) -> int:
    state = DemoState.load(state_dir)
    if not state.running():
        print(f"the demo is not running (state: {state_dir}); start it with `make demo`")
        return 1
    print(f"running; export KUBECONFIG={state.kubeconfig}")
    for proc in state.processes:
        print(f"  {proc['name']} pid {proc['pid']} log {proc['log']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hwcap-dev demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=None,
                        help=f"where the demo keeps its state (default {default_state_dir()})")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start everything and show the product (detached; idempotent)")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds each wait may take")
    up.add_argument("--keep-on-failure", action="store_true", help="leave everything running when a step fails")
    sub.add_parser("down", help="stop everything `up` started")
    sub.add_parser("status", help="is the demo running; where are its logs")
    args = parser.parse_args(argv)
    state_dir: Path = (args.state_dir or default_state_dir()).resolve()
    if args.command == "up":
        return cmd_up(state_dir, args.timeout, args.keep_on_failure)
    if args.command == "down":
        return cmd_down(state_dir)
    return cmd_status(state_dir)


if __name__ == "__main__":
    sys.exit(main())
