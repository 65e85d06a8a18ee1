/*
 * Test driver: hwcap-exec's vector rule (build_masked) on synthetic vectors, without a kernel.
 * The real process can never hold duplicated or missing HWCAP entries at start (exec rebuilds the vector),
 * so those branches are exercised here. Reads whitespace-separated numbers on stdin:
 *   M0 M1 M2 M3  SAVED_SIZE  NSTACK (type value)*  NSAVED (type value)*
 * where Mk is a mask word or "-" (not given). Prints "ok type value ..." or "err <message>".
 */
#define main hwcap_exec_main
#include "hwcap-exec.c"
#undef main

static int next(unsigned long *v)
{
	char tok[64];
	if (scanf("%63s", tok) != 1)
		return -1;
	if (tok[0] == '-' && tok[1] == 0)
		return 1;
	*v = strtoul(tok, NULL, 0);
	return 0;
}

int main(void)
{
	static struct opts o;
	static struct vec in, out;
	static aword stack[MAX_WORDS];
	unsigned long v, n, saved_size;
	char err[320];
	for (int k = 0; k < 4; k++) {
		int r = next(&v);
		if (r < 0)
			return 2;
		o.has[k] = r == 0;
		o.mask[k] = r == 0 ? v : ~0UL;
	}
	if (next(&saved_size) || next(&n) || n > MAX_WORDS / 2 - 1)
		return 2;
	for (unsigned long i = 0; i < 2 * n; i++)
		if (next(&stack[i]))
			return 2;
	stack[2 * n] = stack[2 * n + 1] = 0;
	stack_auxv = stack;
	if (next(&n) || n > MAX_WORDS / 2 - 1)
		return 2;
	for (unsigned long i = 0; i < 2 * n; i++)
		if (next(&in.w[i]))
			return 2;
	in.pairs = n;
	if (build_masked(&in, &out, &o, saved_size, err, sizeof err) != 0) {
		printf("err %s\n", err);
		return 0;
	}
	printf("ok");
	for (size_t i = 0; i < 2 * out.pairs; i++)
		printf(" %lu", out.w[i]);
	printf("\n");
	return 0;
}
