"""``hwcap-dev``: the development tools' one command (``cluster ...``, ``demo ...``); ``hwcapctl`` keeps product verbs.

Each subcommand's own parser reads everything after its name, ``--help`` included, so ``hwcap-dev cluster up
--help`` is the dev cluster's help.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: hwcap-dev {cluster,demo,images} ...

  cluster   local kube-apiserver + etcd (+ scheduler) built from Go modules: up, down, kubeconfig, status, build
  demo      the product end to end on that cluster: up, down, status (what `make demo` runs)
  images    assemble an image without an engine: operator (OCI index amd64 + arm64, SBOM, --push)
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to the dev cluster's or the demo's CLI; exit 2 with the usage for anything else."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["cluster"]:
        from hwcap_dev.devcluster.cli import main as cluster_main

        return cluster_main(args[1:], prog="hwcap-dev cluster")
    if args[:1] == ["demo"]:
        from hwcap_dev.demo.cli import main as demo_main

        return demo_main(args[1:])
    if args[:1] == ["images"]:
        from hwcap_dev.images.cli import main as images_main

        return images_main(args[1:])
    if args[:1] in (["-h"], ["--help"]):
        print(USAGE, end="")
        return 0
    print(USAGE, end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
