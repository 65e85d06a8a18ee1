"""``hwcap-dev images operator``: assemble the operator image without an engine, write it as an OCI layout and
optionally push it to a plain-http registry (the loopback one of the dev cluster, or any ``host:port``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hwcap_dev.devcluster.build import cache_root

from .debs import DebError
from .oci import write_layout
from .operator_image import build_operator
from .push import push
from .recipes import ImageBuildError
from .registry import RegistryClient, RegistryError


def main(argv: Sequence[str], prog: str = "hwcap-dev images") -> int:
    """Build (and push); exit 1 with the failing step's message on error."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="image", required=True)
    operator = sub.add_parser("operator", help="OCI index linux/amd64 + linux/arm64 and a CycloneDX SBOM")
    operator.add_argument("--out", type=Path, default=Path("build/images"),
                          help="where the rootfs trees, the SBOM and the OCI layout (<out>/oci) go")
    operator.add_argument("--push", metavar="HOST:PORT", help="also push to this plain-http registry")
    args = parser.parse_args(list(argv))
    try:
        built = build_operator(args.out, cache_root() / "images" / "operator")
        if built.index is None:
            raise ImageBuildError("the operator recipe returned a single-platform image")
        layout = write_layout(args.out / "oci", built.images, built.index, built.tag)
        print(f"{built.repo}:{built.tag} {built.digest}\n  OCI layout: {layout}\n  SBOM: {built.sbom_path}")
        if args.push:
            print(f"  pushed: {push(RegistryClient(args.push), built)}")
    except (ImageBuildError, DebError, RegistryError) as exc:
        print(f"{prog} {args.image}: {exc}", file=sys.stderr)
        return 1
    return 0
