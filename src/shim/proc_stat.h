/*
 * proc_stat.h — this process's memory layout from /proc/self/stat, in the struct PR_SET_MM_MAP takes.
 *
 * One reader for the two programs that call PR_SET_MM_MAP: hwcap-exec (src/shim/hwcap-exec.c) and the kernel
 * lab's guest probe (tests/kernel/guest/probe.c), so the layout the lab checks is read exactly the way the
 * init step reads it. Header only (static inline), libc and the brk syscall only: it builds with musl and
 * with static glibc, natively and cross (aarch64, arm, x86_64). Kernel facts: docs/kernel.md#prctl-set-mm-map
 * (what the kernel validates), docs/kernel.md#non-dumpable-layout (a non-dumpable process still reads its own
 * layout).
 */
#ifndef HWCAP_PROC_STAT_H
#define HWCAP_PROC_STAT_H

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * struct prctl_mm_map (include/uapi/linux/prctl.h) as a 64-bit kernel lays it out. The kernel declares
 * `__u64 *auxv` and has no compat conversion for PR_SET_MM_MAP, so a 32-bit build (a compat task on a
 * 64-bit kernel) must still pass an 8-byte pointer field: it is an integer here. Spelled out so that no
 * kernel header is needed (and none collides: glibc's <sys/prctl.h> declares struct prctl_mm_map).
 */
struct proc_mm_map {
	uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv;
	uint32_t auxv_size;
	uint32_t exe_fd;
};

_Static_assert(sizeof(struct proc_mm_map) == 104, "struct prctl_mm_map of 64-bit kernels is 104 bytes");

/* The last /proc/PID/stat field read (env_end); proc(5) numbers fields from 1, the comm is field 2. */
#define PROC_STAT_LAST_FIELD 51

/* One field as an unsigned decimal; anything else (empty, a sign, another character, overflow) reads as 0. */
static inline uint64_t proc_stat_u64(const char *tok, const char *end)
{
	uint64_t v = 0;
	if (tok == end)
		return 0;
	for (; tok < end; tok++) {
		if (*tok < '0' || *tok > '9' || v > (UINT64_MAX - (uint64_t)(*tok - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*tok - '0');
	}
	return v;
}

/*
 * Fill the address fields of `m` from the text of a stat file (fs/proc/array.c do_task_stat()): 26 startcode,
 * 27 endcode, 28 startstack, 45 start_data, 46 end_data, 47 start_brk, 48 arg_start, 49 arg_end, 50 env_start,
 * 51 env_end. The comm may hold spaces and parentheses, so fields are counted from the last ')'. brk, auxv,
 * auxv_size and exe_fd are left alone (the file has no current brk). -1 if the text ends before field 51.
 */
static inline int proc_stat_parse_layout(const char *text, struct proc_mm_map *m)
{
	uint64_t f[PROC_STAT_LAST_FIELD + 1] = { 0 };
	const char *p = strrchr(text, ')');
	int field = 2;
	if (!p)
		return -1;
	for (p++; field < PROC_STAT_LAST_FIELD;) {
		while (*p == ' ' || *p == '\n')
			p++;
		if (!*p)
			break;
		const char *tok = p;
		while (*p && *p != ' ' && *p != '\n')
			p++;
		field++;
		f[field] = proc_stat_u64(tok, p);
	}
	if (field < PROC_STAT_LAST_FIELD)
		return -1;
	m->start_code = f[26];
	m->end_code = f[27];
	m->start_stack = f[28];
	m->start_data = f[45];
	m->end_data = f[46];
	m->start_brk = f[47];
	m->arg_start = f[48];
	m->arg_end = f[49];
	m->env_start = f[50];
	m->env_end = f[51];
	return 0;
}

/* This process's layout for PR_SET_MM_MAP: /proc/self/stat plus brk(0). 0 on success, -1 if unreadable. */
static inline int proc_stat_read_layout(struct proc_mm_map *m)
{
	char buf[2048];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (proc_stat_parse_layout(buf, m) != 0)
		return -1;
	m->brk = (uint64_t)(uintptr_t)syscall(SYS_brk, 0);
	return 0;
}

#endif
