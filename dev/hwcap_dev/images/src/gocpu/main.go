// Command gocpu prints what Go's runtime CPU detection (golang.org/x/sys/cpu) decided in this process.
// Go reads CPUID itself on x86 (not AT_HWCAP), and on arm64 Linux it reads AT_HWCAP from the auxv: the
// sample image runs it under hwcap-exec to show which of the two a mask reaches.
package main

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/cpu"
)

func yes(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func main() {
	fmt.Printf("go %s %s/%s, golang.org/x/sys/cpu says:\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	switch runtime.GOARCH {
	case "amd64":
		fmt.Printf("  AVX2 %s, AVX512F %s, AVX512BW %s, AVX512VL %s, AVX512DQ %s, AES %s\n",
			yes(cpu.X86.HasAVX2), yes(cpu.X86.HasAVX512F), yes(cpu.X86.HasAVX512BW),
			yes(cpu.X86.HasAVX512VL), yes(cpu.X86.HasAVX512DQ), yes(cpu.X86.HasAES))
	case "arm64":
		fmt.Printf("  ASIMD %s, AES %s, SHA2 %s, ATOMICS %s, SVE %s, SVE2 %s\n",
			yes(cpu.ARM64.HasASIMD), yes(cpu.ARM64.HasAES), yes(cpu.ARM64.HasSHA2),
			yes(cpu.ARM64.HasATOMICS), yes(cpu.ARM64.HasSVE), yes(cpu.ARM64.HasSVE2))
	}
}
