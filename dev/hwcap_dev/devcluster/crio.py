"""CRI-O for real nodes: built from its Go module at a pinned release, configured per node (issue 17).

Why CRI-O next to containerd: a migration restores a pod on the target *through the CRI*, and only CRI-O's
``CreateContainer`` does that — given a checkpoint image (an OCI image whose manifest carries
``io.kubernetes.cri-o.annotations.checkpoint.name``) it imports the archive and restores the container with
CRIU instead of starting it. containerd v2.4.2's CRI checkpoints but never restores.

Both ends of a migration run CRI-O: its import reads CRI-O's own ``config.dump`` and the
``io.kubernetes.cri-o.Annotations`` annotation of ``spec.dump`` (``server/container_restore.go``), which a
containerd archive does not have. So a CRI-O archive restores on a CRI-O node, and nothing else does.

**Build.** The module proxy serves ``github.com/cri-o/cri-o`` v1.36.3 (no v1.37 tag is there; the CRI is
``v1`` on both sides and v1.36 is within the kubelet's supported skew). Its go.mod has no replace lines, so
the build copies the module's tree out of the module cache and runs ``go build ./cmd/crio`` in it with its
own go.mod and go.sum. cgo is needed for seccomp (``libseccomp-dev`` from Debian); the tags drop what needs
gpgme, btrfs or devicemapper headers. ``pinns`` (C, in the same module) is compiled with gcc. ``conmon``
(Debian) monitors containers; the OCI runtime is Debian's runc, as for containerd (crun refuses the hybrid
cgroup hierarchy of our machines). CRIU is the pinned 4.1.1 from :mod:`.criu`, first on CRI-O's and conmon's
PATH.

**One source change** (:data:`HUGETLB_PATCH`, applied to the copied tree, checked to apply exactly once): CRI-O
decides "the hugetlb controller is present" from ``/proc/cgroups``, which lists what the kernel was built with.
On our cgroup v1 machines hugetlb is built in but not mounted, so CRI-O put the kubelet's (zero) hugepage
limits into every spec and runc refused them (``cannot set hugetlb limit: container could not join or create
cgroup``). The patch also requires the v1 hierarchy to be mounted. containerd avoids the same trap with its
default ``disable_hugetlb_controller = true``; CRI-O has no such setting.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from . import build
from .node_config import NodeLayout

#: Every tag CRI-O's Makefile would pick on a machine without gpgme, btrfs, devicemapper, apparmor or selinux
#: headers, plus ``seccomp`` (libseccomp-dev is installed) — decided here, not probed, so the build is pinned.
BUILD_TAGS = ("containers_image_ostree_stub", "containers_image_openpgp", "exclude_graphdriver_btrfs",
              "btrfs_noversion", "exclude_graphdriver_devicemapper", "seccomp")
CRIO_MODULE = "github.com/cri-o/cri-o"
CONMON = Path("/usr/bin/conmon")

#: (file, text to find, replacement): "hugetlb present" also needs its v1 hierarchy mounted (see above).
HUGETLB_PATCH = (
    "internal/config/node/cgroups_linux.go",
    "\t\tfor _, toCheck := range relevantControllers {\n"
    "\t\t\tif slices.Contains(ctrls, toCheck.name) {\n"
    "\t\t\t\t*toCheck.enabled = true\n"
    "\t\t\t}\n"
    "\t\t}\n",
    "\t\tfor _, toCheck := range relevantControllers {\n"
    "\t\t\tif slices.Contains(ctrls, toCheck.name) {\n"
    "\t\t\t\t*toCheck.enabled = true\n"
    "\t\t\t}\n"
    "\t\t}\n"
    "\t\t// hwcap-dev: a v1 controller the kernel has but nobody mounted cannot take limits\n"
    "\t\tif _, err := os.Stat(filepath.Join(cgroupRoot, \"hugetlb\")); err != nil && !CgroupIsV2() {\n"
    "\t\t\tcgroupHasHugetlb = false\n"
    "\t\t}\n",
)


@dataclass(frozen=True)
class CrioPins:
    """Every version that decides the CRI-O binaries; hashing it names the cache directory."""

    crio: str = "v1.36.3"
    go_toolchain: str = build.PINS.go_toolchain
    tags: tuple[str, ...] = BUILD_TAGS
    #: bump when the recipe below changes in a way that changes the binaries
    recipe: int = 2

    def key(self) -> str:
        """A short content hash of the pins."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


CRIO_PINS = CrioPins()
CRIO_BINARIES = ("crio", "pinns")


def crio_cache_dir(pins: CrioPins = CRIO_PINS) -> Path:
    """Where one pinned CRI-O build lives."""
    return build.cache_root() / f"crio-{pins.crio}-{pins.key()}"


def crio_bin_dir(pins: CrioPins = CRIO_PINS) -> Path:
    """The directory holding ``crio`` and ``pinns``."""
    return crio_cache_dir(pins) / "bin"


def crio_is_built(pins: CrioPins = CRIO_PINS) -> bool:
    """True when a previous build finished and both binaries are still there."""
    done = crio_cache_dir(pins) / "complete.json"
    return done.is_file() and all((crio_bin_dir(pins) / name).is_file() for name in CRIO_BINARIES)


def _build(pins: CrioPins, work: Path, out: Path, env: Mapping[str, str], log: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    info = json.loads(build.run_step(["go", "mod", "download", "-json", f"{CRIO_MODULE}@{pins.crio}"], work, env,
                                     log, "download cri-o"))  # fmt: skip
    if info.get("Error") or not info.get("Dir"):
        raise build.BuildError(f"download {CRIO_MODULE}@{pins.crio}: {info.get('Error') or 'no module directory'}")
    tree = work / "cri-o"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(info["Dir"], tree)  # the module cache is read-only; go build writes go.sum entries
    for path in (tree, *tree.rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)
    apply_patch(tree, *HUGETLB_PATCH)
    released = build.release_time(work, env, log, CRIO_MODULE, pins.crio)
    ldflags = (f"-s -w -X {CRIO_MODULE}/internal/version.buildDate={released} "
               f"-X {CRIO_MODULE}/internal/version.buildCommit={pins.crio}")  # fmt: skip
    build.log_step("compiling crio: about 6 minutes on 2 cores the first time (cgo, seccomp)")
    build.run_step(["go", "build", "-trimpath", "-tags", " ".join(pins.tags), "-ldflags", ldflags,
                    "-o", str(out / "crio"), "./cmd/crio"], tree, {**env, "CGO_ENABLED": "1"}, log, "build crio")
    sources = sorted(str(p) for p in (tree / "pinns" / "src").glob("*.c"))
    build.run_step(["gcc", "-std=c99", "-O2", "-Wall", "-static", "-o", str(out / "pinns"), *sources], tree,
                   env, log, "build pinns")  # fmt: skip


def apply_patch(tree: Path, relative: str, find: str, replace: str) -> None:
    """Replace ``find`` by ``replace`` in one file of the tree; a release where it is not there exactly once
    fails the build (a pin bump must look at the patch again)."""
    path = tree / relative
    text = path.read_text()
    if text.count(find) != 1:
        raise build.BuildError(f"the hugetlb patch does not apply to {relative} of this CRI-O release")
    path.write_text(text.replace(find, replace))


def ensure_crio_built(pins: CrioPins = CRIO_PINS, force: bool = False) -> build.BuildResult:
    """Return the cached CRI-O, building it first when missing (or when ``force``)."""
    target = crio_cache_dir(pins)
    return build.build_cached(
        target=target, pins_doc=asdict(pins), names=CRIO_BINARIES,
        env=lambda: build.go_env(build.Pins(go_toolchain=pins.go_toolchain), target / "src"),
        is_done=lambda: crio_is_built(pins), steps=lambda w, o, e, lg: _build(pins, w, o, e, lg), force=force,
        what="CRI-O (crio ~6 min on 2 cores, pinns seconds)",
    )


def crio_version(crio: Path) -> str:
    """``crio version``'s first line (what the node's ``containerRuntimeVersion`` will say)."""
    out = subprocess.run([str(crio), "--config", "", "version"], capture_output=True, text=True, check=False)
    return next((line for line in out.stdout.splitlines() if line.startswith("Version")), out.stdout[:80]).strip()


# -- per-node configuration (pure: strings out) ----------------------------------------------------------------


def _s(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def crio_config(layout: NodeLayout, *, runc: Path, conmon: Path, pinns: Path, cni_bin_dir: Path, path_env: str,
                sandbox_image: str, registry_host: str) -> str:
    """``crio.conf`` of one node: every path under its base directory, CRIU on, the loopback registry insecure.

    Learnt here: ``conmon_cgroup = "pod"`` with cgroupfs (no systemd); ``drop_infra_ctr`` so a pod without a
    shared pid namespace has no pause process for CRIU to treat as external; ``monitor_env`` carries the PATH
    with the pinned CRIU because conmon, not CRI-O, runs ``runc restore``."""
    return f"""[crio]
root = {_s(str(layout.crio_root))}
runroot = {_s(str(layout.crio_runroot))}
storage_driver = "overlay"
log_dir = {_s(str(layout.base / "crio-logs"))}
version_file = {_s(str(layout.crio_runroot / "version"))}
version_file_persist = {_s(str(layout.crio_root / "version"))}
clean_shutdown_file = {_s(str(layout.crio_root / "clean.shutdown"))}

[crio.api]
listen = {_s(str(layout.crio_socket))}
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "runc"
cgroup_manager = "cgroupfs"
conmon_cgroup = "pod"
enable_criu_support = true
drop_infra_ctr = true
selinux = false
log_level = "info"
pinns_path = {_s(str(pinns))}
namespaces_dir = {_s(str(layout.crio_namespaces_dir))}
container_exits_dir = {_s(str(layout.crio_runroot / "exits"))}
container_attach_socket_dir = {_s(str(layout.crio_runroot / "attach"))}
default_mounts_file = ""
hooks_dir = []
cdi_spec_dirs = []
decryption_keys_path = {_s(str(layout.base / "crio-keys"))}

[crio.runtime.runtimes.runc]
runtime_path = {_s(str(runc))}
runtime_type = "oci"
runtime_root = {_s(str(layout.crio_runroot / "runc"))}
monitor_path = {_s(str(conmon))}
monitor_cgroup = "pod"
monitor_env = [{_s("PATH=" + path_env)}]

[crio.image]
pause_image = {_s(sandbox_image)}
pinned_images = [{_s(sandbox_image)}]
big_files_temporary_dir = {_s(str(layout.base / "crio-tmp"))}
namespaced_auth_dir = {_s(str(layout.base / "crio-auth"))}
signature_policy_dir = {_s(str(layout.base / "crio-policies"))}

[crio.network]
network_dir = {_s(str(layout.cni_conf_dir))}
plugin_dirs = [{_s(str(cni_bin_dir))}]

[crio.metrics]
enable_metrics = false

[crio.nri]
enable_nri = false
"""


def signature_policy() -> str:
    """containers-policy.json: accept every image (the dev cluster pulls only from its loopback registry)."""
    return json.dumps({"default": [{"type": "insecureAcceptAnything"}]}, indent=2) + "\n"


def registries_conf(registry_host: str) -> str:
    """containers-registries.conf: no search registries (every reference is fully qualified), ours insecure."""
    return f'unqualified-search-registries = []\n\n[[registry]]\nlocation = {_s(registry_host)}\ninsecure = true\n'


def storage_conf(layout: NodeLayout) -> str:
    """containers-storage.conf, so neither CRI-O nor its libraries read ``/etc/containers/storage.conf``."""
    return (f'[storage]\ndriver = "overlay"\nrunroot = {_s(str(layout.crio_runroot))}\n'
            f'graphroot = {_s(str(layout.crio_root))}\n')  # fmt: skip


def crio_home(layout: NodeLayout) -> Path:
    """CRI-O's ``HOME``: the signature policy is ``$HOME/.config/containers/policy.json`` (see below)."""
    return layout.base / "crio-home"


def crio_env(layout: NodeLayout) -> dict[str, str]:
    """Environment that points the containers libraries at the node's own files (never ``/etc/containers``).

    The signature policy is found through ``HOME`` on purpose: CRI-O's ``signature_policy`` setting makes its
    restore refuse every checkpoint image ("namespaced signature policy ... signature validation is not
    supported for container restore", ``server/container_restore.go``), while the containers library's own
    per-user default (``$HOME/.config/containers/policy.json``) is not a policy CRI-O itself sets. The
    registries file is a flag (``--registries-conf``; the libraries' variable is not read by CRI-O)."""
    return {"CONTAINERS_STORAGE_CONF": str(layout.base / "crio-storage.conf"), "HOME": str(crio_home(layout))}


def write_node_files(layout: NodeLayout, config: str, registry_host: str) -> list[str]:
    """Write the node's CRI-O files; return ``crio``'s arguments (its own config, an empty drop-in dir)."""
    for directory in (layout.crio_root, layout.crio_runroot, layout.crio_namespaces_dir, layout.base / "crio.d",
                      layout.base / "crio-logs", layout.base / "crio-tmp", layout.base / "crio-keys"):
        directory.mkdir(parents=True, exist_ok=True)
    (layout.base / "crio.conf").write_text(config)
    policy = crio_home(layout) / ".config" / "containers" / "policy.json"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(signature_policy())
    (layout.base / "crio-registries.conf").write_text(registries_conf(registry_host))
    (layout.base / "crio-storage.conf").write_text(storage_conf(layout))
    return ["--config", str(layout.base / "crio.conf"), "--config-dir", str(layout.base / "crio.d"),
            "--registries-conf", str(layout.base / "crio-registries.conf"),
            "--registries-conf-dir", str(layout.base / "crio.d")]
