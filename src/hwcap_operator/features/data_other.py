"""ppc64le, s390x and riscv64 HWCAP tables, as data.

Columns everywhere: (word, bit, macro, canonical name, NFD label name or None).

- ppc64le: bits from arch/powerpc/include/uapi/asm/cputable.h (docs/kernel.md#hwcap-bit-tables; the three
  bits once listed as unverified, EFP_DOUBLE 0x00200000, NO_TB 0x00100000, POWER4 0x00080000, are confirmed
  by NFD's source/cpu/cpuid_linux_ppc64le.go copy of the header, docs/kernel.md#unverified). Names are
  glibc's ``_dl_powerpc_cap_flags`` (sysdeps/powerpc/dl-procinfo.c: index = bit, HWCAP2 at 32..63), which
  is also what LD_SHOW_AUXV and GCC's ``__builtin_cpu_supports`` use; ppc /proc/cpuinfo prints no feature
  list. NFD names from flagNames_ppc64le / flag2Names_ppc64le.
- s390x: arch/s390/include/asm/elf.h HWCAP_S390_* bits (NFD source/cpu/cpuid_linux_s390x.go carries the
  same values up to SIE = 1<<22); names are the kernel's /proc/cpuinfo ``features`` strings
  (arch/s390/kernel/processor.c hwcap_str[]; e.g. HPAGE prints "edat", VXRS "vx", VXRS_EXT2 "vxe2").
  Older kernels printed "sie" from a separate internal list, newer ones have it as AT_HWCAP bit 22.
- riscv64: arch/riscv/include/uapi/asm/hwcap.h ``COMPAT_HWCAP_ISA_x = 1 << ('x' - 'A')`` for the
  single-letter extensions I, M, A, F, D, C, V only; multi-letter extensions (zba, zbb, ...) reach
  userspace via riscv_hwprobe, not AT_HWCAP (docs/kernel.md#hwcap-bit-tables). NFD has no riscv cpuid labels.
"""

from __future__ import annotations

Row = tuple[int, int, str, str, str | None]

PPC64LE_ROWS: tuple[Row, ...] = (
    (0, 31, "PPC_FEATURE_32", "ppc32", "PPC32"),
    (0, 30, "PPC_FEATURE_64", "ppc64", "PPC64"),
    (0, 29, "PPC_FEATURE_601_INSTR", "ppc601", "PPC601"),
    (0, 28, "PPC_FEATURE_HAS_ALTIVEC", "altivec", "ALTIVEC"),
    (0, 27, "PPC_FEATURE_HAS_FPU", "fpu", "FPU"),
    (0, 26, "PPC_FEATURE_HAS_MMU", "mmu", "MMU"),
    (0, 25, "PPC_FEATURE_HAS_4xxMAC", "4xxmac", "4xxMAC"),
    (0, 24, "PPC_FEATURE_UNIFIED_CACHE", "ucache", "UCACHE"),
    (0, 23, "PPC_FEATURE_HAS_SPE", "spe", "SPE"),
    (0, 22, "PPC_FEATURE_HAS_EFP_SINGLE", "efpsingle", "EFPFLOAT"),
    (0, 21, "PPC_FEATURE_HAS_EFP_DOUBLE", "efpdouble", "EFPDOUBLE"),
    (0, 20, "PPC_FEATURE_NO_TB", "notb", "NOTB"),
    (0, 19, "PPC_FEATURE_POWER4", "power4", "POWER4"),
    (0, 18, "PPC_FEATURE_POWER5", "power5", "POWER5"),
    (0, 17, "PPC_FEATURE_POWER5_PLUS", "power5+", "POWER5+"),
    (0, 16, "PPC_FEATURE_CELL", "cellbe", "CELLBE"),
    (0, 15, "PPC_FEATURE_BOOKE", "booke", "BOOKE"),
    (0, 14, "PPC_FEATURE_SMT", "smt", "SMT"),
    (0, 13, "PPC_FEATURE_ICACHE_SNOOP", "ic_snoop", "IC_SNOOP"),
    (0, 12, "PPC_FEATURE_ARCH_2_05", "arch_2_05", "ARCH_2_05"),
    (0, 11, "PPC_FEATURE_PA6T", "pa6t", "PA6T"),
    (0, 10, "PPC_FEATURE_HAS_DFP", "dfp", "DFP"),
    (0, 9, "PPC_FEATURE_POWER6_EXT", "power6x", "POWER6X"),
    (0, 8, "PPC_FEATURE_ARCH_2_06", "arch_2_06", "ARCH_2_06"),
    (0, 7, "PPC_FEATURE_HAS_VSX", "vsx", "VSX"),
    (0, 6, "PPC_FEATURE_PSERIES_PERFMON_COMPAT", "archpmu", "ARCHPMU"),
    (0, 1, "PPC_FEATURE_TRUE_LE", "true_le", "TRUE_LE"),
    (0, 0, "PPC_FEATURE_PPC_LE", "ppcle", "PPCLE"),
    (1, 31, "PPC_FEATURE2_ARCH_2_07", "arch_2_07", "ARCH_2_07"),
    (1, 30, "PPC_FEATURE2_HTM", "htm", "HTM"),
    (1, 29, "PPC_FEATURE2_DSCR", "dscr", "DSCR"),
    (1, 28, "PPC_FEATURE2_EBB", "ebb", "EBB"),
    (1, 27, "PPC_FEATURE2_ISEL", "isel", "ISEL"),
    (1, 26, "PPC_FEATURE2_TAR", "tar", "TAR"),
    (1, 25, "PPC_FEATURE2_VEC_CRYPTO", "vcrypto", "VCRYPTO"),
    (1, 24, "PPC_FEATURE2_HTM_NOSC", "htm-nosc", "HTM-NOSC"),
    (1, 23, "PPC_FEATURE2_ARCH_3_00", "arch_3_00", "ARCH_3_00"),
    (1, 22, "PPC_FEATURE2_HAS_IEEE128", "ieee128", "IEEE128"),
    (1, 21, "PPC_FEATURE2_DARN", "darn", "DARN"),
    (1, 20, "PPC_FEATURE2_SCV", "scv", "SCV"),
    (1, 19, "PPC_FEATURE2_HTM_NO_SUSPEND", "htm-no-suspend", "HTM-NO-SUSPEND"),
    (1, 18, "PPC_FEATURE2_ARCH_3_1", "arch_3_1", "ARCH_3_1"),
    (1, 17, "PPC_FEATURE2_MMA", "mma", "MMA"),
)

S390X_ROWS: tuple[Row, ...] = (
    (0, 0, "HWCAP_S390_ESAN3", "esan3", "ESAN3"),
    (0, 1, "HWCAP_S390_ZARCH", "zarch", "ZARCH"),
    (0, 2, "HWCAP_S390_STFLE", "stfle", "STFLE"),
    (0, 3, "HWCAP_S390_MSA", "msa", "MSA"),
    (0, 4, "HWCAP_S390_LDISP", "ldisp", "LDISP"),
    (0, 5, "HWCAP_S390_EIMM", "eimm", "EIMM"),
    (0, 6, "HWCAP_S390_DFP", "dfp", "DFP"),
    (0, 7, "HWCAP_S390_HPAGE", "edat", "EDAT"),
    (0, 8, "HWCAP_S390_ETF3EH", "etf3eh", "ETF3EH"),
    (0, 9, "HWCAP_S390_HIGH_GPRS", "highgprs", "HIGHGPRS"),
    (0, 10, "HWCAP_S390_TE", "te", "TE"),
    (0, 11, "HWCAP_S390_VXRS", "vx", "VX"),
    (0, 12, "HWCAP_S390_VXRS_BCD", "vxd", "VXD"),
    (0, 13, "HWCAP_S390_VXRS_EXT", "vxe", "VXE"),
    (0, 14, "HWCAP_S390_GS", "gs", "GS"),
    (0, 15, "HWCAP_S390_VXRS_EXT2", "vxe2", "VXE2"),
    (0, 16, "HWCAP_S390_VXRS_PDE", "vxp", "VXP"),
    (0, 17, "HWCAP_S390_SORT", "sort", "SORT"),
    (0, 18, "HWCAP_S390_DFLT", "dflt", "DFLT"),
    (0, 19, "HWCAP_S390_VXRS_PDE2", "vxp2", "VXP2"),
    (0, 20, "HWCAP_S390_NNPA", "nnpa", "NNPA"),
    (0, 21, "HWCAP_S390_PCI_MIO", "pcimio", "PCIMIO"),
    (0, 22, "HWCAP_S390_SIE", "sie", "SIE"),
)

RISCV64_ROWS: tuple[Row, ...] = tuple(
    (0, ord(letter) - ord("a"), f"COMPAT_HWCAP_ISA_{letter.upper()}", letter, None) for letter in "imafdcv"
)
