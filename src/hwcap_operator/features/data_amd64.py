"""amd64 (x86-64) feature vocabulary, as data: the two HWCAP words plus the CPUID flags they cannot carry.

Why x86 needs more than HWCAP bits: ``AT_HWCAP`` is only the kernel's copy of CPUID.1:EDX
(``ELF_HWCAP = boot_cpu_data.x86_capability[CPUID_1_EDX]``) and ``AT_HWCAP2`` has two bits
(``HWCAP2_RING3MWAIT``, ``HWCAP2_FSGSBASE``; arch/x86/include/uapi/asm/hwcap2.h). AVX2, AVX-512, ... are
read with the CPUID instruction by glibc, Go and OpenSSL, so a HWCAP mask cannot hide them; the operator
still needs their names to compute baselines and to write userspace fallbacks (GLIBC_TUNABLES, GODEBUG,
OPENSSL_ia32cap). See docs/kernel.md#x86-cpuid and docs/kernel.md#userspace-fallbacks.

Sources for the spellings:
- /proc/cpuinfo names and word-0 bit numbers: arch/x86/include/asm/cpufeatures.h (word 0 = CPUID.1:EDX,
  verified in the index: ``X86_FEATURE_DS (0*32+21) "dts"``, ``SELFSNOOP (0*32+27) "ss"``, ``ACC (0*32+29)
  "tm"``, ``PBE (0*32+31)``; bits 10 and 20 are reserved). The CPUID-only names are those of the real dumps in
  tests/data/profiles plus the x86-64 level features.
- NFD: the label is ``cpu-cpuid.<klauspost/cpuid FeatureID name>`` (klauspost/cpuid v2 cpuid.go FeatureID
  list; NFD source/cpu/cpuid_amd64.go uses ``cpuid.CPU.FeatureSet()``). ``nfd = None`` where klauspost has
  no such feature. Labels for the names in :data:`NFD_DEFAULT_LABEL_DENYLIST` are not published by default.
- glibc: the names ``GLIBC_TUNABLES=glibc.cpu.hwcaps=-NAME`` accepts (sysdeps/x86/cpu-tunables.c,
  bminor/glibc@33237fe: AVX CX8 FMA HTT IBT RTM AVX2 BMI1 BMI2 CMOV ERMS FMA4 SSE2 LZCNT MOVBE SHSTK SSSE3
  XSAVE POPCNT SSE4_1 SSE4_2 XSAVEC AVX512F OSXSAVE AVX512CD AVX512BW AVX512DQ AVX512ER AVX512PF AVX512VL).
- Go: ``GODEBUG=cpu.<name>=off`` names of the runtime's internal/cpu (cpu_x86.go ``options``: adx aes erms
  fsrm pclmulqdq rdtscp sha vpclmulqdq always; popcnt sse3 sse41 sse42 ssse3 only below GOAMD64=v2; avx
  avx2 bmi1 bmi2 fma below v3; avx512f/cd/bw/dq/vl below v4 -- a binary built for a level cannot switch
  off what that level requires). golang.org/x/sys/cpu has more names; they do not affect the runtime.
- OpenSSL: ``OPENSSL_ia32cap`` (vector, bit): LV0 = CPUID.1 EDX (bits 0-31) : ECX (32-63), LV1 = CPUID.7.0
  EBX : ECX (openssl 3.x man page; docs/kernel.md#userspace-fallbacks). Only the bits that page documents are
  filled in.
"""

from __future__ import annotations

from hwcap_operator.features.model import Feature


def _h(word: int, bit: int, name: str, macro: str, **kw: object) -> Feature:
    """An amd64 feature carried in HWCAP word ``word`` at ``bit``."""
    return Feature(arch="amd64", name=name, word=word, bit=bit, macro=macro, **kw)  # type: ignore[arg-type]


def _c(name: str, **kw: object) -> Feature:
    """An amd64 CPUID-only feature (no HWCAP word carries it)."""
    return Feature(arch="amd64", name=name, word=None, bit=None, **kw)  # type: ignore[arg-type]


_LINUX = "Linux-defined flag (not a CPUID bit)"
#: Why hiding these is refused unless allowHidingSecurityFeatures: runtimes fall back to software.
_CONST_TIME = "hidden, crypto libraries fall back to table-based software code (slower, cache-timing side channels)"
_ENTROPY = "hidden, OpenSSL and others lose a hardware entropy source"

FEATURES: tuple[Feature, ...] = (
    # --- AT_HWCAP = CPUID.1:EDX (cpufeatures.h word 0) ---
    _h(0, 0, "fpu", "X86_FEATURE_FPU", nfd="X87"),
    _h(0, 1, "vme", "X86_FEATURE_VME"),
    _h(0, 2, "de", "X86_FEATURE_DE"),
    _h(0, 3, "pse", "X86_FEATURE_PSE"),
    _h(0, 4, "tsc", "X86_FEATURE_TSC", openssl=(0, 4)),
    _h(0, 5, "msr", "X86_FEATURE_MSR"),
    _h(0, 6, "pae", "X86_FEATURE_PAE"),
    _h(0, 7, "mce", "X86_FEATURE_MCE"),
    _h(0, 8, "cx8", "X86_FEATURE_CX8", nfd="CMPXCHG8", glibc="CX8"),
    _h(0, 9, "apic", "X86_FEATURE_APIC"),
    _h(0, 11, "sep", "X86_FEATURE_SEP", nfd="SYSEE"),
    _h(0, 12, "mtrr", "X86_FEATURE_MTRR"),
    _h(0, 13, "pge", "X86_FEATURE_PGE"),
    _h(0, 14, "mca", "X86_FEATURE_MCA"),
    _h(0, 15, "cmov", "X86_FEATURE_CMOV", nfd="CMOV", glibc="CMOV"),
    _h(0, 16, "pat", "X86_FEATURE_PAT"),
    _h(0, 17, "pse36", "X86_FEATURE_PSE36"),
    _h(0, 18, "pn", "X86_FEATURE_PN"),
    _h(0, 19, "clflush", "X86_FEATURE_CLFLUSH", openssl=(0, 19)),
    _h(0, 21, "dts", "X86_FEATURE_DS"),
    _h(0, 22, "acpi", "X86_FEATURE_ACPI"),
    _h(0, 23, "mmx", "X86_FEATURE_MMX", nfd="MMX", openssl=(0, 23)),
    _h(0, 24, "fxsr", "X86_FEATURE_FXSR", nfd="FXSR", openssl=(0, 24)),
    _h(0, 25, "sse", "X86_FEATURE_XMM", nfd="SSE", openssl=(0, 25)),
    _h(0, 26, "sse2", "X86_FEATURE_XMM2", nfd="SSE2", glibc="SSE2", openssl=(0, 26)),
    _h(0, 27, "ss", "X86_FEATURE_SELFSNOOP"),
    _h(0, 28, "ht", "X86_FEATURE_HT", glibc="HTT", openssl=(0, 28),
       note="NFD's HTT (klauspost/cpuid) means 'threads per core > 1', not this CPUID bit: NFD cannot show it"),
    _h(0, 29, "tm", "X86_FEATURE_ACC"),
    _h(0, 30, "ia64", "X86_FEATURE_IA64"),
    _h(0, 31, "pbe", "X86_FEATURE_PBE"),
    # --- AT_HWCAP2 (arch/x86/include/uapi/asm/hwcap2.h); /proc/cpuinfo shows the same names ---
    _h(1, 0, "ring3mwait", "HWCAP2_RING3MWAIT", note="MONITOR/MWAIT enabled in ring 3"),
    _h(1, 1, "fsgsbase", "HWCAP2_FSGSBASE", note="kernel allows FSGSBASE instructions in ring 3"),
    # --- CPUID.1:ECX ---
    _c("pni", nfd="SSE3", godebug="sse3", openssl=(0, 32), note="SSE3"),
    _c("pclmulqdq", nfd="CLMUL", godebug="pclmulqdq", openssl=(0, 33), security=True, note=_CONST_TIME),
    _c("dtes64"),
    _c("monitor"),
    _c("ds_cpl"),
    _c("vmx", nfd="VMX"),
    _c("smx"),
    _c("est"),
    _c("tm2"),
    _c("ssse3", nfd="SSSE3", glibc="SSSE3", godebug="ssse3", openssl=(0, 41)),
    _c("sdbg"),
    _c("fma", nfd="FMA3", glibc="FMA", godebug="fma"),
    _c("cx16", nfd="CX16", note="CMPXCHG16B"),
    _c("xtpr"),
    _c("pdcm"),
    _c("pcid"),
    _c("dca"),
    _c("sse4_1", nfd="SSE4", glibc="SSE4_1", godebug="sse41"),
    _c("sse4_2", nfd="SSE42", glibc="SSE4_2", godebug="sse42"),
    _c("x2apic"),
    _c("movbe", nfd="MOVBE", glibc="MOVBE", openssl=(0, 54)),
    _c("popcnt", nfd="POPCNT", glibc="POPCNT", godebug="popcnt"),
    _c("tsc_deadline_timer"),
    _c("aes", nfd="AESNI", godebug="aes", openssl=(0, 57), security=True, note=_CONST_TIME),
    _c("xsave", nfd="XSAVE", glibc="XSAVE", openssl=(0, 58)),
    _c("osxsave", nfd="OSXSAVE", glibc="OSXSAVE", openssl=(0, 59),
       note="not shown in /proc/cpuinfo; a kernel that shows avx has enabled XSAVE"),
    _c("avx", nfd="AVX", glibc="AVX", godebug="avx", openssl=(0, 60)),
    _c("f16c", nfd="F16C"),
    _c("rdrand", nfd="RDRAND", openssl=(0, 62), security=True, note=_ENTROPY),
    _c("hypervisor", nfd="HYPERVISOR"),
    # --- CPUID.80000001 (AMD-defined, word 1 and 6) ---
    _c("syscall", nfd="SYSCALL"),
    _c("nx", nfd="NX"),
    _c("mmxext", nfd="MMXEXT"),
    _c("fxsr_opt", nfd="FXSROPT"),
    _c("pdpe1gb"),
    _c("rdtscp", nfd="RDTSCP", godebug="rdtscp"),
    _c("lm"),
    _c("lahf_lm", nfd="LAHF"),
    _c("cmp_legacy"),
    _c("svm", nfd="SVM"),
    _c("extapic"),
    _c("cr8_legacy"),
    _c("abm", nfd="LZCNT", glibc="LZCNT", note="LZCNT (CPUID.80000001:ECX.ABM)"),
    _c("sse4a", nfd="SSE4A"),
    _c("misalignsse"),
    _c("3dnowprefetch"),
    _c("osvw"),
    _c("ibs", nfd="IBS"),
    _c("xop", nfd="XOP", openssl=(0, 43)),
    _c("fma4", nfd="FMA4", glibc="FMA4"),
    _c("skinit"),
    _c("wdt"),
    _c("tce"),
    _c("topoext", nfd="TOPEXT"),
    _c("perfctr_core"),
    _c("perfctr_nb"),
    _c("bpext"),
    _c("perfctr_llc"),
    _c("perfctr_l2"),
    _c("mwaitx"),
    # --- CPUID.7.0:EBX ---
    _c("tsc_adjust"),
    _c("sgx", nfd="SGX"),
    _c("bmi1", nfd="BMI1", glibc="BMI1", godebug="bmi1", openssl=(1, 3)),
    _c("hle", nfd="HLE"),
    _c("avx2", nfd="AVX2", glibc="AVX2", godebug="avx2", openssl=(1, 5)),
    _c("smep", note="kernel-side protection; userspace cannot use or lose it"),
    _c("bmi2", nfd="BMI2", glibc="BMI2", godebug="bmi2", openssl=(1, 8)),
    _c("erms", nfd="ERMS", glibc="ERMS", godebug="erms"),
    _c("invpcid"),
    _c("rtm", nfd="RTM", glibc="RTM"),
    _c("cqm"),
    _c("mpx", nfd="MPX"),
    _c("rdt_a"),
    _c("avx512f", nfd="AVX512F", glibc="AVX512F", godebug="avx512f", openssl=(1, 16)),
    _c("avx512dq", nfd="AVX512DQ", glibc="AVX512DQ", godebug="avx512dq", openssl=(1, 17)),
    _c("rdseed", nfd="RDSEED", openssl=(1, 18), security=True, note=_ENTROPY),
    _c("adx", nfd="ADX", godebug="adx", openssl=(1, 19)),
    _c("smap", note="kernel-side protection; userspace cannot use or lose it"),
    _c("avx512ifma", nfd="AVX512IFMA", openssl=(1, 21)),
    _c("clflushopt"),
    _c("clwb"),
    _c("intel_pt"),
    _c("avx512pf", nfd="AVX512PF", glibc="AVX512PF"),
    _c("avx512er", nfd="AVX512ER", glibc="AVX512ER"),
    _c("avx512cd", nfd="AVX512CD", glibc="AVX512CD", godebug="avx512cd"),
    _c("sha_ni", nfd="SHA", godebug="sha", openssl=(1, 29), security=True, note=_CONST_TIME),
    _c("avx512bw", nfd="AVX512BW", glibc="AVX512BW", godebug="avx512bw", openssl=(1, 30)),
    _c("avx512vl", nfd="AVX512VL", glibc="AVX512VL", godebug="avx512vl", openssl=(1, 31)),
    # --- CPUID.7.0:ECX / EDX ---
    _c("avx512vbmi", nfd="AVX512VBMI"),
    _c("umip"),
    _c("pku", security=True, note="memory protection keys"),
    _c("ospke", security=True, note="OS has enabled protection keys"),
    _c("waitpkg", nfd="WAITPKG"),
    _c("avx512_vbmi2", nfd="AVX512VBMI2"),
    _c("shstk", nfd="CETSS", glibc="SHSTK", security=True,
       note="CET shadow stack (CPUID bit); cpuinfo shows user_shstk when the kernel enables it for user mode"),
    _c("gfni", nfd="GFNI"),
    _c("vaes", nfd="VAES", openssl=(1, 41)),
    _c("vpclmulqdq", nfd="VPCLMULQDQ", godebug="vpclmulqdq", openssl=(1, 42)),
    _c("avx512_vnni", nfd="AVX512VNNI"),
    _c("avx512_bitalg", nfd="AVX512BITALG"),
    _c("tme", nfd="TME"),
    _c("avx512_vpopcntdq", nfd="AVX512VPOPCNTDQ"),
    _c("la57"),
    _c("rdpid"),
    _c("cldemote", nfd="CLDEMOTE"),
    _c("movdiri", nfd="MOVDIRI"),
    _c("movdir64b", nfd="MOVDIR64B"),
    _c("fsrm", nfd="FSRM", godebug="fsrm"),
    _c("avx512_vp2intersect", nfd="AVX512VP2INTERSECT"),
    _c("md_clear", nfd="MD_CLEAR"),
    _c("serialize", nfd="SERIALIZE"),
    _c("tsxldtrk", nfd="TSXLDTRK"),
    _c("pconfig", nfd="PCONFIG"),
    _c("ibt", nfd="CETIBT", glibc="IBT", security=True, note="CET indirect branch tracking"),
    _c("amx_bf16", nfd="AMXBF16"),
    _c("avx512_fp16", nfd="AVX512FP16"),
    _c("amx_tile", nfd="AMXTILE"),
    _c("amx_int8", nfd="AMXINT8"),
    _c("spec_ctrl", note="CPUID.7.0:EDX[26]; the synthetic ibrs flag is what both vendors show"),
    _c("intel_stibp"),
    _c("flush_l1d", nfd="FLUSH_L1D"),
    _c("arch_capabilities", nfd="IA32_ARCH_CAP"),
    # --- CPUID.7.1:EAX ---
    _c("avx_vnni", nfd="AVXVNNI"),
    _c("avx512_bf16", nfd="AVX512BF16"),
    # --- CPUID.0xD.1:EAX (XSAVE extensions) ---
    _c("xsaveopt", nfd="XSAVEOPT"),
    _c("xsavec", nfd="XSAVEC", glibc="XSAVEC"),
    _c("xgetbv1", nfd="XGETBV1"),
    _c("xsaves", nfd="XSAVES"),
    # --- CPUID.80000008:EBX and AMD extended leaves ---
    _c("clzero", nfd="CLZERO"),
    _c("irperf"),
    _c("xsaveerptr"),
    _c("rdpru", nfd="RDPRU"),
    _c("wbnoinvd", nfd="WBNOINVD"),
    _c("amd_ppin", nfd="PPIN"),
    _c("ibpb", nfd="IBPB"),
    _c("ibrs", nfd="IBRS"),
    _c("stibp", nfd="STIBP"),
    _c("ssbd", nfd="SPEC_CTRL_SSBD"),
    _c("ibrs_enhanced"),
    _c("virt_ssbd"),
    _c("amd_ssbd"),
    _c("cppc", nfd="CPPC"),
    _c("overflow_recov", nfd="MCAOVERFLOW"),
    _c("succor", nfd="SUCCOR"),
    _c("smca"),
    _c("sme", nfd="SME", note="AMD Secure Memory Encryption (not arm64 SME)"),
    _c("sev", nfd="SEV"),
    _c("sev_es", nfd="SEV_ES"),
    _c("sev_snp", nfd="SEV_SNP"),
    _c("npt", nfd="SVMNP"),
    _c("lbrv", nfd="LBRVIRT"),
    _c("svm_lock", nfd="SVML"),
    _c("nrip_save", nfd="NRIPS"),
    _c("tsc_scale", nfd="TSCRATEMSR"),
    _c("vmcb_clean", nfd="VMCBCLEAN"),
    _c("flushbyasid", nfd="SVMFBASID"),
    _c("decodeassists", nfd="SVMDA"),
    _c("pausefilter", nfd="SVMPF"),
    _c("pfthreshold", nfd="SVMPFT"),
    _c("avic"),
    _c("v_vmsave_vmload"),
    _c("vgif"),
    _c("v_spec_ctrl"),
    _c("cpb", nfd="CPBOOST"),
    _c("cat_l3"),
    _c("cdp_l3"),
    _c("mba"),
    _c("cqm_llc"),
    _c("cqm_occup_llc"),
    _c("cqm_mbm_total"),
    _c("cqm_mbm_local"),
    # --- Linux-defined and power-management flags (cpufeatures.h words 3, 7, 8, 14, ...) ---
    _c("user_shstk", security=True, note="kernel enabled CET shadow stacks for user mode (Linux flag)"),
    _c("constant_tsc", note=_LINUX),
    _c("art", note=_LINUX),
    _c("arch_perfmon", note=_LINUX),
    _c("pebs", note=_LINUX),
    _c("bts", note=_LINUX),
    _c("rep_good", note=_LINUX),
    _c("nopl", note=_LINUX),
    _c("xtopology", note=_LINUX),
    _c("tsc_reliable", note=_LINUX),
    _c("nonstop_tsc", note=_LINUX),
    _c("cpuid", note=_LINUX + ": CPUID instruction usable"),
    _c("extd_apicid", note=_LINUX),
    _c("amd_dcm", note=_LINUX),
    _c("aperfmperf", note=_LINUX),
    _c("eagerfpu", note=_LINUX + " (old kernels)"),
    _c("tsc_known_freq", note=_LINUX),
    _c("cpuid_fault", note=_LINUX + ": CPUID faulting available"),
    _c("epb", note=_LINUX),
    _c("cat_l2", note=_LINUX),
    _c("invpcid_single", note=_LINUX),
    _c("hw_pstate", note=_LINUX),
    _c("pti", note=_LINUX + ": page table isolation active"),
    _c("intel_ppin", note=_LINUX),
    _c("retpoline_amd", note=_LINUX + " (old kernels)"),
    _c("tpr_shadow", note="VMX feature"),
    _c("vnmi", note="VMX feature"),
    _c("flexpriority", note="VMX feature"),
    _c("ept", note="VMX feature"),
    _c("vpid", note="VMX feature"),
    _c("ept_ad", note="VMX feature"),
    _c("vmmcall", note=_LINUX),
    _c("dtherm", note="thermal/power management"),
    _c("ida", note="thermal/power management"),
    _c("arat", note="thermal/power management"),
    _c("pln", note="thermal/power management"),
    _c("pts", note="thermal/power management"),
    _c("hwp", note="thermal/power management"),
    _c("hwp_notify", note="thermal/power management"),
    _c("hwp_act_window", note="thermal/power management"),
    _c("hwp_epp", note="thermal/power management"),
    _c("hwp_pkg_req", note="thermal/power management"),
)

#: Names NFD leaves out of its *labels* by default (docs/usage/features.md; source/cpu/cpu.go
#: AttributeBlacklist). They are still present in the NodeFeature object's ``cpu.cpuid`` flags.
NFD_DEFAULT_LABEL_DENYLIST: frozenset[str] = frozenset(
    {
        "AVX10", "BMI1", "BMI2", "CLMUL", "CMOV", "CX16", "ERMS", "F16C", "HTT", "LZCNT", "MMX",
        "MMXEXT", "NX", "POPCNT", "RDRAND", "RDSEED", "RDTSCP", "SGX", "SGXLC", "SSE", "SSE2",
        "SSE3", "SSE4", "SSE42", "SSSE3", "TDX_GUEST",
    }
)

#: x86-64 psABI micro-architecture levels, cumulative, in /proc/cpuinfo spelling (the x86-64-ABI level table
#: and archspec's microarchitectures.json; the psABI names map as CMPXCHG16B->cx16, LAHF-SAHF->lahf_lm,
#: SSE3->pni, LZCNT->abm, OSFXSR->fxsr, SCE->syscall). psABI's OSXSAVE is written ``xsave`` as archspec
#: does, because /proc/cpuinfo never shows osxsave (and a kernel that lists avx has enabled XSAVE).
#: klauspost/cpuid's X64Level() uses the same sets (with OSXSAVE); NFD publishes them as
#: cpu-cpuid.X86_64_V1..V4.
X86_64_LEVELS: dict[str, tuple[str, ...]] = {
    "x86-64-v1": ("cmov", "cx8", "fpu", "fxsr", "mmx", "syscall", "sse", "sse2"),
    "x86-64-v2": ("cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"),
    "x86-64-v3": ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"),
    "x86-64-v4": ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}
