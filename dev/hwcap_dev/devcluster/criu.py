"""CRIU 4.1.1 from Debian trixie in a private prefix, for checkpoint/restore on the dev machines.

Debian bookworm's CRIU 3.17.1 fails ``criu check`` on the 6.x kernels here ("Unexpected rt vDSO area
bounds"); CRIU 4.x passes. Building CRIU from its git repository is not possible in this project's build
(only package registries are reachable), so the trixie package is used, unchanged:

* a private apt state (its own sources.list, lists and archive cache under the cache directory; the
  system's apt sources, lists and dpkg database are never touched) downloads the pinned .debs; apt checks
  them against trixie's signed index and we check each against the sha256 recorded in :data:`TRIXIE_DEBS`;
* ``dpkg-deb -x`` unpacks them into ``root/`` — CRIU *and* trixie's libc 2.41 (bookworm has 2.36), which the
  system never sees: the ``criu`` wrapper execs trixie's own loader with ``--library-path`` on ``root/``;
* ``criu check`` runs once after the install; its verdict is printed and kept in ``complete.json``.

runc gets the wrapper as its CRIU binary (``runc --criu <wrapper> checkpoint|restore``; containerd's runc
shim reads ``criu_path`` in the runtime options).

Cache: ``~/.cache/hwcap-operator/criu-<version>-<hash of the pins>/`` with ``bin/criu``, ``root/``,
``debs/``, ``apt/`` and ``complete.json`` (written last); a flock serialises installers. Debian point
releases replace superseded versions in the archive: when a pinned version is gone, the download fails
naming it, and the pins below are bumped (with their new hashes from the Packages index).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hwcap_dev.images.debs import unpack

from . import build


@dataclass(frozen=True)
class Deb:
    """One pinned package: the version apt must download and the sha256 its .deb must have."""

    name: str
    version: str
    sha256: str


#: criu and the shared libraries it loads, with trixie's libc. Versions and sha256 read from
#: deb.debian.org trixie/main binary-amd64 Packages on 2026-12-07.
TRIXIE_DEBS: tuple[Deb, ...] = (
    Deb("criu", "4.1.1-1", "f3120d90b37d893879213d799c83696d6175ac8df3dc290e4e6c1fd0d2c2f82f"),
    Deb("libcompel1", "4.1.1-1", "1228c363e40e95892f0063d235b7f9795ad001b2317eb22f8750abc72fe3cf95"),
    Deb("libc6", "2.41-12+deb13u5", "b59b0625cd1a791375d40dab23a4d5d3d0641e3d0a773501becdc3725b7f99cf"),
    Deb("libbsd0", "0.12.2-2", "e5a85986fa6bec3307ab1bc860736b478b331882bc45e17675a7bdf88eecb43a"),
    Deb("libgnutls30t64", "3.8.9-3+deb13u4", "18a8bdfd91c7e3bcb01719d55a2b56849c7160b34f1f52b1c4fdfdd41bf1352b"),
    Deb("libnet1", "1.3+dfsg-2", "4b5010133738d5dbc236fb8b3fbcef0e3449503541155388b0910bc20be7abee"),
    Deb("libnftables1", "1.1.3-1", "c7cbee3dce8452ae5c3c4269f6f52e96b896d36a46ea3c490e0e11e8ff359896"),
    Deb("libnl-3-200", "3.7.0-2", "ce5c153953016be42def7b105f37d55eae07a9608d1dfe6bcb03cc017fc384cb"),
    Deb("libprotobuf-c1", "1.5.1-1", "9fa7e6932f620c7155aab365ed277f04cae3e04ac80ee048fb09d1e838738d14"),
    Deb("libuuid1", "2.41.5-0+deb13u1", "c1bf4c4c3ff48c57fabf93307dfb56996b60cfa33927afc4158b5db36fb2721e"),
    Deb("libmd0", "1.1.0-2+b1", "7244ec3839b61fac0c1884fe08aaa040f26e8f1f35f1f5d3482eacefd30d1b44"),
    Deb("libp11-kit0", "0.25.5-3", "784bf2063e166c8bc851a32623b74ebd85c499043a9d57c5bbd64fa63447f45a"),
    Deb("libidn2-0", "2.3.8-2", "90b039bcdc4578f8e1c4935adf8dbb525e36a164deefdbbb8c45bac347d48278"),
    Deb("libunistring5", "1.3-2", "6dd3490bef06ea1096f32d10766b7e016cf579bfae8451d1b7df15ce05b8aa46"),
    Deb("libtasn1-6", "4.20.0-2+deb13u1", "23fec6e06583ce2bad9b2c04c9b485e90440e259b1abf8677cd80d3ce60831ad"),
    Deb("libnettle8t64", "3.10.1-1", "1b03d4a9cd9c8143ba50fe6396f36937e901a317d492d179f4596862c1731cfe"),
    Deb("libhogweed6t64", "3.10.1-1", "b059ed155115ac09da295322de48ee1ed58ef5fa45edcc9e12ff0e94636ef25f"),
    Deb("libgmp10", "2:6.3.0+dfsg-3", "d0d0265eb01770f17afd0f7c8c0622f80479dcfbbe13653a0debeec61464e622"),
    Deb("libffi8", "3.4.8-2", "0ebdc340de33333639c3c63874cd4b15ac2e83dfa1ef3053b7eefaf4919f4f68"),
    Deb("libjansson4", "2.14-2+b3", "60707a62fe6c1228c3389b12a13ca4efd76defc5532473e547a29e99cf7d2a6e"),
    Deb("libmnl0", "1.0.5-3", "4ec9c1096e0b954e3bdb03a62314ee7f49999045d3d55be3e4ded520ffc9baf5"),
    Deb("libnftnl11", "1.2.9-1", "1b3eae46bfb9c6ab44e404797fb45278045f926d73974a84097ad47a3e27d983"),
    Deb("libxtables12", "1.8.11-2", "4de5aa59faef5e98d6ba9f5f521a915be5641f224f597862f8d29e8319e8db16"),
    Deb("libedit2", "3.1-20250104-1", "b002ea172b9c1e34a67bc497c523c67bb74c3f0a4e98113cb083990a1f1d3bfe"),
    Deb("libtinfo6", "6.5+20250216-2", "8b9f6a7983e9418564e48a627518de4c03917b56efe68d7f3e93bd8fffa1cc10"),
)


@dataclass(frozen=True)
class CriuPins:
    """What decides the install; hashing it names the cache directory."""

    criu: str = "4.1.1"
    suite: str = "trixie"
    mirror: str = "http://deb.debian.org/debian"
    debs: tuple[Deb, ...] = TRIXIE_DEBS
    #: bump when the recipe below changes what lands in the prefix
    recipe: int = 1

    def key(self) -> str:
        """A short content hash of every pin."""
        blob = json.dumps([self.criu, self.suite, self.mirror, [vars(d) for d in self.debs], self.recipe])
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


CRIU_PINS = CriuPins()
LIB_DIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")
LOADER = "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"


class CriuInstallError(RuntimeError):
    """A download, hash check or unpack failed; the message names the package and the step."""


@dataclass(frozen=True)
class CriuInstall:
    """The wrapper runc is given, whether anything was downloaded, and the machine's ``criu check`` verdict."""

    criu: Path
    cached: bool
    seconds: float
    check_ok: bool
    check_output: str


def criu_dir(pins: CriuPins = CRIU_PINS) -> Path:
    """Where one pinned CRIU install lives."""
    return build.cache_root() / f"criu-{pins.criu}-{pins.key()}"


def wrapper_path(pins: CriuPins = CRIU_PINS) -> Path:
    """The ``criu`` script that execs trixie's loader on the private prefix."""
    return criu_dir(pins) / "bin" / "criu"


def _apt_options(state: Path) -> list[str]:
    return [
        "-o", f"Dir::Etc::sourcelist={state / 'sources.list'}", "-o", "Dir::Etc::sourceparts=-",
        "-o", f"Dir::State::Lists={state / 'lists'}", "-o", f"Dir::Cache={state / 'cache'}",
        "-o", "Debug::NoLocking=1", "-o", "Acquire::Languages=none", "-q",
    ]


def _run(cmd: list[str], step: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise CriuInstallError(f"{step} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(pins: CriuPins, target: Path) -> list[Path]:
    """The pinned .debs through a private apt state, each checked against its recorded sha256."""
    state = target / "apt"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "sources.list").write_text(f"deb {pins.mirror} {pins.suite} main\n")
    debs = target / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    build.log_step(f"criu: apt-get update ({pins.suite}, private state in {state})")
    _run(["apt-get", *_apt_options(state), "update"], f"apt-get update of {pins.suite}")
    paths: list[Path] = []
    for deb in pins.debs:
        found = [p for p in debs.glob(f"{deb.name}_*.deb") if _sha256(p) == deb.sha256]
        if not found:
            build.log_step(f"criu: download {deb.name}={deb.version}")
            _run(["apt-get", *_apt_options(state), "download", f"{deb.name}={deb.version}"],
                 f"download of {deb.name}={deb.version} (superseded by a {pins.suite} point release? bump the pin)",
                 cwd=debs)
            found = [p for p in debs.glob(f"{deb.name}_*.deb") if _sha256(p) == deb.sha256]
        if not found:
            raise CriuInstallError(f"{deb.name}={deb.version}: no .deb in {debs} has the pinned sha256 {deb.sha256}")
        paths.append(found[0])
    return paths


def wrapper_text(root: Path) -> str:
    """The ``criu`` script: trixie's loader runs trixie's criu on trixie's libraries, nothing from the system."""
    libs = ":".join(str(root / d) for d in LIB_DIRS)
    return (
        "#!/bin/sh\n"
        "# CRIU from Debian trixie in a private prefix (hwcap_dev.devcluster.criu): trixie's own loader and libc.\n"
        f'exec "{root / LOADER}" --library-path "{libs}" "{root / "usr/sbin/criu"}" "$@"\n'
    )


#: A line ``criu check`` sometimes prints after "Looks good." (exit 0) inside the full test suite, never alone: a
#: loopback TCP socket's shutdown state read back through sock_diag. It concerns dumping TCP sockets, which no
#: migration here does (dump and restore themselves are proven by tests/e2e/test_migration_runtime.py).
TCP_SHUTDOWN_PROBE = "Can't check shutdown state of inet socket"


def criu_check(criu: Path, attempts: int = 3) -> tuple[bool, str]:
    """``criu check`` (needs root): True when CRIU says the kernel has what it needs ("Looks good").

    A failed check is repeated up to ``attempts`` times (every failing output is kept). A check whose only
    complaint is :data:`TCP_SHUTDOWN_PROBE` counts as good for our use, and the returned text says so.
    """
    failures: list[str] = []
    for attempt in range(attempts):
        proc = subprocess.run([str(criu), "check"], capture_output=True, text=True, check=False, timeout=120)
        output = (proc.stdout + proc.stderr).strip()
        if proc.returncode == 0 and "Looks good" in output:
            return True, output
        failures.append(f"attempt {attempt + 1}: {output}")
        time.sleep(1.0)
    problems = [line for line in output.splitlines() if line.strip() and not line.startswith("Warn")]
    if problems and all(TCP_SHUTDOWN_PROBE in line for line in problems):
        return True, f"{output}\n(only the TCP-socket shutdown probe failed: not needed for these migrations)"
    return False, "\n".join(failures)


def _read_stamp(target: Path) -> dict[str, object] | None:
    stamp = target / "complete.json"
    if not stamp.is_file() or not (target / "bin" / "criu").is_file():
        return None
    loaded = json.loads(stamp.read_text())
    return loaded if isinstance(loaded, dict) else None


def ensure_criu(pins: CriuPins = CRIU_PINS, force: bool = False) -> CriuInstall:
    """The cached CRIU wrapper, installing it first when missing (or when ``force``)."""
    started = time.monotonic()
    target = criu_dir(pins)
    if platform.machine() != "x86_64":
        raise CriuInstallError(f"CRIU is pinned for amd64 only; this machine is {platform.machine()}")
    stamp = None if force else _read_stamp(target)
    if stamp is None:
        with build.locked(build.cache_root() / f".lock-{target.name}"):
            stamp = None if force else _read_stamp(target)
            if stamp is None:
                stamp = _install(pins, target)
                return CriuInstall(wrapper_path(pins), False, time.monotonic() - started,
                                   bool(stamp["check_ok"]), str(stamp["check_output"]))
    return CriuInstall(wrapper_path(pins), True, time.monotonic() - started,
                       bool(stamp["check_ok"]), str(stamp["check_output"]))


def _install(pins: CriuPins, target: Path) -> dict[str, object]:
    started = time.monotonic()
    (target / "complete.json").unlink(missing_ok=True)
    debs = _download(pins, target)
    root = target / "root"
    shutil.rmtree(root, ignore_errors=True)
    unpacked = [unpack(deb, root) for deb in debs]
    bin_dir = target / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "criu"
    wrapper.write_text(wrapper_text(root))
    wrapper.chmod(0o755)
    ok, output = criu_check(wrapper) if os.geteuid() == 0 else (False, "not run: criu check needs root")
    build.log_step(f"criu: `criu check` -> {output.splitlines()[-1] if output else '(no output)'}")
    stamp: dict[str, object] = {
        "pins": {"criu": pins.criu, "suite": pins.suite, "debs": [vars(d) for d in pins.debs]},
        "unpacked": [p.purl for p in unpacked], "check_ok": ok, "check_output": output,
        "seconds": round(time.monotonic() - started, 1), "installed_at": time.time(),
    }
    (target / "complete.json").write_text(json.dumps(stamp, indent=2) + "\n")
    build.log_step(f"criu {pins.criu} installed in {target} in {stamp['seconds']}s")
    return stamp


def main() -> int:
    """``python -m hwcap_dev.devcluster.criu [--force]``: install or reuse, print the wrapper and the verdict."""
    try:
        result = ensure_criu(force="--force" in sys.argv[1:])
    except (CriuInstallError, build.BuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{result.criu}\ncriu check: {result.check_output.splitlines()[-1] if result.check_output else '-'}")
    return 0 if result.check_ok else 1


if __name__ == "__main__":
    sys.exit(main())
