"""The real hwcap-exec binary, run here as root and as nobody.

Expectations come from the kernel's own views (``/proc/<pid>/auxv``, ``cmdline``, ``environ`` of the test
process or of the exec'd program) and from the documented contract in ``src/shim/hwcap-exec.c``,
never from the binary's output alone.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import struct
from pathlib import Path

import pytest
from hwcap_exec_support import (
    PR_GET_AUXV,
    PR_SET_MM,
    PR_SET_MM_MAP,
    Deny,
    auxv_at_execve,
    documented_after,
    json_report,
    kernel_hwcap,
    own_auxv,
    parse_auxv,
    root_gets_cap_sys_resource,
    run,
    seccomp_denying,
    vector,
)

from hwcap_operator.auxv import AT_HWCAP, AT_HWCAP2, HWCAP_TYPES, at_name

EX_UNSUPPORTED, EX_UNKNOWN, EX_USAGE, EX_APPLY, EX_CANTCREAT, EX_NOEXEC, EX_NOTFOUND = 3, 4, 64, 71, 73, 126, 127


def _mask_clearing_some_bits() -> tuple[list[str], dict[int, int]]:
    """Options that clear the lowest and highest set bit of AT_HWCAP and all of AT_HWCAP2 (when present),
    with the per-type mask they stand for."""
    words = kernel_hwcap()
    hw = words[AT_HWCAP]
    assert hw, "the kernel reports no AT_HWCAP bits; nothing to mask"
    low, high = hw & -hw, 1 << (hw.bit_length() - 1)
    masks = {AT_HWCAP: ~(low | high) & (2**64 - 1)}
    args = ["--hwcap", f"{masks[AT_HWCAP]:#x}"]
    if AT_HWCAP2 in words:
        masks[AT_HWCAP2] = 0
        args += ["--hwcap2", "0"]
    return args, masks


# ------------------------------------------------------------------------------------------ the binary


def test_binary_is_static_and_small(hwcap_exec: Path) -> None:
    data = hwcap_exec.read_bytes()
    assert data[:4] == b"\x7fELF"
    assert len(data) < 100 * 1024, f"{hwcap_exec} is {len(data)} bytes, the budget is 100 KiB"
    assert data[4] == 2, "expected a 64-bit ELF"
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    ptypes = {struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)}
    assert 3 not in ptypes, "PT_INTERP present: the binary is dynamically linked"
    assert 2 not in ptypes, "PT_DYNAMIC present: the binary is dynamically linked"


def test_version_and_help(hwcap_exec: Path) -> None:
    version = run([str(hwcap_exec), "--version"])
    assert version.returncode == 0
    assert re.fullmatch(r"hwcap-exec \d+\.\d+\.\d+\n", version.stdout)
    helptext = run([str(hwcap_exec), "--help"])
    assert helptext.returncode == 0
    assert helptext.stdout.startswith("usage: hwcap-exec --hwcap HEX")
    for code in ("64", "70", "71", "126", "127"):
        assert code in helptext.stdout


# ----------------------------------------------------------------------------- the program is untouched

_OBSERVER = r"""
d="$OUT_DIR"
cat /proc/$$/cmdline > "$d/cmdline"
cat /proc/$$/environ > "$d/environ"
cat /proc/$$/auxv > "$d/auxv"
grep '^CapEff:' /proc/$$/status > "$d/capeff"
pwd -P > "$d/cwd"
echo $$ > "$d/pid"
cat > "$d/stdin"
echo via-fd >&"$EXTRA_FD"
echo out-line
echo err-line >&2
exit 42
"""


def test_program_runs_with_argv_env_cwd_fds_pid_and_status_untouched(
    hwcap_exec: Path, workdir: Path, user: str
) -> None:
    mask_args, _ = _mask_clearing_some_bits()
    program = ["/bin/bash", "-c", _OBSERVER, "observer", "a b", "", "--hwcap", "zz", "ü", "-- x", "-"]
    r_fd, w_fd = os.pipe()
    env = {"PATH": "/usr/bin:/bin", "OUT_DIR": str(workdir), "EXTRA_FD": str(w_fd), "WEIRD": "x=y z", "EMPTY": ""}
    try:
        res = run(
            [str(hwcap_exec), *mask_args, "--", *program],
            user=user,
            env=env,
            cwd=workdir,
            pass_fds=(w_fd,),
            stdin="fed on stdin\n",
        )
        os.close(w_fd)
        w_fd = -1
        via_fd = os.read(r_fd, 100)
    finally:
        os.close(r_fd)
        if w_fd >= 0:
            os.close(w_fd)
    assert res.returncode == 42, res.stderr
    assert res.stdout == "out-line\n"
    assert res.stderr == "err-line\n"
    assert via_fd == b"via-fd\n"
    assert (workdir / "cmdline").read_bytes() == b"".join(a.encode() + b"\0" for a in program)
    environ = (workdir / "environ").read_bytes().split(b"\0")[:-1]
    assert sorted(environ) == sorted(f"{k}={v}".encode() for k, v in env.items())
    assert (workdir / "cwd").read_text().strip() == str(workdir.resolve())
    assert int((workdir / "pid").read_text()) == res.pid, "hwcap-exec must exec in place, not fork"
    assert (workdir / "stdin").read_text() == "fed on stdin\n"
    cap_eff = int((workdir / "capeff").read_text().split()[1], 16)
    if user == "nobody":
        assert cap_eff == 0, "the unprivileged run must hold no capability at all"
    # This kernel does not carry the series: the exec'd program gets the kernel's full words again.
    child = dict(parse_auxv((workdir / "auxv").read_bytes()))
    assert {t: child[t] for t in kernel_hwcap()} == kernel_hwcap()


def test_signal_death_is_the_programs(hwcap_exec: Path, user: str) -> None:
    res = run([str(hwcap_exec), "--hwcap", "0x1", "--", "/bin/sh", "-c", "kill -TERM $$"], user=user)
    assert res.returncode == -signal.SIGTERM
    assert res.stderr == ""


def test_options_end_at_the_first_non_option(hwcap_exec: Path) -> None:
    res = run([str(hwcap_exec), "--hwcap", "0x1", "echo", "--hwcap", "zz", "--print"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == "--hwcap zz --print\n"
    assert res.stderr == ""


# ------------------------------------------------------------------------------ the vector it writes


def test_saved_auxv_at_execve_is_the_masked_vector(hwcap_exec: Path, workdir: Path, user: str) -> None:
    """gdb stops the binary at its execve and reads /proc/<pid>/auxv from outside: the kernel's view of
    the vector PR_SET_MM_MAP stored, which the next exec reads under the patch."""
    mask_args, masks = _mask_clearing_some_bits()
    argv = [str(hwcap_exec), *mask_args, "--print=json", "--", "/bin/true"]
    observed, stderr = auxv_at_execve(argv, workdir, user=user)
    report = json_report(stderr)
    before = vector(report, "before")
    assert report["ok"] is True and report["method"] == "PR_SET_MM_MAP"
    # The vector before: what the kernel gives every process here (checked against our own auxv's words).
    assert {t: v for t, v in before if t in HWCAP_TYPES} == kernel_hwcap()
    assert observed == documented_after(before, masks)
    assert vector(report, "after") == observed


def test_unspecified_words_are_left_unchanged(hwcap_exec: Path, user: str) -> None:
    words = kernel_hwcap()
    res = run([str(hwcap_exec), "--hwcap", "0x1", "--print=json", "--", "/bin/true"], user=user)
    assert res.returncode == 0, res.stderr
    after = dict(vector(res.report(), "after"))
    assert after[AT_HWCAP] == words[AT_HWCAP] & 1
    for t in words:
        if t != AT_HWCAP:
            assert after[t] == words[t], at_name(t)


def test_a_word_the_kernel_does_not_provide_is_not_added(hwcap_exec: Path) -> None:
    missing = [t for t in HWCAP_TYPES if t not in kernel_hwcap()]
    assert missing, "this kernel provides all four HWCAP words; pick another case"
    option = f"--hwcap{HWCAP_TYPES.index(missing[-1]) + 1}"
    res = run([str(hwcap_exec), option, "0x0", "--print=json", "--", "/bin/true"])
    assert res.returncode == 0, res.stderr
    report = res.report()
    after_types = [t for t, _ in report["after"]]
    assert after_types == [t for t, _ in own_auxv()]
    assert missing[-1] not in after_types


def test_print_text_names_every_entry(hwcap_exec: Path) -> None:
    """Text form: '# before', one 'AT_NAME 0xVALUE' per entry, '# after PR_SET_MM_MAP', the entries again."""
    res = run([str(hwcap_exec), "--hwcap", "0x0", "--print", "--", "/bin/true"])
    assert res.returncode == 0, res.stderr
    lines = res.stderr_lines()
    split = lines.index("# after PR_SET_MM_MAP")
    assert lines[0] == "# before"
    before, after = lines[1:split], lines[split + 1 :]
    expected_types = [t for t, _ in own_auxv()]  # a fresh exec gets the same entry types in the same order
    for block in (before, after):
        assert [line.split()[0] for line in block] == [at_name(t) for t in expected_types]
        assert all(re.fullmatch(r"AT_\w+ 0x[0-9a-f]+", line) for line in block)
    hw_after = dict(line.split() for line in after)
    assert hw_after["AT_HWCAP"] == "0x0"


def test_proc_auxv_is_used_when_pr_get_auxv_is_refused(hwcap_exec: Path, user: str) -> None:
    """Kernels before 6.4 have no PR_GET_AUXV (EINVAL): the binary reads /proc/self/auxv instead."""
    deny = seccomp_denying(Deny(PR_GET_AUXV, err=errno.EINVAL))
    res = run([str(hwcap_exec), "--hwcap", "0x1", "--print=json", "--", "/bin/true"], user=user, preexec=deny)
    assert res.returncode == 0, res.stderr
    report = res.report()
    assert report["saved_auxv_size"] == 0  # unknown without PR_GET_AUXV
    assert dict(vector(report, "after"))[AT_HWCAP] == kernel_hwcap()[AT_HWCAP] & 1


# ---------------------------------------------------------------------------- failures and fallbacks


def test_refused_prctl_fails_by_default(hwcap_exec: Path, workdir: Path, user: str) -> None:
    marker = workdir / "ran"
    res = run(
        [str(hwcap_exec), "--hwcap", "0x1", "--", "/bin/sh", "-c", f"touch {marker}"],
        user=user,
        preexec=seccomp_denying(Deny(PR_SET_MM)),
    )
    assert res.returncode == EX_APPLY
    assert not marker.exists(), "the program must not run when the mask was not applied"
    [line] = res.stderr_lines()
    assert line.startswith("hwcap-exec: mask not applied, not running /bin/sh: PR_SET_MM_MAP: Operation not permitted")
    if user == "root" and root_gets_cap_sys_resource():  # the fallback was tried and refused too
        assert line.endswith("PR_SET_MM_AUXV: Operation not permitted")
    else:
        assert line.endswith("PR_SET_MM_AUXV not tried (needs CAP_SYS_RESOURCE)")


def test_refused_prctl_warns_and_runs_with_on_failure_warn(hwcap_exec: Path, user: str) -> None:
    res = run(
        [str(hwcap_exec), "--hwcap", "0x1", "--on-failure=warn", "--print=json", "--", "/bin/sh", "-c", "exit 5"],
        user=user,
        preexec=seccomp_denying(Deny(PR_SET_MM)),
    )
    assert res.returncode == 5
    warnings = [line for line in res.stderr_lines() if not line.startswith("{")]
    assert len(warnings) == 1
    assert warnings[0].startswith("hwcap-exec: warning: mask not applied, running /bin/sh unmasked: PR_SET_MM_MAP:")
    report = res.report()
    assert report["ok"] is False and report["method"] is None
    assert report["after"] == report["before"]
    assert dict(vector(report, "after"))[AT_HWCAP] == kernel_hwcap()[AT_HWCAP]


def test_set_mm_auxv_fallback_needs_cap_sys_resource(hwcap_exec: Path, user: str) -> None:
    """PR_SET_MM_MAP refused alone: root with CAP_SYS_RESOURCE falls back to PR_SET_MM_AUXV, others cannot.

    Where the sandbox keeps CAP_SYS_RESOURCE out of root's bounding set, root takes the 'not tried' branch."""
    deny = seccomp_denying(Deny(PR_SET_MM, PR_SET_MM_MAP, errno.EINVAL))
    res = run([str(hwcap_exec), "--hwcap", "0x1", "--print=json", "--", "/bin/true"], user=user, preexec=deny)
    report = res.report()
    if user == "root" and root_gets_cap_sys_resource():
        assert res.returncode == 0, res.stderr
        assert report["method"] == "PR_SET_MM_AUXV"
        assert dict(vector(report, "after"))[AT_HWCAP] == kernel_hwcap()[AT_HWCAP] & 1
    else:
        assert res.returncode == EX_APPLY
        assert "PR_SET_MM_AUXV not tried (needs CAP_SYS_RESOURCE)" in res.stderr


@pytest.mark.needs_root  # setpriv --bounding-set needs CAP_SETPCAP
def test_root_without_cap_sys_resource_does_not_try_set_mm_auxv(hwcap_exec: Path) -> None:
    deny = seccomp_denying(Deny(PR_SET_MM, PR_SET_MM_MAP, errno.EINVAL))
    res = run(
        ["setpriv", "--bounding-set=-sys_resource", str(hwcap_exec), "--hwcap", "0x1", "--", "/bin/true"],
        preexec=deny,
    )
    assert res.returncode == EX_APPLY
    assert res.stderr.endswith("PR_SET_MM_AUXV not tried (needs CAP_SYS_RESOURCE)\n")


# --------------------------------------------------------------------------------------------- probe


def test_probe_says_unsupported_on_this_unpatched_kernel(hwcap_exec: Path, user: str) -> None:
    """This machine's kernel does not carry "exec: inherit HWCAPs" (the kernel lab checks 'supported')."""
    res = run([str(hwcap_exec), "--probe"], user=user)
    assert (res.returncode, res.stdout, res.stderr) == (EX_UNSUPPORTED, "unsupported\n", "")


def test_probe_clears_the_top_bit_of_the_last_nonzero_hwcap_word(hwcap_exec: Path) -> None:
    """Like the kernel selftest hwcap_inherit.c."""
    res = run([str(hwcap_exec), "--probe", "--print=json"])
    assert res.returncode == EX_UNSUPPORTED
    last_type, last_value = [(t, v) for t, v in own_auxv() if t in HWCAP_TYPES and v][-1]
    report = res.report()
    assert report["mode"] == "probe" and report["ok"] is True
    changed = [(a, b) for a, b in zip(report["before"], report["after"], strict=True) if a != b]
    assert changed == [([last_type, last_value], [last_type, last_value & ~(1 << (last_value.bit_length() - 1))])]


def test_probe_is_unknown_when_the_prctl_is_refused(hwcap_exec: Path, user: str) -> None:
    res = run([str(hwcap_exec), "--probe"], user=user, preexec=seccomp_denying(Deny(PR_SET_MM)))
    assert res.returncode == EX_UNKNOWN
    assert res.stdout.startswith("unknown: the test mask could not be applied: PR_SET_MM_MAP: Operation not permitted")
    assert res.stdout.count("\n") == 1


# ----------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ([], "no mask given"),
        (["--", "/bin/true"], "no mask given"),
        (["--hwcap"], "'--hwcap' needs a value"),
        (["--hwcap", "zz", "--", "/bin/true"], "'zz'"),
        (["--hwcap2=0x", "/bin/true"], "--hwcap2: bad value '0x'"),
        (["--hwcap", "-1", "/bin/true"], "'-1'"),
        (["--hwcap3", "0x1ffffffffffffffff", "/bin/true"], "'0x1ffffffffffffffff' does not fit in 64 bits"),
        (["--hwcap", "1", "--hwcap=2", "/bin/true"], "'--hwcap' given twice"),
        (["--hwcap", "1", "--on-failure=maybe", "/bin/true"], "--on-failure: bad value 'maybe'"),
        (["--hwcap", "1", "--print=xml", "/bin/true"], "--print: bad value 'xml'"),
        (["--hwcap", "1", "--frobnicate", "/bin/true"], "unknown option '--frobnicate'"),
        (["--hwcap", "1"], "no PROGRAM given"),
        (["--hwcap", "1", "--"], "no PROGRAM given"),
        (["--probe", "/bin/true"], "--probe takes no PROGRAM (got '/bin/true')"),
        (["--probe", "--hwcap", "1"], "--probe takes no other option than --print"),
        (["--probe-verify=zz"], "--probe-verify: bad value 'zz'"),
        (["--install"], "'--install' needs a value"),
        (["--install="], "--install: empty DEST"),
        (["--install", "/tmp/x", "/bin/true"], "--install takes no PROGRAM (got '/bin/true')"),
        (["--install", "/tmp/x", "--hwcap", "1"], "--install takes no other option"),
    ],
)
def test_bad_arguments_exit_64_naming_them(hwcap_exec: Path, args: list[str], names: str) -> None:
    res = run([str(hwcap_exec), *args])
    assert res.returncode == EX_USAGE
    assert res.stdout == ""
    [line] = res.stderr_lines()
    assert line.startswith("hwcap-exec: ")
    assert names in line


def test_program_not_found_is_127(hwcap_exec: Path, user: str) -> None:
    res = run([str(hwcap_exec), "--hwcap", "0x1", "--", "no-such-program-xyz", "arg"], user=user)
    assert res.returncode == EX_NOTFOUND
    assert res.stderr == "hwcap-exec: cannot execute no-such-program-xyz: No such file or directory\n"


def test_program_not_executable_is_126(hwcap_exec: Path, workdir: Path, user: str) -> None:
    script = workdir / "not-executable"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    res = run([str(hwcap_exec), "--hwcap", "0x1", "--", str(script)], user=user)
    assert res.returncode == EX_NOEXEC
    assert res.stderr == f"hwcap-exec: cannot execute {script}: Permission denied\n"


# ------------------------------------------------------------------------------------------- install


def test_install_copies_itself_unprivileged(hwcap_exec: Path, workdir: Path, user: str) -> None:
    """The webhook's init container: `hwcap-exec --install /hwcap/bin/hwcap-exec` into the pod's emptyDir."""
    dest = workdir / "bin" / "hwcap-exec"
    dest.parent.mkdir()
    dest.parent.chmod(0o777)
    dest.write_bytes(b"an older copy")  # a restarted init container replaces what is there
    res = run([str(hwcap_exec), "--install", str(dest)], user=user)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    assert dest.read_bytes() == hwcap_exec.read_bytes()
    assert dest.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in dest.parent.iterdir()) == ["hwcap-exec"], "temporary file left behind"
    assert run([str(dest), "--version"], user=user).returncode == 0


def test_install_into_a_missing_directory_names_it(hwcap_exec: Path, workdir: Path) -> None:
    dest = workdir / "no-such-dir" / "hwcap-exec"
    res = run([str(hwcap_exec), "--install", str(dest)])
    assert res.returncode == EX_CANTCREAT
    assert res.stderr == f"hwcap-exec: --install {dest}: create: No such file or directory\n"
