"""``hwcapctl``: inspect CPU feature masks, check migrations and simulate the kernel, from files or a cluster.

Exit codes (scriptable): 0 ok, 1 a check failed (the output says why), 2 bad input (one line naming it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from hwcap_operator.cli import verbs_cluster as verbs_cluster
from hwcap_operator.cli import verbs_local as verbs_local
from hwcap_operator.cli.inputs import BadInput
from hwcap_operator.cli.output import FORMATS

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors already; keep its message to one line prefixed with the program."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwcapctl", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("-o", "--output", choices=FORMATS, default="table", help="output format (default table)")
        p.set_defaults(func=func)
        return p

    p = add("baseline", verbs_local.baseline, "common feature mask of cpuinfo dumps, NFD label files or Node YAML")
    p.add_argument("files", nargs="+", metavar="FILE")

    p = add("explain", verbs_local.explain, "name the bits of HWCAP words")
    p.add_argument("--arch", required=True)
    for word in ("hwcap", "hwcap2", "hwcap3", "hwcap4"):
        p.add_argument(f"--{word}", default="0", metavar="0x..")
    p.add_argument("--compat", action="store_true", help="AArch32 (COMPAT_HWCAP) meaning of the bits on arm64")

    p = add("check", _check, "may a process holding MASK run on NODE (files), or may a pod move (cluster)")
    p.add_argument("--mask", help="canonical mask, preset:NAME, or a file (baseline JSON, node dump)")
    p.add_argument("--node", required=True, help="FILE with --mask (cpuinfo, NFD labels, Node); a node NAME "
                   "with --domain/--pod")
    p.add_argument("--domain", help="with --pod: check the pod's recorded mask against a cluster node")
    p.add_argument("--pod", metavar="NS/NAME")
    p.add_argument("--kubeconfig")

    p = add("get", verbs_cluster.get_domains, "list MigrationDomains with their masks and dropped features")
    p.add_argument("kind", metavar="domains")
    p.add_argument("--kubeconfig")

    p = add("what-if", verbs_cluster.what_if, "dry run: would this node be admitted, excluded, or lower the mask")
    p.add_argument("--domain", required=True)
    p.add_argument("--node", required=True, metavar="FILE")
    p.add_argument("--kubeconfig")

    p = add("auxv", verbs_local.auxv, "decode a raw auxiliary vector (/proc/PID/auxv) and name its HWCAP bits")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--arch", required=True, help="the architecture whose HWCAP tables name the bits")
    p.add_argument("--layout", choices=("auto", "64le", "64be", "32le", "32be"), default="auto")

    p = add("simulate", verbs_local.simulate, "the exec model's trace of the init step on a node")
    p.add_argument("--mask", required=True, help="canonical mask, preset:NAME, or a file")
    p.add_argument("--node", required=True, metavar="FILE")
    p.add_argument("--kernel", choices=("none", "v4", "v5"), default="v5", help="patch level of the node's kernel")

    return parser


def _check(args: argparse.Namespace) -> int:
    if args.domain or args.pod:
        if not (args.domain and args.pod) or args.mask:
            raise BadInput("check: give either --mask MASK --node FILE, or --domain NAME --pod NS/NAME --node NODE")
        args.node_name = args.node
        return verbs_cluster.check_pod(args)
    if not args.mask:
        raise BadInput("check: --mask is required (or --domain and --pod for a pod in the cluster)")
    return verbs_local.check(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; BadInput anywhere becomes exit 2 with its one-line message."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BadInput as exc:
        print(f"hwcapctl: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
