"""The exec model: a small simulated kernel predicting the HWCAPs every process of a pod sees.

``kernel`` holds the kernel semantics (raw words only), ``auxv`` the saved_auxv byte layouts, ``scenarios``
serialisable step lists that drive the model (and the kernel lab's guests), ``validate`` the operator's
checks on top (mask + catalog). See docs in each module; every rule cites the patch hunk or kernel-facts §.
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
