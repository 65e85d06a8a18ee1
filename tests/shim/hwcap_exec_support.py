"""Helpers for running the real hwcap-exec binary: as root or as nobody, under a seccomp filter, under gdb.

Nothing here re-implements the binary: the helpers only start it in controlled conditions and read what
the kernel shows (``/proc/<pid>/auxv``, ``/proc/<pid>/cmdline`` ...). The one expectation kept here,
:func:`documented_after`, is the header's rule as written, for a freshly exec'd vector.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwcap_dev.shim import SOURCE_DIR as SHIM_SOURCE_DIR
from hwcap_operator import auxv
from hwcap_operator.auxv import HWCAP_TYPES, Pair

NOBODY = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]

#: This machine's auxv layout (the shim tests run natively on a little-endian 64-bit host).
NATIVE: auxv.LayoutName = "64le" if sys.byteorder == "little" else "64be"


def compile_driver(source: Path, out: Path) -> Path:
    """A static musl build of a C test driver that includes the shim's sources (``-I src/shim``)."""
    cmd = ["musl-gcc", "-Os", "-std=gnu11", "-Wall", "-Wextra", "-Werror", f"-I{SHIM_SOURCE_DIR}", "-static"]
    subprocess.run([*cmd, "-o", str(out), str(source)], check=True, capture_output=True, text=True)
    return out


def parse_auxv(raw: bytes) -> list[Pair]:
    """Native (type, value) pairs up to, not including, AT_NULL: the project's one codec, this machine's layout."""
    return list(auxv.parse_auxv(raw, "auxv", layout=NATIVE).entries)


def documented_after(before: Sequence[Pair], masks: Mapping[int, int]) -> list[Pair]:
    """The header's rule on a freshly exec'd vector (each HWCAP type once, all provided): every HWCAP entry
    ANDed with its word's mask (``masks``: type -> word, for the options given), everything else as it was."""
    return [(t, v & masks[t]) if t in masks else (t, v) for t, v in before]


def own_auxv() -> list[Pair]:
    """This test process's saved auxv as the kernel shows it."""
    return parse_auxv(Path("/proc/self/auxv").read_bytes())


def kernel_hwcap() -> dict[int, int]:
    """The HWCAP words the kernel gives a freshly exec'd process here (type -> value), read from procfs."""
    return {t: v for t, v in own_auxv() if t in HWCAP_TYPES}


def root_gets_cap_sys_resource() -> bool:
    """Whether a program root execs here holds CAP_SYS_RESOURCE: legacy root gets the bounding set.

    Some sandboxes drop it from the bounding set (this development machine does), so the fallback path
    PR_SET_MM_AUXV can only succeed where this is True."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return bool((int(line.split()[1], 16) >> 24) & 1)
    raise AssertionError("no CapBnd line in /proc/self/status")


def shared_tmpdir() -> Path:
    """A directory the unprivileged user may enter and write (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="hwcap-exec-test-", dir="/tmp"))
    path.chmod(0o777)
    return path


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    pid: int

    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()

    def report(self) -> dict[str, Any]:
        """The ``--print=json`` object (the only JSON line on stderr)."""
        return json_report(self.stderr)


def json_report(stderr: str) -> dict[str, Any]:
    """The ``--print=json`` object in ``stderr``: there must be exactly one JSON line."""
    lines = [line for line in stderr.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"expected one JSON line on stderr, got: {stderr!r}"
    obj: dict[str, Any] = json.loads(lines[0])
    return obj


def vector(report: Mapping[str, Any], key: str) -> list[Pair]:
    """A report's ``before`` or ``after`` entries as (type, value) tuples (JSON gives two-element lists)."""
    return [(t, v) for t, v in report[key]]


def run(
    argv: Sequence[str],
    *,
    user: str = "root",
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    preexec: Callable[[], None] | None = None,
    pass_fds: Sequence[int] = (),
    stdin: str | None = None,
) -> Result:
    """Run ``argv`` (starting with the binary) as ``root`` or ``nobody`` (setpriv execs in place: same pid)."""
    full = [*SETPRIV, *argv] if user == "nobody" else list(argv)
    proc = subprocess.Popen(
        full,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else {"PATH": "/usr/bin:/bin"},
        cwd=cwd,
        preexec_fn=preexec,
        pass_fds=pass_fds,
        text=True,
    )
    out, err = proc.communicate(stdin, timeout=120)
    return Result(proc.returncode, out, err, proc.pid)


# ------------------------------------------------------------------------------------------ seccomp


_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_NR_PRCTL = {"x86_64": 157, "aarch64": 167}
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_RET_K = 0x20, 0x15, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
PR_SET_MM, PR_SET_MM_AUXV, PR_SET_MM_MAP, PR_GET_AUXV = 35, 12, 14, 0x41555856


@dataclass(frozen=True)
class Deny:
    """Make ``prctl(option, sub, ...)`` fail with ``err`` (``sub`` None: any second argument)."""

    option: int
    sub: int | None = None
    err: int = errno.EPERM


def seccomp_denying(*rules: Deny) -> Callable[[], None]:
    """A preexec function installing a seccomp filter that fails the given prctl calls.

    Seccomp filters survive execve, so the binary started afterwards meets them: the way a container
    runtime's profile or an LSM would refuse the call.
    """
    machine = platform.machine()
    if machine not in _AUDIT_ARCH:
        raise RuntimeError(f"seccomp helper: no syscall numbers for {machine}")
    prog: list[tuple[int, int, int, int]] = []

    def ld(offset: int) -> None:
        prog.append((_BPF_LD_W_ABS, 0, 0, offset))

    # The jump targets are patched once the program's length is known (index of the final ALLOW).
    allow_jumps: list[int] = []
    ld(4)  # seccomp_data.arch
    allow_jumps.append(len(prog))
    prog.append((_BPF_JEQ_K, 0, 0, _AUDIT_ARCH[machine]))
    ld(0)  # seccomp_data.nr
    allow_jumps.append(len(prog))
    prog.append((_BPF_JEQ_K, 0, 0, _NR_PRCTL[machine]))
    for rule in rules:
        block: list[tuple[int, int, int, int]] = [(_BPF_LD_W_ABS, 0, 0, 16), (_BPF_JEQ_K, 0, 0, rule.option)]
        if rule.sub is not None:
            block += [(_BPF_LD_W_ABS, 0, 0, 24), (_BPF_JEQ_K, 0, 0, rule.sub)]
        block.append((_BPF_RET_K, 0, 0, _RET_ERRNO | rule.err))
        # Each JEQ's false branch skips to the end of this rule's block.
        for i, (code, jt, _jf, k) in enumerate(block):
            if code == _BPF_JEQ_K:
                block[i] = (code, jt, len(block) - i - 1, k)
        prog += block
    allow_at = len(prog)
    prog.append((_BPF_RET_K, 0, 0, _RET_ALLOW))
    for i in allow_jumps:
        code, jt, _jf, k = prog[i]
        prog[i] = (code, jt, allow_at - i - 1, k)
    filt = b"".join(struct.pack("=HBBI", *ins) for ins in prog)

    def install() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(filt, len(filt))

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

        fprog = SockFprog(len(prog), ctypes.addressof(buf))
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            os._exit(90)
        if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
            os._exit(91)

    return install


# ----------------------------------------------------------------------------------------------- gdb

_GDB_SCRIPT = """
import gdb
pid = gdb.selected_inferior().pid
with open("/proc/%d/auxv" % pid, "rb") as f:
    print("AUXV-AT-EXECVE " + f.read().hex())
"""


def auxv_at_execve(argv: Sequence[str], workdir: Path, *, user: str = "root") -> tuple[list[Pair], str]:
    """Stop the binary at the entry of its execve (after the prctl, before the exec replaces the vector)
    under gdb and read ``/proc/<pid>/auxv`` from outside. Returns the pairs and the inferior's stderr.

    For ``nobody`` gdb itself runs as nobody (setpriv execs gdb, gdb starts and traces the binary)."""
    script = workdir / "read_auxv.py"
    script.write_text(_GDB_SCRIPT)
    script.chmod(0o644)
    cmd = [
        *(SETPRIV if user == "nobody" else []),
        "gdb", "-batch", "-nx", "-q",
        "-ex", "set startup-with-shell off",
        "-ex", "catch syscall execve",
        "-ex", "run",
        "-ex", f"source {script}",
        "-ex", "kill",
        "--args", *argv,
    ]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=env, cwd=workdir)
    marker = [line for line in proc.stdout.splitlines() if line.startswith("AUXV-AT-EXECVE ")]
    assert len(marker) == 1, f"gdb did not stop at execve:\n{proc.stdout}\n{proc.stderr}"
    return parse_auxv(bytes.fromhex(marker[0].split()[1])), proc.stderr
