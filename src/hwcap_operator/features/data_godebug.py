"""Which ``GODEBUG=cpu.<key>=off`` keys each Go consumer understands, per version: data with its source.

A Go program parses ``GODEBUG`` cpu keys up to three times: the runtime's ``internal/cpu`` (used by the
runtime, the standard library's crypto, ``bytealg``, ``memmove``), the copy of ``golang.org/x/sys/cpu``
the standard library vendors (linked into every program using crypto/tls, via its vendored
chacha20poly1305), and, when the program imports it, the module ``golang.org/x/sys/cpu`` (x/crypto, many
libraries). Each prints a warning on the program's stderr for every key it does not know, at every
start::

    GODEBUG: unknown cpu feature "avx512cd"            (internal/cpu, Go 1.22-1.25)
    GODEBUG sys/cpu: unknown cpu feature "fsrm"        (x/sys/cpu)

So the webhook writes only keys that every targeted consumer knows (:data:`GODEBUG_KEYS_EVERYWHERE`).
A feature whose key only one of them knows is not covered by the Go fallback; the coverage report says so.

Sources (option lists, read from the released sources):
- internal/cpu ``doinit`` options in ``src/internal/cpu/cpu_x86.go`` of go1.22.0, go1.23.0, go1.24.0,
  go1.25.0 (the golang.org/toolchain module of each release) and go1.26.8 (the installed toolchain). The
  level-gated keys (popcnt sse3 sse41 sse42 ssse3 below GOAMD64=v2, avx avx2 bmi1 bmi2 fma below v3,
  avx512* below v4) exist only in binaries built for a lower level: a GOAMD64=v3 binary reports
  ``cpu.avx2`` as unknown. Go's default, and what distributions ship, is v1.
- x/sys/cpu ``initOptions`` in ``cpu/cpu_x86.go`` of golang.org/x/sys v0.49.0 (the version the runtime
  conformance suite pins, tests/runtimes/goprobe/go.mod) and of v0.39.0, the copy go1.26's standard
  library vendors (src/vendor/modules.txt), which lacks f16c, lahf, lzcnt, movbe and xsave.
"""

from __future__ import annotations

_COMMON_1_22 = frozenset(
    {"adx", "aes", "erms", "pclmulqdq", "rdtscp", "sha", "popcnt", "sse3", "sse41", "sse42", "ssse3",
     "avx", "avx2", "bmi1", "bmi2", "fma", "avx512f", "avx512bw", "avx512vl"}
)  # fmt: skip

#: internal/cpu keys on amd64 (GOAMD64=v1 build), per Go release.
GO_RUNTIME_KEYS_AMD64: dict[str, frozenset[str]] = {
    "go1.22": _COMMON_1_22,
    "go1.23": _COMMON_1_22,
    "go1.24": _COMMON_1_22 | {"fsrm"},
    "go1.25": _COMMON_1_22 | {"fsrm"},
    "go1.26": _COMMON_1_22 | {"fsrm", "avx512cd", "avx512dq", "vpclmulqdq"},
}

#: x/sys/cpu keys on amd64 (v0.49.0).
XSYS_CPU_KEYS_AMD64: frozenset[str] = frozenset(
    {"adx", "aes", "avx", "avx2", "avx512", "avx512f", "avx512cd", "avx512er", "avx512pf", "avx512vl",
     "avx512bw", "avx512dq", "avx512ifma", "avx512vbmi", "avx512vnniw", "avx5124fmaps", "avx512vpopcntdq",
     "avx512vpclmulqdq", "avx512vnni", "avx512gfni", "avx512vaes", "avx512vbmi2", "avx512bitalg",
     "avx512bf16", "amxtile", "amxint8", "amxbf16", "bmi1", "bmi2", "cx16", "erms", "f16c", "fma", "lahf",
     "lzcnt", "movbe", "osxsave", "pclmulqdq", "popcnt", "rdrand", "rdseed", "sse3", "sse41", "sse42",
     "ssse3", "avxifma", "avxvnni", "avxvnniint8", "xsave", "sse2"}
)  # fmt: skip

#: x/sys/cpu keys on amd64 in v0.39.0, the copy vendored into go1.26's standard library.
XSYS_CPU_KEYS_AMD64_VENDORED: frozenset[str] = XSYS_CPU_KEYS_AMD64 - {"f16c", "lahf", "lzcnt", "movbe", "xsave"}

#: The Go releases the webhook's GODEBUG must not make noisy: the ones still found in deployed binaries.
TARGETED_GO_RELEASES: tuple[str, ...] = tuple(GO_RUNTIME_KEYS_AMD64)


_ARM64_1_22 = frozenset({"aes", "pmull", "sha1", "sha2", "sha512", "crc32", "atomics", "cpuid", "isNeoverse"})

#: internal/cpu keys on arm64 (``src/internal/cpu/cpu_arm64.go`` options), read for go1.22.0 and go1.26.8;
#: go1.23-1.25 were not read and are taken to know at least go1.22's keys (options are only ever added).
GO_RUNTIME_KEYS_ARM64: dict[str, frozenset[str]] = {"go1.22": _ARM64_1_22, "go1.26": _ARM64_1_22 | {"sha3"}}

#: x/sys/cpu keys on arm64 (``cpu/cpu_arm64.go`` initOptions): the same in v0.49.0 and the v0.39.0 copy
#: go1.26 vendors. Two spell a feature unlike /proc/cpuinfo: evstrm (evtstrm), asimrdm (asimdrdm).
XSYS_CPU_KEYS_ARM64: frozenset[str] = frozenset(
    {"fp", "asimd", "evstrm", "aes", "fphp", "jscvt", "lrcpc", "pmull", "sha1", "sha2", "sha3", "sha512", "sm3",
     "sm4", "sve", "sve2", "crc32", "atomics", "asimdhp", "cpuid", "asimrdm", "fcma", "dcpop", "asimddp",
     "asimdfhm", "dit", "i8mm"}
)  # fmt: skip

#: arm64 catalog name -> GODEBUG key, where they differ.
ARM64_KEY_SPELLING: dict[str, str] = {"evtstrm": "evstrm", "asimdrdm": "asimrdm"}


def arm64_godebug_key(name: str) -> str | None:
    """The GODEBUG cpu key some Go consumer knows for arm64 feature ``name`` (None when none does)."""
    key = ARM64_KEY_SPELLING.get(name, name)
    known = XSYS_CPU_KEYS_ARM64.union(*GO_RUNTIME_KEYS_ARM64.values())
    return key if key in known else None


def _everywhere() -> dict[str, frozenset[str]]:
    runtime_keys = frozenset.intersection(*(GO_RUNTIME_KEYS_AMD64[r] for r in TARGETED_GO_RELEASES))
    runtime_arm64 = frozenset.intersection(*GO_RUNTIME_KEYS_ARM64.values())
    return {
        "amd64": runtime_keys & XSYS_CPU_KEYS_AMD64 & XSYS_CPU_KEYS_AMD64_VENDORED,
        "arm64": runtime_arm64 & XSYS_CPU_KEYS_ARM64,
    }


#: Per arch, the keys every targeted consumer knows: the only ones the webhook writes.
GODEBUG_KEYS_EVERYWHERE: dict[str, frozenset[str]] = _everywhere()


def godebug_consumers(arch: str, key: str) -> dict[str, list[str]]:
    """Which consumers know ``key``: ``{"internal/cpu": [releases...], "x/sys/cpu": [...]}`` (for coverage)."""
    if arch == "arm64":
        return {"internal/cpu": [r for r, keys in GO_RUNTIME_KEYS_ARM64.items() if key in keys],
                "x/sys/cpu": ["v0.39.0", "v0.49.0"] if key in XSYS_CPU_KEYS_ARM64 else []}  # fmt: skip
    if arch != "amd64":
        return {"internal/cpu": [], "x/sys/cpu": []}
    return {
        "internal/cpu": [r for r in TARGETED_GO_RELEASES if key in GO_RUNTIME_KEYS_AMD64[r]],
        "x/sys/cpu": [v for v, keys in (("v0.39.0", XSYS_CPU_KEYS_AMD64_VENDORED), ("v0.49.0", XSYS_CPU_KEYS_AMD64))
                      if key in keys],
    }
