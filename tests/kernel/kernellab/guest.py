"""Guest side of the lab: static probe binaries, the initramfs, and booting it under qemu.

Why the kernel's own ``usr/gen_init_cpio``: it writes device nodes and set-uid files without root or a
staging directory, in exactly the format the kernel unpacks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .build import LabError, source_tree
from .paths import CACHE_ROOT, GUEST_DIR, REPO_ROOT


@dataclass(frozen=True)
class CpuModel:
    """One emulated "node": a qemu CPU model and how to boot it."""

    arch: str
    name: str
    machine: str
    memory: str = "512M"
    compat: bool = True  # has a 32-bit EL0 / ia32 ABI we can exec

    @property
    def key(self) -> str:
        return f"{self.arch}/{self.name}"


ARM64_MODELS: tuple[CpuModel, ...] = (
    CpuModel("arm64", "cortex-a53", "virt"),
    CpuModel("arm64", "cortex-a57", "virt"),
    CpuModel("arm64", "cortex-a72", "virt"),
    CpuModel("arm64", "cortex-a76", "virt"),
    CpuModel("arm64", "neoverse-n1", "virt"),
    # a64fx: qemu needs GICv3 and 1 GiB for it, and it has no AArch32 at EL0.
    CpuModel("arm64", "a64fx", "virt,gic-version=3", memory="1G", compat=False),
    CpuModel("arm64", "max", "virt"),
)
# The lab's x86_64 kernels have no IA32_EMULATION: no compat scenarios there.
AMD64_MODELS: tuple[CpuModel, ...] = (
    CpuModel("amd64", "qemu64", "pc", compat=False),
    CpuModel("amd64", "Skylake-Server", "pc", compat=False),
    CpuModel("amd64", "Icelake-Server", "pc", compat=False),
)
ALL_MODELS: tuple[CpuModel, ...] = ARM64_MODELS + AMD64_MODELS


def model_by_key(key: str) -> CpuModel:
    """``arm64/cortex-a53`` -> its CpuModel; a clear error names an unknown one."""
    for m in ALL_MODELS:
        if m.key == key or (m.name == key):
            return m
    raise LabError(f"unknown CPU model {key!r}; known: {', '.join(m.key for m in ALL_MODELS)}")


_COMPILERS = {
    "arm64": "aarch64-linux-gnu-gcc",
    "arm": "arm-linux-gnueabihf-gcc",
    "amd64": "gcc",
}
CFLAGS = ("-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-static", "-pthread")
#: The operator's init-step sources: hwcap-exec.c, and proc_stat.h, which the probe includes too (-I).
SHIM_DIR = REPO_ROOT / "src" / "shim"
SHIM_HEADERS = (SHIM_DIR / "proc_stat.h",)


def _compile(arch: str, source: Path) -> Path:
    cc = _COMPILERS[arch]
    if not shutil.which(cc):
        raise LabError(f"compiler {cc} not found (Debian gcc-aarch64-linux-gnu / gcc-arm-linux-gnueabihf)")
    flags = (*CFLAGS, f"-I{SHIM_DIR}")
    inputs = source.read_bytes() + b"".join(h.read_bytes() for h in SHIM_HEADERS)
    digest = hashlib.sha256(inputs + " ".join((cc, *flags)).encode()).hexdigest()[:12]
    out = CACHE_ROOT / "guest" / f"{source.stem}-{arch}-{digest}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    r = subprocess.run([cc, *flags, "-o", str(tmp), str(source)], capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"compiling {source.name} for {arch} with {cc} failed:\n{r.stderr}")
    tmp.replace(out)
    return out


def probe_binary(arch: str) -> Path:
    """The static probe for ``arm64``, ``arm`` (AArch32) or ``amd64`` (cached by source hash)."""
    return _compile(arch, GUEST_DIR / "probe.c")


def hwcap_exec_binary(arch: str) -> Path:
    """The operator's init step (src/shim/hwcap-exec.c) built static for the guest with the shim's own
    Makefile and the lab's cross compiler; cached by the hash of its sources and Makefile."""
    shim = SHIM_DIR
    cc = _COMPILERS[arch]
    sources = (shim / "hwcap-exec.c", *SHIM_HEADERS, shim / "Makefile")
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in sources) + cc.encode()).hexdigest()[:12]
    out = CACHE_ROOT / "guest" / f"hwcap-exec-{arch}-{digest}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    r = subprocess.run(["make", "-s", "-C", str(shim), f"CC={cc}", f"OUT={tmp}"], capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"building hwcap-exec for {arch} with {cc} failed:\n{r.stdout}{r.stderr}")
    tmp.replace(out)
    return out


def gen_init_cpio() -> Path:
    """The kernel's own initramfs writer, compiled from the unpacked source tree."""
    src = source_tree() / "usr" / "gen_init_cpio.c"
    out = CACHE_ROOT / "guest" / f"gen_init_cpio-{hashlib.sha256(src.read_bytes()).hexdigest()[:12]}"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        r = subprocess.run(["gcc", "-O2", "-o", str(tmp), str(src)], capture_output=True, text=True)
        if r.returncode != 0:
            raise LabError(f"compiling usr/gen_init_cpio.c failed:\n{r.stderr}")
        tmp.replace(out)
    return out


@dataclass
class Initramfs:
    """What goes into the guest: probe binaries by path and the scenario files under /lab."""

    arch: str
    files: dict[str, bytes] = field(default_factory=dict)  # /lab/<name> -> content

    def binaries(self) -> list[tuple[str, Path, int]]:
        """(guest path, host file, mode): /init and /probe are the native probe, /probe-suid its set-uid-root
        copy, /probe32 the AArch32 probe (arm64 only), /hwcap-exec the operator's init step."""
        native = probe_binary(self.arch)
        out = [
            ("/init", native, 0o755),
            ("/probe", native, 0o755),
            ("/probe-suid", native, 0o4755),
            ("/hwcap-exec", hwcap_exec_binary(self.arch), 0o755),
        ]
        if self.arch == "arm64":
            out.append(("/probe32", probe_binary("arm"), 0o755))
        return out

    def write(self, dest: Path) -> Path:
        with tempfile.TemporaryDirectory(prefix="hwcap-lab-") as tmpdir:
            tmp = Path(tmpdir)
            lines = [
                "dir /dev 0755 0 0",
                "nod /dev/console 0600 0 0 c 5 1",
                "dir /proc 0555 0 0",
                "dir /run 0777 0 0",
                "dir /lab 0755 0 0",
            ]
            for guest_path, host, mode in self.binaries():
                lines.append(f"file {guest_path} {host} {mode:o} 0 0")
            for name, content in sorted(self.files.items()):
                host = tmp / name
                host.write_bytes(content)
                lines.append(f"file /lab/{name} {host} 0644 0 0")
            spec = tmp / "initramfs.list"
            spec.write_text("\n".join(lines) + "\n")
            dest.parent.mkdir(parents=True, exist_ok=True)
            with dest.open("wb") as fh:
                r = subprocess.run([str(gen_init_cpio()), str(spec)], stdout=fh, stderr=subprocess.PIPE)
            if r.returncode != 0:
                raise LabError(f"gen_init_cpio failed: {r.stderr.decode(errors='replace')}")
        return dest


@dataclass
class BootResult:
    """The console of one boot and the lab lines parsed from it."""

    model: CpuModel
    console: str
    records: list[dict[str, Any]]
    seconds: float

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.console.splitlines()[-lines:])


def qemu_command(model: CpuModel, kernel: Path, initrd: Path, extra_cmdline: str = "") -> list[str]:
    """The qemu invocation for one CPU model (TCG; serial console on stdio; no reboot loops); ``extra_cmdline``
    is appended to the kernel command line (the node-levelling boot parameters)."""
    if model.arch == "arm64":
        binary, console = "qemu-system-aarch64", "ttyAMA0"
    else:
        binary, console = "qemu-system-x86_64", "ttyS0"
    return [
        binary,
        "-M",
        model.machine,
        "-cpu",
        model.name,
        "-m",
        model.memory,
        "-smp",
        "1",
        "-nographic",
        "-monitor",
        "none",
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-initrd",
        str(initrd),
        "-append",
        f"console={console} panic=-1 quiet {extra_cmdline}".rstrip(),
    ]


def boot(model: CpuModel, kernel: Path, initrd: Path, *, timeout: float = 600.0, extra_cmdline: str = "") -> BootResult:
    """Boot once and return the parsed ``@lab`` records; a hang or a missing ``done`` is a LabError with the
    console's tail, so the failure says what the guest was doing."""
    cmd = qemu_command(model, kernel, initrd, extra_cmdline)
    if not shutil.which(cmd[0]):
        raise LabError(f"{cmd[0]} not found (Debian qemu-system-arm / qemu-system-x86)")
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            timed_out = True
        log.seek(0)
        console = log.read().decode(errors="replace").replace("\r", "")
    seconds = round(time.monotonic() - t0, 1)
    records = parse_console(console)
    result = BootResult(model, console, records, seconds)
    if timed_out:
        raise LabError(f"{model.key}: guest did not power off within {timeout:.0f} s; console tail:\n{result.tail()}")
    if not any(r.get("event") == "done" for r in records):
        raise LabError(
            f"{model.key}: guest ended (qemu exit {proc.returncode}) without finishing its scenarios; "
            f"console tail:\n{result.tail()}"
        )
    return result


def parse_console(console: str) -> list[dict[str, Any]]:
    """The JSON objects of the ``@lab`` lines; a garbled line (kernel message interleaved) is reported."""
    out: list[dict[str, Any]] = []
    for line in console.splitlines():
        at = line.find("@lab {")
        if at < 0:
            continue
        try:
            out.append(json.loads(line[at + 5 :]))
        except json.JSONDecodeError:
            out.append({"event": "garbled", "line": line})
    return out


def initramfs_for(arch: str, files: dict[str, bytes]) -> Path:
    """Write (or reuse) an initramfs with these lab files; cached by content."""
    fs = Initramfs(arch, dict(files))
    h = hashlib.sha256()
    for guest_path, host, mode in fs.binaries():
        h.update(f"{guest_path}:{host.name}:{mode}".encode())
    for name, content in sorted(files.items()):
        h.update(name.encode() + b"\0" + content)
    dest = CACHE_ROOT / "initramfs" / f"{arch}-{h.hexdigest()[:16]}.cpio"
    if not dest.is_file():
        fs.write(dest.with_suffix(".tmp"))
        dest.with_suffix(".tmp").replace(dest)
    return dest


def known_binaries(arch: str) -> Sequence[tuple[str, str, int | None]]:
    """(path, abi, setuid owner) of every program a scenario may exec in this arch's guest."""
    out: list[tuple[str, str, int | None]] = [("/probe", "native", None), ("/probe-suid", "native", 0)]
    if arch == "arm64":
        out.append(("/probe32", "compat", None))
    return out
