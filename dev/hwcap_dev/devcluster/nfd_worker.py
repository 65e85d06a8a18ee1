"""Build Node Feature Discovery's nfd-worker, pinned, from the Go module proxy into the project cache.

Like the control plane (:mod:`hwcap_dev.devcluster.build`): one version pin, a cache directory named by
it, a lock so concurrent sessions build once. The work module requires
``sigs.k8s.io/node-feature-discovery`` at the pin and copies the ``replace`` block of NFD's own go.mod
(k8s.io/* pinned to the release NFD was built against), except ``api/nfd => ./api/nfd``: that path only
exists inside NFD's repository, so it points at the ``api/nfd`` module of the same version instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from hwcap_dev.devcluster.build import BuildError, cache_root

NFD_MODULE = "sigs.k8s.io/node-feature-discovery"
NFD_VERSION = "v0.18.2"
_API_MODULE = f"{NFD_MODULE}/api/nfd"


def nfd_dir(version: str = NFD_VERSION) -> Path:
    """``<cache root>/nfd-<version>``: the worker binary, NFD's CRDs and the build log."""
    return cache_root() / f"nfd-{version}"


def work_go_mod(nfd_go_mod: str, version: str = NFD_VERSION) -> str:
    """The go.mod of the work module: NFD's go directive and replace block, api/nfd at the same version."""
    go = re.search(r"^go\s+(\S+)", nfd_go_mod, re.MULTILINE)
    block = re.search(r"^replace \($(.*?)^\)", nfd_go_mod, re.MULTILINE | re.DOTALL)
    if block is None:
        raise BuildError(f"no replace block in the go.mod of {NFD_MODULE}@{version}")
    local = rf"^([ \t]*){re.escape(_API_MODULE)}[ \t]*=>[ \t]*\./api/nfd[ \t]*$"
    replaces = re.sub(local, rf"\1{_API_MODULE} => {_API_MODULE} {version}", block.group(1), flags=re.MULTILINE)
    if f"{_API_MODULE} => {_API_MODULE} {version}" not in replaces:
        raise BuildError(f"{NFD_MODULE}@{version}: go.mod no longer replaces {_API_MODULE} with ./api/nfd")
    return (f"module hwcap-operator.local/nfd-worker\n\ngo {go.group(1) if go else '1.25.0'}\n\n"
            f"require {NFD_MODULE} {version}\n\nreplace ({replaces})\n")  # fmt: skip


def _go(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> str:
    proc = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    with log.open("a") as fh:
        fh.write(f"$ go {' '.join(args)}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise BuildError(f"go {args[0]} for nfd-worker failed (log {log}):\n{tail}")
    return proc.stdout


def ensure_nfd_worker(version: str = NFD_VERSION) -> Path:
    """The cached nfd-worker binary of ``version``, built first when missing (~2-4 min on 2 cores)."""
    target = nfd_dir(version)
    binary = target / "nfd-worker"
    if binary.is_file():
        return binary
    if shutil.which("go") is None:
        raise BuildError("the Go toolchain ('go') is not on PATH; it is needed to build nfd-worker")
    target.mkdir(parents=True, exist_ok=True)
    with (target / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.is_file():
            return binary
        started = time.monotonic()
        work = target / "src"
        work.mkdir(exist_ok=True)
        log = target / "build.log"
        env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOWORK": "off",
               "GOFLAGS": "-mod=mod -p=2 -buildvcs=false"}  # fmt: skip
        info = json.loads(_go(["mod", "download", "-json", f"{NFD_MODULE}@{version}"], work, env, log))
        (work / "go.mod").write_text(work_go_mod(Path(info["GoMod"]).read_text(), version))
        crds = Path(info["Dir"]) / "deployment" / "base" / "nfd-crds" / "nfd-api-crds.yaml"
        shutil.copyfile(crds, target / "nfd-api-crds.yaml")
        ldflags = f"-s -w -X {NFD_MODULE}/pkg/version.version={version}"
        partial = target / "nfd-worker.partial"
        _go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), f"{NFD_MODULE}/cmd/nfd-worker"],
            work, env, log)  # fmt: skip
        partial.rename(binary)
        (target / "complete.json").write_text(
            json.dumps({"module": NFD_MODULE, "version": version, "seconds": round(time.monotonic() - started)}) + "\n"
        )
        return binary
