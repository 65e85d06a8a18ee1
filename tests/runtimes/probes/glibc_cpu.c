/* What glibc itself decided about each CPU feature its hwcaps tunable can switch off.
 *
 * CPU_FEATURE_ACTIVE reads glibc's own cpu_features (after GLIBC_TUNABLES was applied), the same data its
 * ifunc resolvers use to pick memcpy/strlen/... variants. The names are glibc's tunable names
 * (sysdeps/x86/cpu-tunables.c, glibc 2.36); the list is written here by hand so that a misspelt name in the
 * operator's catalog cannot make itself look right. Output: one "NAME present active" line per feature.
 */
#include <stdio.h>
#include <sys/platform/x86.h>

#define SHOW(n) printf("%s %d %d\n", #n, CPU_FEATURE_PRESENT(n) ? 1 : 0, CPU_FEATURE_ACTIVE(n) ? 1 : 0)

int main(void) {
    SHOW(AVX); SHOW(CX8); SHOW(FMA); SHOW(HTT); SHOW(IBT); SHOW(RTM); SHOW(AVX2); SHOW(BMI1); SHOW(BMI2);
    SHOW(CMOV); SHOW(ERMS); SHOW(FMA4); SHOW(SSE2); SHOW(LZCNT); SHOW(MOVBE); SHOW(SHSTK); SHOW(SSSE3);
    SHOW(XSAVE); SHOW(POPCNT); SHOW(SSE4_1); SHOW(SSE4_2); SHOW(XSAVEC); SHOW(AVX512F); SHOW(OSXSAVE);
    SHOW(AVX512CD); SHOW(AVX512BW); SHOW(AVX512DQ); SHOW(AVX512ER); SHOW(AVX512PF); SHOW(AVX512VL);
    return 0;
}
