"""x86 CPU models as QEMU defines them, in /proc/cpuinfo names: GENERATED, do not edit.

Source: QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3),
query-cpu-model-expansion type=full, -machine none -accel tcg (QEMU's builtin_x86_defs, target/i386/cpu.c),
by tests/data/qemu_cpu_models/extract.py from qemu-x86_64-models.json. Kept: features
userspace can use (HWCAP bits, names NFD or a runtime knob spells, a few plain instructions); left out:
virtualization and kernel-only features (that script's NOT_USERSPACE).
"""

from __future__ import annotations

QEMU_VERSION = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"

X86_MODELS: dict[str, tuple[str, ...]] = {
    "qemu64-v1": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "cx16", "syscall", "nx", "lm", "lahf_lm",
    ),
    "kvm64-v1": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "cx16", "syscall", "nx", "lm",
    ),
    "Opteron_G1-v1": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "syscall", "nx", "lm",
    ),
    "Opteron_G2-v1": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "cx16", "syscall", "nx", "lm", "lahf_lm",
    ),
    "Opteron_G3-v1": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "cx16", "popcnt", "syscall", "nx", "rdtscp", "lm",
        "lahf_lm", "abm", "sse4a",
    ),
    "Opteron_G4-v1": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "pclmulqdq", "ssse3", "cx16", "sse4_1", "sse4_2",
        "popcnt", "aes", "xsave", "avx", "syscall", "nx", "rdtscp", "lm", "lahf_lm", "abm", "sse4a",
        "3dnowprefetch", "xop", "fma4",
    ),
    "Opteron_G5-v1": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "pclmulqdq", "ssse3", "fma", "cx16", "sse4_1",
        "sse4_2", "popcnt", "aes", "xsave", "avx", "f16c", "syscall", "nx", "rdtscp", "lm", "lahf_lm", "abm",
        "sse4a", "3dnowprefetch", "xop", "fma4",
    ),
    "Conroe-v1": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "ssse3", "syscall", "nx", "lm", "lahf_lm",
    ),
    "Penryn-v1": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "ssse3", "cx16", "sse4_1", "syscall", "nx", "lm",
        "lahf_lm",
    ),
    "Nehalem-v2": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "ssse3", "cx16", "sse4_1", "sse4_2", "popcnt",
        "syscall", "nx", "lm", "lahf_lm",
    ),
    "Westmere-v2": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "pclmulqdq", "ssse3", "cx16", "sse4_1", "sse4_2",
        "popcnt", "aes", "syscall", "nx", "lm", "lahf_lm",
    ),
    "SandyBridge-v2": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "pni", "pclmulqdq", "ssse3", "cx16", "sse4_1", "sse4_2",
        "popcnt", "aes", "xsave", "avx", "syscall", "nx", "rdtscp", "lm", "lahf_lm", "xsaveopt",
    ),
    "IvyBridge-v2": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "cx16", "sse4_1",
        "sse4_2", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "rdtscp", "lm", "lahf_lm",
        "erms", "xsaveopt",
    ),
    "Haswell-v4": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "fma", "cx16",
        "sse4_1", "sse4_2", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "rdtscp",
        "lm", "lahf_lm", "abm", "bmi1", "avx2", "bmi2", "erms", "xsaveopt",
    ),
    "Broadwell-v4": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "fma", "cx16",
        "sse4_1", "sse4_2", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "rdtscp",
        "lm", "lahf_lm", "abm", "3dnowprefetch", "bmi1", "avx2", "bmi2", "erms", "rdseed", "adx", "xsaveopt",
    ),
    "Skylake-Client-v4": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "fma", "cx16",
        "sse4_1", "sse4_2", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "rdtscp",
        "lm", "lahf_lm", "abm", "3dnowprefetch", "bmi1", "avx2", "bmi2", "erms", "rdseed", "adx", "xsaveopt",
        "xsavec", "xgetbv1",
    ),
    "Skylake-Server-v5": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "fma", "cx16",
        "sse4_1", "sse4_2", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "rdtscp",
        "lm", "lahf_lm", "abm", "3dnowprefetch", "bmi1", "avx2", "bmi2", "erms", "avx512f", "avx512dq", "rdseed",
        "adx", "clwb", "avx512cd", "avx512bw", "avx512vl", "xsaveopt", "xsavec", "xgetbv1",
    ),
    "Cascadelake-Server-v5": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "fma", "cx16",
        "sse4_1", "sse4_2", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "rdtscp",
        "lm", "lahf_lm", "abm", "3dnowprefetch", "bmi1", "avx2", "bmi2", "erms", "avx512f", "avx512dq", "rdseed",
        "adx", "clflushopt", "clwb", "avx512cd", "avx512bw", "avx512vl", "xsaveopt", "xsavec", "xgetbv1",
    ),
    "Cooperlake-v2": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "fma", "cx16",
        "sse4_1", "sse4_2", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "rdtscp",
        "lm", "lahf_lm", "abm", "3dnowprefetch", "bmi1", "hle", "avx2", "bmi2", "erms", "rtm", "avx512f",
        "avx512dq", "rdseed", "adx", "clflushopt", "clwb", "avx512cd", "avx512bw", "avx512vl", "avx512_bf16",
        "xsaveopt", "xsavec", "xgetbv1",
    ),
    "Icelake-Server-v6": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "fma", "cx16",
        "sse4_1", "sse4_2", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "rdtscp",
        "lm", "lahf_lm", "abm", "3dnowprefetch", "bmi1", "avx2", "bmi2", "erms", "avx512f", "avx512dq", "rdseed",
        "adx", "avx512ifma", "clflushopt", "clwb", "avx512cd", "sha_ni", "avx512bw", "avx512vl", "avx512vbmi",
        "gfni", "vaes", "vpclmulqdq", "avx512_vpopcntdq", "rdpid", "fsrm", "xsaveopt", "xsavec", "xgetbv1",
    ),
    "EPYC-v3": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "fma", "cx16",
        "sse4_1", "sse4_2", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "mmxext",
        "fxsr_opt", "rdtscp", "lm", "lahf_lm", "abm", "sse4a", "3dnowprefetch", "bmi1", "avx2", "bmi2", "rdseed",
        "adx", "clflushopt", "sha_ni", "xsaveopt", "xsavec", "xgetbv1", "clzero", "xsaveerptr",
    ),
    "EPYC-Rome-v2": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "fma", "cx16",
        "sse4_1", "sse4_2", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "mmxext",
        "fxsr_opt", "rdtscp", "lm", "lahf_lm", "abm", "sse4a", "3dnowprefetch", "bmi1", "avx2", "bmi2", "rdseed",
        "adx", "clflushopt", "clwb", "sha_ni", "rdpid", "xsaveopt", "xsavec", "xgetbv1", "clzero", "xsaveerptr",
    ),
    "EPYC-Milan-v1": (
        "fpu", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge", "mca", "cmov", "pat",
        "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "fsgsbase", "pni", "pclmulqdq", "ssse3", "fma", "cx16",
        "sse4_1", "sse4_2", "movbe", "popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "syscall", "nx", "mmxext",
        "fxsr_opt", "rdtscp", "lm", "lahf_lm", "abm", "sse4a", "3dnowprefetch", "bmi1", "avx2", "bmi2", "erms",
        "rdseed", "adx", "clflushopt", "clwb", "sha_ni", "rdpid", "fsrm", "xsaveopt", "xsavec", "xgetbv1", "clzero",
        "xsaveerptr",
    ),
}
