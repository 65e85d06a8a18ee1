"""The exec model: a small simulated kernel predicting the HWCAPs every process of a pod sees.

``kernel`` holds the kernel semantics (raw words only; the saved_auxv byte layouts are
:mod:`hwcap_operator.auxv`), ``hwcap_exec`` the init binary's steps, ``scenarios`` serialisable step lists
that drive the model (and the kernel lab's guests), ``pod_simulation`` the operator's checks on top (mask +
catalog). See docs in each module; every rule cites the patch hunk or the section of
docs/kernel.md (``kernel.md#<anchor>``) that states the kernel fact and its source.
"""

from hwcap_operator.execmodel.kernel import (
    Binary,
    Creds,
    Kernel,
    KernelConfig,
    ModelError,
    PatchLevel,
    PrctlMmMap,
    TraceEvent,
    glibc_getauxval,
)

__all__ = [
    "Binary",
    "Creds",
    "Kernel",
    "KernelConfig",
    "ModelError",
    "PatchLevel",
    "PrctlMmMap",
    "TraceEvent",
    "glibc_getauxval",
]
