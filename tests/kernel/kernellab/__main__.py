"""``python -m kernellab`` (from tests/kernel): build kernels, or run the conformance matrix.

  python -m kernellab kernels [--arch arm64 --arch amd64] [--variant v5 --variant none]
  python -m kernellab matrix [--model cortex-a53 ...] [--variant v5 ...] [--json FILE]

Exit status: 0 all cells match, 1 a mismatch (each is printed), 2 a lab error (message says which step).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import build as kbuild
from .build import LabError
from .lab import default_models, report, run_matrix


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kernellab", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kernels", help="build (or reuse) the lab's kernels")
    k.add_argument("--arch", action="append", choices=sorted(kbuild.ARCHES))
    k.add_argument("--variant", action="append", choices=sorted(kbuild.VARIANTS))
    m = sub.add_parser("matrix", help="boot CPU models and compare every scenario with the model")
    m.add_argument("--model", action="append", help="CPU model (e.g. cortex-a53 or amd64/qemu64); default all")
    m.add_argument("--variant", action="append", choices=sorted(kbuild.VARIANTS))
    m.add_argument("--json", help="write the cells (and boot times) to this file")
    args = p.parse_args(argv)
    try:
        if args.cmd == "kernels":
            for arch in args.arch or sorted(kbuild.ARCHES):
                for variant in args.variant or sorted(kbuild.VARIANTS):
                    if arch not in kbuild.VARIANT_ARCHES.get(variant, (arch,)):
                        continue
                    kb = kbuild.build(arch, variant)
                    state = "cached" if kb.cached else "built"
                    print(
                        f"{arch}/{variant}: {state} (build took {kb.build_seconds} s) {kb.image} "
                        f"AT_VECTOR_SIZE={kb.at_vector_size} "
                        f"PR_SET_MM_AUXV copies {'the whole buffer' if kb.auxv_whole_buffer_copy else 'len bytes'}"
                    )
            return 0
        t0 = time.monotonic()
        runs = run_matrix(args.variant or sorted(kbuild.VARIANTS), default_models(args.model))
        text, cells = report(runs)
        print(text)
        print(f"matrix took {time.monotonic() - t0:.0f} s")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(
                    {
                        "cells": [c.__dict__ for c in cells],
                        "boots": [
                            {"variant": r.variant, "model": r.model.key, "seconds": r.boot.seconds} for r in runs
                        ],
                    },
                    fh,
                    indent=1,
                )
        return 0 if all(c.ok for c in cells) else 1
    except LabError as exc:
        print(f"kernellab: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
