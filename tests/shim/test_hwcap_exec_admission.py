"""The webhook's commands, run for real: the init container's `--install` and a wrapped container's argv.

The admission code builds these argv lists (hwcap_operator.admission.mutate); here they are executed with
the real binary as an unprivileged user, the way the kubelet would run them inside the pod.
"""

from __future__ import annotations

import platform
from pathlib import Path

from hwcap_exec_support import PR_SET_MM, Deny, auxv_at_execve, kernel_hwcap, run, seccomp_denying

from hwcap_operator.admission import DomainView, MutationConfig
from hwcap_operator.admission.mutate import install_init_container, wrapper_argv
from hwcap_operator.arch import normalize_arch
from hwcap_operator.auxv import HWCAP_TYPES

EX_APPLY = 71


def _setup(hwcap_exec: Path, workdir: Path, on_failure: str) -> tuple[DomainView, MutationConfig]:
    words = kernel_hwcap()
    mask = tuple(words.get(t, 0) & 0x0F0F_0F0F_0F0F_0F0F for t in HWCAP_TYPES)
    domain = DomainView(
        name="demo",
        arch=normalize_arch(platform.machine()),
        hwcap=(mask[0], mask[1], mask[2], mask[3]),
        mask_id="test",
        mask_canonical="test",
        namespace_selector=None,
        on_failure="fail" if on_failure == "fail" else "warn",
    )
    mount = workdir / "hwcap-bin"
    mount.mkdir()
    mount.chmod(0o777)  # the emptyDir, writable by the pod's user
    config = MutationConfig(operator_namespace="hwcap-system", init_image="example/hwcap:0", mount_path=str(mount))
    install = install_init_container(config)["command"]
    assert install[0] == config.image_shim_path
    res = run([str(hwcap_exec), *install[1:]], user="nobody")  # the image's copy installs itself
    assert (res.returncode, res.stderr) == (0, "")
    return domain, config


def test_wrapped_container_runs_under_the_domains_mask(hwcap_exec: Path, workdir: Path) -> None:
    domain, config = _setup(hwcap_exec, workdir, "warn")
    argv = [*wrapper_argv(domain, config), "/bin/sh", "-c", "exit 7"]
    assert argv[0] == str(Path(config.mount_path) / "hwcap-exec")
    res = run(argv, user="nobody")
    assert (res.returncode, res.stdout, res.stderr) == (7, "", "")

    observed, _ = auxv_at_execve(argv, workdir, user="nobody")
    words = kernel_hwcap()
    seen = {t: v for t, v in observed if t in HWCAP_TYPES}
    # Every word the kernel provides is masked by the domain's word; the others are not invented.
    assert seen == {t: words[t] & domain.hwcap[HWCAP_TYPES.index(t)] for t in words}


def test_required_inheritance_stops_the_container_when_the_prctl_fails(hwcap_exec: Path, workdir: Path) -> None:
    domain, config = _setup(hwcap_exec, workdir, "fail")
    marker = workdir / "ran"
    argv = [*wrapper_argv(domain, config), "/bin/sh", "-c", f"touch {marker}"]
    res = run(argv, user="nobody", preexec=seccomp_denying(Deny(PR_SET_MM)))
    assert res.returncode == EX_APPLY
    assert not marker.exists()
    assert res.stderr.startswith("hwcap-exec: mask not applied, not running /bin/sh: PR_SET_MM_MAP:")
