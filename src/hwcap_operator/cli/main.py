"""``hwcapctl`` (also ``kubectl hwcap``): inspect CPU feature masks, check migrations, simulate the kernel.

The argument parser lives here; each verb's work is in verbs_local (files) or verbs_cluster (the cluster).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

import argcomplete
import urllib3
from argcomplete.shell_integration import shellcode
from kubernetes.client.exceptions import ApiException

from hwcap_operator.admission.fallbacks import FALLBACK_KINDS
from hwcap_operator.cli import verbs_cluster as verbs_cluster
from hwcap_operator.cli import verbs_coverage as verbs_coverage
from hwcap_operator.cli import verbs_level as verbs_level
from hwcap_operator.cli import verbs_local as verbs_local
from hwcap_operator.cli import verbs_migrate as verbs_migrate
from hwcap_operator.cli.inputs import BadInput
from hwcap_operator.cli.output import FORMATS

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_CLUSTER_UNREACHABLE = 0, 1, 2, 3
SHELLS = ("bash", "zsh", "fish")
#: The names a shell may call us by; completion scripts register all of them.
PROGRAMS = ("hwcapctl", "kubectl-hwcap")

DESCRIPTION = """\
Inspect CPU feature masks, check whether a process may move between nodes, and simulate the kernel's
HWCAP inheritance, from files (cpuinfo dumps, NFD labels, Node YAML) or from a cluster.

Exit codes:
  0  ok
  1  a check failed (the output says why)
  2  bad input: an argument, a file, a kubeconfig or a name that does not exist (one line names it)
  3  the cluster could not be asked: API server unreachable, TLS or credentials refused, or an API error
     (one line names the server and the reason)
"""

EXAMPLES = {
    "baseline": """\
examples:
  {prog} baseline graviton2.txt graviton3.txt          # common features of two cpuinfo dumps
  {prog} baseline node-a.yaml node-b.yaml -o json > mask.json""",
    "explain": """\
examples:
  {prog} explain --arch arm64 --hwcap 0x1fff
  {prog} explain --arch arm64 --hwcap2 0x2 --compat    # the AArch32 meaning of the bits""",
    "check": """\
examples:
  {prog} check --mask preset:armv8.2 --node graviton2.txt
  {prog} check --mask mask.json --node node.yaml -o json
  {prog} check --domain gravitons --pod shop/cart-0 --node ip-10-0-1-7   # may this pod move there?""",
    "get": """\
examples:
  {prog} get domains
  {prog} get domains -o yaml --context prod""",
    "what-if": """\
examples:
  {prog} what-if --domain gravitons --node graviton2.txt   # admitted, excluded, or lowers the mask?""",
    "migrate": """\
examples:
  {prog} migrate --pod shop/cart-0 --to ip-10-0-1-7 --dry-run      # refused (and why) or OK, nothing touched
  {prog} migrate --pod shop/cart-0 --to ip-10-0-1-7 --registry registry.local:5000""",
    "level": """\
examples:
  {prog} level --mask graviton2.txt --node graviton4.txt                  # boot parameters for kernel 6.12
  {prog} level --mask preset:armv8.2 --node node.yaml --kernel 6.6 -o json
  {prog} level --domain gravitons --node ip-10-0-1-7    # the domain's mask, the node's own kernel release""",
    "auxv": """\
examples:
  {prog} auxv /proc/self/auxv --arch amd64
  {prog} auxv auxv.bin --arch arm64 --layout 32le""",
    "simulate": """\
examples:
  {prog} simulate --mask preset:armv8.2 --node graviton3.txt --kernel v4""",
    "completion": """\
examples:
  source <({prog} completion bash)                     # bash, this shell
  {prog} completion zsh > "${{fpath[1]}}/_hwcapctl"      # zsh
  {prog} completion fish > ~/.config/fish/completions/hwcapctl.fish""",
}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors already; keep its message to one line prefixed with the program."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message}\n")


def program_name(argv0: str | None = None) -> str:
    """``kubectl hwcap`` when kubectl runs us as its plugin ``kubectl-hwcap``, else ``hwcapctl``."""
    base = os.path.basename(argv0 if argv0 is not None else sys.argv[0])
    return "kubectl hwcap" if base.startswith("kubectl-hwcap") else "hwcapctl"


def _cluster_options() -> _Parser:
    options = _Parser(add_help=False)
    group = options.add_argument_group("cluster access")
    group.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    group.add_argument("--context", metavar="NAME", help="kubeconfig context to use (default: the current one)")
    return options


def build_parser(prog: str = "hwcapctl") -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('hwcap-operator')}")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser, metavar="VERB")
    cluster = _cluster_options()

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_text: str, *, uses_cluster: bool = False
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXAMPLES[name].format(prog=prog),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[cluster] if uses_cluster else [],
        )
        p.add_argument("-o", "--output", choices=FORMATS, default="table", help="output format (default table)")
        p.set_defaults(func=func)
        return p

    p = add("baseline", verbs_local.baseline, "common feature mask of cpuinfo dumps, NFD label files or Node YAML")
    p.add_argument("files", nargs="+", metavar="FILE", help="cpuinfo/lscpu dump, NFD label file, Node or NodeFeature")

    p = add("explain", _explain, "name the bits of HWCAP words, list a preset's features, or a domain's coverage",
            uses_cluster=True)  # fmt: skip
    p.add_argument("what", nargs="?", metavar="preset:NAME|presets", help="a preset's features, or every preset")
    p.add_argument("--domain", help="a MigrationDomain (cluster): per dropped feature, what still shows it and "
                   "which of its fallbacks cover it")  # fmt: skip
    p.add_argument("--arch", help="architecture whose HWCAP tables name the bits (arm64, amd64, ...)")
    for word in ("hwcap", "hwcap2", "hwcap3", "hwcap4"):
        p.add_argument(f"--{word}", default="0", metavar="0x..", help=f"the AT_{word.upper()} word (default 0)")
    p.add_argument("--compat", action="store_true", help="AArch32 (COMPAT_HWCAP) meaning of the bits on arm64")

    p = add("check", _check, "may a process holding MASK run on NODE (files), or may a pod move (cluster)",
            uses_cluster=True)  # fmt: skip
    p.add_argument("--mask", help="canonical mask, preset:NAME, or a file (baseline JSON, node dump)")
    p.add_argument("--node", required=True, help="FILE with --mask (cpuinfo, NFD labels, Node); a node NAME "
                   "with --domain/--pod")  # fmt: skip
    p.add_argument("--domain", help="with --pod: check the pod's recorded mask against a cluster node")
    p.add_argument("--pod", metavar="NS/NAME", help="with --domain: the injected pod, as NAMESPACE/NAME")

    p = add("get", verbs_cluster.get_domains, "list MigrationDomains with their masks and dropped features",
            uses_cluster=True)  # fmt: skip
    p.add_argument("kind", metavar="domains", choices=verbs_cluster.DOMAIN_KINDS,
                   help="what to list: domains (also mdom, hwmd, migrationdomains)")  # fmt: skip

    p = add("what-if", verbs_cluster.what_if, "dry run: would this node be admitted, excluded, or lower the mask",
            uses_cluster=True)  # fmt: skip
    p.add_argument("--domain", required=True, help="the MigrationDomain's name")
    p.add_argument("--node", required=True, metavar="FILE", help="the candidate node's cpuinfo, NFD labels or Node")

    p = add("migrate", verbs_migrate.migrate, "checkpoint a running pod and restore it on another member node "
            "(refused first when the node is not a member or lacks a feature of the pod's mask)",
            uses_cluster=True)  # fmt: skip
    p.add_argument("--pod", required=True, metavar="NS/NAME", help="the running pod, as NAMESPACE/NAME")
    p.add_argument("--to", required=True, metavar="NODE", help="the target node's name")
    p.add_argument("--container", action="append", metavar="NAME", help="repeatable (default: every container)")
    p.add_argument("--registry", metavar="HOST[:PORT]", help="where the checkpoint images are pushed")
    p.add_argument("--insecure-registry", action="store_true", help="plain HTTP to the registry (loopback)")
    p.add_argument("--dry-run", action="store_true", help="only decide: refused (with why) or OK")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep the checkpoint archives and images after "
                   "a completed move (by default they are removed: they hold the containers' memory)")  # fmt: skip
    p.add_argument("--kubelet-direct", action="store_true", help="checkpoint at the kubelet's own address, not "
                   "through the API server's nodes/proxy (which refuses loopback node addresses)")  # fmt: skip

    p = add("level", verbs_level.level, "arm64: the boot parameters (ID-register overrides) that take a node "
            "down to a mask on its kernel, what they remove and what stays above the mask",
            uses_cluster=True)  # fmt: skip
    p.add_argument("--mask", help="canonical mask, preset:NAME, or a file (baseline JSON, node dump)")
    p.add_argument("--node", required=True, help="FILE with --mask (cpuinfo, NFD labels, Node); a node NAME "
                   "with --domain")  # fmt: skip
    p.add_argument("--domain", help="a MigrationDomain (cluster): its published mask and security setting")
    p.add_argument("--kernel", metavar="RELEASE", help="the node's kernel release, e.g. 6.12.48-arm64 (default: "
                   "6.12, or what the Node reports with --domain)")  # fmt: skip
    p.add_argument("--allow-hiding-security", action="store_true",
                   help="also lower PAuth, BTI and MTE (as allowHidingSecurityFeatures does for a domain)")  # fmt: skip

    p = sub.add_parser("fallbacks", help="the env a pod of a domain with MASK gets on NODE (userspace fallbacks)",
                       description="the environment the webhook merges into a container of a domain with MASK on "
                       "NODE, and per dropped feature the channels and runtimes it does not cover",
                       epilog=f"examples:\n  {prog} fallbacks --mask preset:x86-64-v3 --node /proc/cpuinfo -o env",
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("-o", "--output", choices=(*FORMATS, "env"), default="table", help="env: VAR=value lines")
    p.add_argument("--mask", required=True, help="canonical mask, preset:NAME, or a file")
    p.add_argument("--node", required=True, metavar="FILE", help="the node's cpuinfo, NFD labels, Node or NodeFeature")
    p.add_argument("--fallback", action="append", choices=FALLBACK_KINDS, help="repeatable (default: all)")
    p.set_defaults(func=verbs_local.fallbacks)

    p = add("auxv", verbs_local.auxv, "decode a raw auxiliary vector (/proc/PID/auxv) and name its HWCAP bits")
    p.add_argument("file", metavar="FILE", help="the raw bytes of /proc/PID/auxv (a copy or the file itself)")
    p.add_argument("--arch", required=True, help="the architecture whose HWCAP tables name the bits")
    p.add_argument("--layout", choices=("auto", "64le", "64be", "32le", "32be"), default="auto",
                   help="word size and byte order of the vector (default: guessed from its bytes)")  # fmt: skip

    p = add("simulate", verbs_local.simulate, "the exec model's trace of the init step on a node")
    p.add_argument("--mask", required=True, help="canonical mask, preset:NAME, or a file")
    p.add_argument("--node", required=True, metavar="FILE", help="the node's cpuinfo, NFD labels or Node")
    p.add_argument("--kernel", choices=("none", "v4", "v5"), default="v5", help="patch level of the node's kernel")

    p = sub.add_parser("completion", help="print a shell completion script", description="print a shell "
                       "completion script (argcomplete) for hwcapctl and kubectl-hwcap",
                       epilog=EXAMPLES["completion"].format(prog=prog),
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("shell", choices=SHELLS, help="the shell that will load the script")
    p.set_defaults(func=_completion)
    return parser


def _explain(args: argparse.Namespace) -> int:
    if args.domain:
        return verbs_coverage.explain_domain(args)
    return verbs_local.explain(args)


def _check(args: argparse.Namespace) -> int:
    if args.domain or args.pod:
        if not (args.domain and args.pod) or args.mask:
            raise BadInput("check: give either --mask MASK --node FILE, or --domain NAME --pod NS/NAME --node NODE")
        args.node_name = args.node
        return verbs_cluster.check_pod(args)
    if not args.mask:
        raise BadInput("check: --mask is required (or --domain and --pod for a pod in the cluster)")
    return verbs_local.check(args)


def _completion(args: argparse.Namespace) -> int:
    script: str = shellcode(list(PROGRAMS), shell=args.shell)  # type: ignore[no-untyped-call]
    sys.stdout.write(script)
    return EXIT_OK


def unreachable_message(exc: Exception) -> str:
    """One line naming the API server and why it could not be asked (no traceback, no object reprs)."""
    if isinstance(exc, ApiException):
        return f"the Kubernetes API server answered {exc.status} {exc.reason}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError):
        pool = exc.pool
        where = f" {pool.scheme}://{pool.host}:{pool.port}" if pool is not None else ""
        reason = str(exc.reason or exc)
        for marker in ("Failed to establish a new connection: ", "] "):
            reason = reason.split(marker, 1)[-1] if marker in reason else reason
        return f"cannot reach the Kubernetes API server{where}: {reason.rstrip(')').strip()}"
    return f"cannot reach the Kubernetes API server: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb: BadInput becomes exit 2, an unreachable or refusing cluster exit 3, each one line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = program_name()
    parser = build_parser(prog)
    argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BadInput as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ApiException, urllib3.exceptions.HTTPError) as exc:
        print(f"{prog}: {unreachable_message(exc)}", file=sys.stderr)
        return EXIT_CLUSTER_UNREACHABLE
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
