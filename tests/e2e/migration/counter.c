/*
 * counter — the workload of the migration proof (tests/e2e/test_migration_runtime.py).
 *
 * Masks its own saved AT_HWCAP with PR_SET_MM_MAP (the prctl hwcap-exec uses; proc_stat.h reads the layout the
 * same way), picks a random token once, then forever: count += 1, read AT_HWCAP back from /proc/self/auxv and
 * append "<token> <count> <hwcap hex>" to the log named by argv[2] (opened and closed each time: CRIU cannot
 * dump an fd on a file outside the container, and an fd kept open on a file inside it would pin its size).
 * Token and count live only in memory: after a restore the same token with the next count proves a restore,
 * not a restart. Usage: counter MASK_HEX LOG
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "proc_stat.h"

#define AT_HWCAP_TYPE 16
#define MM_MAP 14

static ssize_t read_auxv(uint64_t *v, size_t cap)
{
	int fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, v, cap);
	close(fd);
	return n;
}

static uint64_t hwcap_now(void)
{
	uint64_t v[128] = {0};
	ssize_t n = read_auxv(v, sizeof v);
	for (ssize_t i = 0; i + 1 < n / 8; i += 2)
		if (v[i] == AT_HWCAP_TYPE)
			return v[i + 1];
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: counter MASK_HEX LOG\n");
		return 64;
	}
	uint64_t mask = strtoull(argv[1], NULL, 16);
	static uint64_t v[128];
	ssize_t n = read_auxv(v, sizeof v);
	if (n <= 0) {
		perror("counter: /proc/self/auxv");
		return 71;
	}
	for (ssize_t i = 0; i + 1 < n / 8; i += 2)
		if (v[i] == AT_HWCAP_TYPE)
			v[i + 1] &= mask;
	struct proc_mm_map m = {0};
	if (proc_stat_read_layout(&m) != 0) {
		fprintf(stderr, "counter: cannot read /proc/self/stat\n");
		return 71;
	}
	m.auxv = (uint64_t)(uintptr_t)v;
	m.auxv_size = (uint32_t)n;
	m.exe_fd = (uint32_t)-1;
	if (prctl(PR_SET_MM, MM_MAP, (unsigned long)&m, sizeof m, 0) != 0) {
		perror("counter: PR_SET_MM_MAP");
		return 71;
	}
	uint64_t token = 0;
	if (getrandom(&token, sizeof token, 0) != sizeof token) {
		perror("counter: getrandom");
		return 71;
	}
	for (unsigned long count = 1;; count++) {
		FILE *log = fopen(argv[2], "a");
		if (log) {
			fprintf(log, "%016llx %lu %llx\n", (unsigned long long)token, count, (unsigned long long)hwcap_now());
			fclose(log);
		}
		struct timespec ts = {0, 200 * 1000 * 1000};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}
