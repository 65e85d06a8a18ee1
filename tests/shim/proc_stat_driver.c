/*
 * Test driver for src/shim/proc_stat.h: parse the stat text in the file named by argv[1] and print
 * "ok start_code end_code start_stack start_data end_data start_brk arg_start arg_end env_start env_end"
 * (decimal) or "err". With no argument, read this process's own layout (/proc/self/stat and brk).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include "proc_stat.h"

int main(int argc, char **argv)
{
	static char text[8192];
	struct proc_mm_map m;
	int rc;
	memset(&m, 0, sizeof m);
	if (argc > 1) {
		FILE *f = fopen(argv[1], "r");
		if (!f)
			return 2;
		size_t n = fread(text, 1, sizeof text - 1, f);
		fclose(f);
		text[n] = 0;
		rc = proc_stat_parse_layout(text, &m);
	} else {
		rc = proc_stat_read_layout(&m);
	}
	if (rc != 0) {
		puts("err");
		return 0;
	}
	printf("ok %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu\n", (unsigned long long)m.start_code,
	       (unsigned long long)m.end_code, (unsigned long long)m.start_stack, (unsigned long long)m.start_data,
	       (unsigned long long)m.end_data, (unsigned long long)m.start_brk, (unsigned long long)m.arg_start,
	       (unsigned long long)m.arg_end, (unsigned long long)m.env_start, (unsigned long long)m.env_end,
	       (unsigned long long)m.brk);
	return 0;
}
