/*
 * Kernel conformance lab guest probe: /init of the lab's initramfs and the program every scenario process runs.
 *
 * Why one binary: the same source is built static for aarch64, AArch32 (armhf) and x86_64, so a scenario can
 * exec "itself" as a native, compat or setuid binary and carry on with the scenario in the new image.
 *
 *   /init (pid 1)                    mount /proc, print the baseline, run every scenario in /lab/index, power off
 *   PROBE observe                    print one observation of this process (used for the compat baseline)
 *   PROBE run SCN STEP NAMES         continue scenario SCN as the process called NAMES (comma list), whose
 *                                    step STEP (a spawn or an exec) just succeeded
 *
 * A scenario (/lab/SCN.steps, written by the lab from hwcap_operator.execmodel.scenarios) is a list of steps,
 * each done by one named process: "OP PROC key=value...". Processes run their own steps in the global order:
 * a shared counter (/run/SCN.seq) holds the index of the next step; a process waits until the step at the
 * counter is its own, does it and advances the counter; when the counter reaches the end, everybody exits.
 * Ops: spawn (by init) fork thread exec hwcap_exec set_auxv set_mm_map setresuid set_dumpable drop_caps observe
 * idregs (aarch64: read the ID registers as a reader following the kernel's rule would, then with MRS anyway).
 *
 * Output, one JSON object per line prefixed with "@lab " on stdout (the serial console):
 *   {"scn","step","op","proc","result"}       every step; result 0 or -errno (lab errors are <= -1000)
 *   observe adds "abi","uid","euid","stack" (AT_HWCAP, AT_HWCAP2 from this image's initial stack auxv, i.e.
 *   what the kernel passed), "getauxval" (glibc's answer), "secure" (AT_SECURE), "auxv" (/proc/self/auxv hex)
 *   idregs adds "stack", "reader" ("mrs" or "hwcap"), "reader_regs" (what that reader read; {} when it backed off)
 *   and "mrs" (ID_AA64ISAR0_EL1, ID_AA64PFR0_EL1 and MIDR_EL1 read with MRS regardless of HWCAP_CPUID)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <linux/capability.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* src/shim/proc_stat.h (the build passes -I src/shim): struct proc_mm_map, the 64-bit kernel's prctl_mm_map with
 * an 8-byte auxv field on every ABI, and the /proc/self/stat reader hwcap-exec uses. */
#include "proc_stat.h"

#ifndef PR_GET_AUXV
#define PR_GET_AUXV 0x41555856
#endif
#define LAB_PR_SET_MM 35
#define LAB_PR_SET_MM_AUXV 12
#define LAB_PR_SET_MM_MAP 14
#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif

#if defined(__aarch64__)
#define PROBE_ABI "native"
#define PROBE_ARCH "arm64"
#elif defined(__arm__)
#define PROBE_ABI "compat"
#define PROBE_ARCH "arm"
#elif defined(__x86_64__)
#define PROBE_ABI "native"
#define PROBE_ARCH "amd64"
#else
#error "unsupported arch"
#endif

#define MAX_STEPS 64
#define MAX_TOK 16
#define MAX_WORDS 256
#define LAB_ERR_BASE 1000

struct step {
	char op[24];
	char proc[32];
	char *kv[MAX_TOK]; /* "key=value" tokens */
	int nkv;
	char line[512];
};

static struct step steps[MAX_STEPS];
static int nsteps;
static const char *scn = "-";
static int seq_fd = -1;
static unsigned long *stack_auxv; /* the initial auxv the kernel put on this image's stack */
static char process_names[256]; /* names of this process (its main loop) */

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(1, buf, n) < 0) /* one write per line: lines of different processes never interleave */
		_exit(99);
}

static void lab_error(const char *what, int err)
{
	out("@lab {\"scn\":\"%s\",\"event\":\"error\",\"what\":\"%s\",\"errno\":%d}", scn, what, err);
}

static const char *kv(const struct step *s, const char *key)
{
	size_t n = strlen(key);

	for (int i = 0; i < s->nkv; i++)
		if (!strncmp(s->kv[i], key, n) && s->kv[i][n] == '=')
			return s->kv[i] + n + 1;
	return NULL;
}

static unsigned long stack_value(unsigned long type)
{
	for (unsigned long *a = stack_auxv; a && a[0]; a += 2)
		if (a[0] == type)
			return a[1];
	return 0;
}

static void observe(int step, const char *proc)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[MAX_WORDS * sizeof(unsigned long)];
	char rawhex[sizeof(raw) * 2 + 1];
	struct proc_mm_map layout;
	ssize_t n = 0, r;
	int fd = open("/proc/self/auxv", O_RDONLY);

	if (fd >= 0) {
		while ((r = read(fd, raw + n, sizeof(raw) - n)) > 0)
			n += r;
		close(fd);
	}
	for (ssize_t i = 0; i < n; i++) {
		rawhex[2 * i] = digits[raw[i] >> 4];
		rawhex[2 * i + 1] = digits[raw[i] & 15];
	}
	rawhex[2 * (n > 0 ? n : 0)] = 0;
	memset(&layout, 0, sizeof(layout));
	proc_stat_read_layout(&layout);
	out("@lab {\"scn\":\"%s\",\"step\":%d,\"op\":\"observe\",\"proc\":\"%s\",\"result\":%d,\"arch\":\"%s\","
	    "\"abi\":\"%s\",\"uid\":%u,\"euid\":%u,\"stack\":[\"%#lx\",\"%#lx\"],"
	    "\"getauxval\":[\"%#lx\",\"%#lx\"],\"secure\":%lu,\"dumpable\":%d,"
	    "\"stat_code\":[\"%#llx\",\"%#llx\"],\"auxv\":\"%s\"}",
	    scn, step, proc, fd < 0 ? -errno : 0, PROBE_ARCH, PROBE_ABI, getuid(), geteuid(),
	    stack_value(AT_HWCAP), stack_value(AT_HWCAP2), getauxval(AT_HWCAP), getauxval(AT_HWCAP2),
	    stack_value(AT_SECURE), prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), (unsigned long long)layout.start_code,
	    (unsigned long long)layout.end_code, rawhex);
}

/* ---------------------------------------------------------------------------------------- scenario file */

static int load(const char *id)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "/lab/%s.steps", id);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	nsteps = 0;
	while (nsteps < MAX_STEPS && fgets(steps[nsteps].line, sizeof(steps[0].line), f)) {
		struct step *s = &steps[nsteps];
		char *tok, *save = NULL;
		int i = 0;

		s->line[strcspn(s->line, "\n")] = 0;
		s->nkv = 0;
		for (tok = strtok_r(s->line, " ", &save); tok; tok = strtok_r(NULL, " ", &save), i++) {
			if (i == 0)
				snprintf(s->op, sizeof(s->op), "%s", tok);
			else if (i == 1)
				snprintf(s->proc, sizeof(s->proc), "%s", tok);
			else if (s->nkv < MAX_TOK)
				s->kv[s->nkv++] = tok;
		}
		if (i >= 2)
			nsteps++;
	}
	fclose(f);
	return 0;
}

static int seq_open(const char *id, int create)
{
	char path[300];

	snprintf(path, sizeof(path), "/run/%s.seq", id);
	seq_fd = open(path, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0666);
	if (seq_fd < 0)
		return -errno;
	/* every process of the scenario, whatever its uid, advances the counter (the umask would drop o+w) */
	if (create && fchmod(seq_fd, 0666))
		return -errno;
	return 0;
}

static int32_t seq_get(void)
{
	int32_t v = -1;

	if (pread(seq_fd, &v, sizeof(v), 0) != sizeof(v))
		return -1;
	return v;
}

static void seq_set(int32_t v)
{
	if (pwrite(seq_fd, &v, sizeof(v), 0) != sizeof(v))
		lab_error("seq write", errno);
}

/* ------------------------------------------------------------------------------------------ the steps */

static void parse_pairs(const char *s, unsigned long (*pairs)[2], int *n, int max)
{
	char *end;

	*n = 0;
	while (s && *s && *n < max) {
		pairs[*n][0] = strtoul(s, &end, 0);
		if (*end != ':')
			return;
		pairs[*n][1] = strtoul(end + 1, &end, 0);
		(*n)++;
		s = *end == ',' ? end + 1 : end;
	}
}

/*
 * The vector of hwcap_operator.execmodel.scenarios.AuxvEdit, built from this process's PR_GET_AUXV:
 * mask=T:V,.. (AND the value of every entry of type T), drop=T,.., prepend=T:V,.., append=T:V,..,
 * keep=T (cut right after the first entry of type T, no AT_NULL), len=used|full|BYTES.
 * Returns the buffer length to pass (the buffer itself is zero padded up to MAX_WORDS).
 */
static long build_vector(const struct step *s, unsigned long *vec, size_t *len)
{
	unsigned long cur[MAX_WORDS], mask[8][2], pre[8][2], app[8][2], drop[8][2];
	int nmask, npre, napp, ndrop = 0, w = 0, cut = -1;
	const char *o, *lenopt = kv(s, "len");
	long full;
	char *end;

	memset(cur, 0, sizeof(cur));
	full = prctl(PR_GET_AUXV, cur, sizeof(cur), 0, 0);
	if (full < 0 || (size_t)full > sizeof(cur))
		return -(LAB_ERR_BASE + 1);
	parse_pairs(kv(s, "mask"), mask, &nmask, 8);
	parse_pairs(kv(s, "prepend"), pre, &npre, 8);
	parse_pairs(kv(s, "append"), app, &napp, 8);
	for (o = kv(s, "drop"); o && *o && ndrop < 8; o = *end == ',' ? end + 1 : end) {
		drop[ndrop++][0] = strtoul(o, &end, 0);
		if (end == o)
			break;
	}
	memset(vec, 0, MAX_WORDS * sizeof(unsigned long));
	for (int i = 0; i < npre; i++) {
		vec[w++] = pre[i][0];
		vec[w++] = pre[i][1];
	}
	for (long i = 0; i + 1 < full / (long)sizeof(unsigned long) && cur[i] != 0; i += 2) {
		int skip = 0;
		unsigned long v = cur[i + 1];

		for (int d = 0; d < ndrop; d++)
			skip |= cur[i] == drop[d][0];
		if (skip)
			continue;
		for (int m = 0; m < nmask; m++)
			if (cur[i] == mask[m][0])
				v &= mask[m][1];
		vec[w++] = cur[i];
		vec[w++] = v;
	}
	for (int i = 0; i < napp; i++) {
		vec[w++] = app[i][0];
		vec[w++] = app[i][1];
	}
	if ((o = kv(s, "keep"))) {
		unsigned long t = strtoul(o, NULL, 0);

		for (int i = 0; i < w && cut < 0; i += 2)
			if (vec[i] == t)
				cut = i + 2;
		if (cut >= 0) {
			memset(vec + cut, 0, (MAX_WORDS - cut) * sizeof(unsigned long));
			w = cut;
		}
	} else if (w == 0 || vec[w - 2] != 0) {
		w += 2; /* AT_NULL */
	}
	if (!lenopt || !strcmp(lenopt, "used"))
		*len = (size_t)w * sizeof(unsigned long);
	else if (!strcmp(lenopt, "full"))
		*len = (size_t)full;
	else
		*len = strtoul(lenopt, NULL, 0);
	return 0;
}

static long set_vector(const struct step *s)
{
	static unsigned long vec[MAX_WORDS];
	size_t len = 0;
	long r = build_vector(s, vec, &len);

	if (r)
		return r;
	if (!strcmp(s->op, "set_auxv")) {
		r = prctl(LAB_PR_SET_MM, LAB_PR_SET_MM_AUXV, (unsigned long)vec, len, 0);
	} else {
		struct proc_mm_map m;

		memset(&m, 0, sizeof(m));
		if (proc_stat_read_layout(&m))
			return -(LAB_ERR_BASE + 2);
		m.auxv = (uint64_t)(uintptr_t)vec;
		m.auxv_size = (uint32_t)len;
		m.exe_fd = (uint32_t)-1;
		r = prctl(LAB_PR_SET_MM, LAB_PR_SET_MM_MAP, (unsigned long)&m, sizeof(m), 0);
	}
	return r < 0 ? -errno : r;
}

static long drop_caps(const char *list)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	char *end;

	if (syscall(SYS_capget, &h, d))
		return -errno;
	for (const char *o = list; o && *o; o = *end == ',' ? end + 1 : end) {
		unsigned long cap = strtoul(o, &end, 0);

		if (end == o || cap >= 64)
			return -(LAB_ERR_BASE + 3);
		d[cap / 32].effective &= ~(1u << (cap % 32));
	}
	if (syscall(SYS_capset, &h, d))
		return -errno;
	return 0;
}

static int has_name(const char *names, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = names; p && *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return 1;
		p = c ? c + 1 : p + len;
	}
	return 0;
}

static void report(int i, long result)
{
	out("@lab {\"scn\":\"%s\",\"step\":%d,\"op\":\"%s\",\"proc\":\"%s\",\"result\":%ld}", scn, i, steps[i].op,
	    steps[i].proc, result);
}

struct exec_req {
	char path[128];
	char stepbuf[16];
	char names[600];
	char masks[4][24];
	char *argv[20];
};

static long do_exec(struct exec_req *req, const char *path, int step, const char *names)
{
	extern char **environ;

	snprintf(req->path, sizeof(req->path), "%s", path);
	snprintf(req->stepbuf, sizeof(req->stepbuf), "%d", step);
	snprintf(req->names, sizeof(req->names), "%s", names);
	req->argv[0] = req->path;
	req->argv[1] = "run";
	req->argv[2] = (char *)scn;
	req->argv[3] = req->stepbuf;
	req->argv[4] = req->names;
	req->argv[5] = NULL;
	execve(req->path, req->argv, environ);
	return -errno;
}

/*
 * hwcap_exec: run the operator's init step /hwcap-exec with the step's mask (mask=W0,W1,..), which applies
 * it and execs PATH in place; --on-failure=warn because the model's hwcap_exec runs PROGRAM either way.
 */
static long do_hwcap_exec(struct exec_req *req, const struct step *s, int step, const char *names)
{
	static const char *opts[4] = {"--hwcap", "--hwcap2", "--hwcap3", "--hwcap4"};
	extern char **environ;
	const char *m = kv(s, "mask");
	char *end;
	int a = 0;

	snprintf(req->path, sizeof(req->path), "%s", kv(s, "path") ? kv(s, "path") : "");
	snprintf(req->stepbuf, sizeof(req->stepbuf), "%d", step);
	snprintf(req->names, sizeof(req->names), "%s", names);
	req->argv[a++] = "/hwcap-exec";
	for (int w = 0; m && *m && w < 4; w++, m = *end == ',' ? end + 1 : end) {
		unsigned long long v = strtoull(m, &end, 0);

		if (end == m)
			return -(LAB_ERR_BASE + 6);
		snprintf(req->masks[w], sizeof(req->masks[w]), "%#llx", v);
		req->argv[a++] = (char *)opts[w];
		req->argv[a++] = req->masks[w];
	}
	req->argv[a++] = "--on-failure=warn";
	req->argv[a++] = "--";
	req->argv[a++] = req->path;
	req->argv[a++] = "run";
	req->argv[a++] = (char *)scn;
	req->argv[a++] = req->stepbuf;
	req->argv[a++] = req->names;
	req->argv[a] = NULL;
	execve("/hwcap-exec", req->argv, environ);
	return -errno;
}

#if defined(__aarch64__)
#define READ_IDREG(enc) ({ unsigned long v_; __asm__ volatile("mrs %0, " enc : "=r"(v_)); v_; })
#define PROBE_HWCAP_CPUID (1UL << 11)

/*
 * docs/kernel.md#hwcap-cpuid: the reader follows the kernel's rule (glibc's init_cpu_features(), Go's
 * internal/cpu): it reads ID registers with MRS only when getauxval(AT_HWCAP) has HWCAP_CPUID and otherwise keeps
 * to the HWCAP words. Then the same registers are read with MRS anyway: the kernel emulates the read whatever the
 * process's HWCAPs say, which is what software ignoring the rule sees. Generic encodings (S3_0_C0_C6_0 =
 * ID_AA64ISAR0_EL1, S3_0_C0_C4_0 = ID_AA64PFR0_EL1, S3_0_C0_C0_0 = MIDR_EL1).
 */
static void idregs(int step, const char *proc)
{
	unsigned long hwcap = getauxval(AT_HWCAP);
	char reader_regs[128] = "{}";
	unsigned long isar0, pfr0, midr;

	if (hwcap & PROBE_HWCAP_CPUID)
		snprintf(reader_regs, sizeof(reader_regs), "{\"id_aa64isar0\":\"%#lx\",\"id_aa64pfr0\":\"%#lx\"}",
			 READ_IDREG("S3_0_C0_C6_0"), READ_IDREG("S3_0_C0_C4_0"));
	isar0 = READ_IDREG("S3_0_C0_C6_0");
	pfr0 = READ_IDREG("S3_0_C0_C4_0");
	midr = READ_IDREG("S3_0_C0_C0_0");
	out("@lab {\"scn\":\"%s\",\"step\":%d,\"op\":\"idregs\",\"proc\":\"%s\",\"result\":0,"
	    "\"stack\":[\"%#lx\",\"%#lx\"],\"reader\":\"%s\",\"reader_regs\":%s,"
	    "\"mrs\":{\"id_aa64isar0\":\"%#lx\",\"id_aa64pfr0\":\"%#lx\",\"midr\":\"%#lx\"}}",
	    scn, step, proc, stack_value(AT_HWCAP), stack_value(AT_HWCAP2),
	    (hwcap & PROBE_HWCAP_CPUID) ? "mrs" : "hwcap", reader_regs, isar0, pfr0, midr);
}
#else
static void idregs(int step, const char *proc)
{
	out("@lab {\"scn\":\"%s\",\"step\":%d,\"op\":\"idregs\",\"proc\":\"%s\",\"result\":%d}", scn, step,
	    proc, -(LAB_ERR_BASE + 7));
}
#endif

static void *loop(void *names);

static void *loop(void *arg)
{
	char *names = arg;
	struct timespec nap = {0, 1000000};

	for (;;) {
		int32_t i = seq_get();
		struct step *s;
		long r = 0;

		if (i < 0 || i >= nsteps)
			exit(0); /* the scenario is over (exit_group: all threads) */
		s = &steps[i];
		if (!has_name(names, s->proc)) {
			nanosleep(&nap, NULL);
			continue;
		}
		if (!strcmp(s->op, "observe")) {
			observe(i, s->proc);
			seq_set(i + 1);
			continue;
		} else if (!strcmp(s->op, "idregs")) {
			idregs(i, s->proc);
			seq_set(i + 1);
			continue;
		} else if (!strcmp(s->op, "fork")) {
			pid_t pid = fork();

			if (pid == 0) {
				snprintf(process_names, sizeof(process_names), "%s", kv(s, "child") ? kv(s, "child") : "");
				names = process_names;
				continue; /* waits for its own steps */
			}
			r = pid < 0 ? -errno : 0;
		} else if (!strcmp(s->op, "thread")) {
			static char tname[64];
			pthread_t t;

			snprintf(tname, sizeof(tname), "%s", kv(s, "child") ? kv(s, "child") : "");
			r = pthread_create(&t, NULL, loop, tname) ? -(LAB_ERR_BASE + 4) : 0;
		} else if (!strcmp(s->op, "exec")) {
			static struct exec_req req;
			char all[600];

			/* the new image is every name of this process: after a thread's exec the old names live on */
			if (names == process_names)
				snprintf(all, sizeof(all), "%s", names);
			else
				snprintf(all, sizeof(all), "%s,%s", names, process_names);
			r = do_exec(&req, kv(s, "path") ? kv(s, "path") : "", i, all);
		} else if (!strcmp(s->op, "hwcap_exec")) {
			static struct exec_req req;

			r = do_hwcap_exec(&req, s, i, names);
		} else if (!strcmp(s->op, "set_auxv") || !strcmp(s->op, "set_mm_map")) {
			r = set_vector(s);
		} else if (!strcmp(s->op, "setresuid")) {
			unsigned id = (unsigned)strtoul(kv(s, "uid") ? kv(s, "uid") : "-1", NULL, 0);

			r = setresuid(id, id, id) ? -errno : 0;
		} else if (!strcmp(s->op, "set_dumpable")) {
			r = prctl(PR_SET_DUMPABLE, strtoul(kv(s, "value") ? kv(s, "value") : "x", NULL, 0), 0, 0, 0);
			r = r < 0 ? -errno : r;
		} else if (!strcmp(s->op, "drop_caps")) {
			r = drop_caps(kv(s, "caps"));
		} else {
			r = -(LAB_ERR_BASE + 5); /* an op this probe does not know */
		}
		report(i, r);
		seq_set(i + 1);
	}
	return NULL;
}

static int run(const char *id, int step, char *names)
{
	int r;

	scn = id;
	if ((r = load(id)) || (r = seq_open(id, 0))) {
		lab_error("load scenario", -r);
		return 3;
	}
	snprintf(process_names, sizeof(process_names), "%s", names);
	report(step, 0); /* the spawn or exec of this step succeeded: we are running */
	seq_set(step + 1);
	loop(process_names);
	return 0;
}

/* ---------------------------------------------------------------------------------------------- init */

static void run_scenario(const char *id)
{
	const struct step *s;
	pid_t pid;
	int st, r;

	scn = id;
	if ((r = load(id)) || (r = seq_open(id, 1))) {
		lab_error("load scenario", -r);
		return;
	}
	s = &steps[0];
	seq_set(0);
	if (nsteps < 1 || strcmp(s->op, "spawn")) {
		lab_error("first step must be spawn", 0);
		return;
	}
	pid = fork();
	if (pid == 0) {
		static struct exec_req req;
		const char *uid = kv(s, "uid");

		if (uid) {
			unsigned id_ = (unsigned)strtoul(uid, NULL, 0);

			if (setgroups(0, NULL) || setresgid(id_, id_, id_) || setresuid(id_, id_, id_)) {
				report(0, -errno);
				_exit(1);
			}
		}
		report(0, do_exec(&req, kv(s, "path") ? kv(s, "path") : "", 0, s->proc));
		seq_set(nsteps);
		_exit(1);
	}
	/*
	 * Reap the whole scenario (orphans are reparented to us before their parent becomes a zombie). A step
	 * that never completes (a process died at its turn) stalls the counter: after 30 s without progress,
	 * report it and kill everything but init.
	 */
	{
		struct timespec nap = {0, 5000000};
		int32_t last = -2;
		int idle = 0;

		for (;;) {
			pid_t w = waitpid(-1, &st, WNOHANG);
			int32_t now;

			if (w < 0 && errno == ECHILD)
				break;
			if (w > 0 && WIFSIGNALED(st))
				out("@lab {\"scn\":\"%s\",\"event\":\"killed\",\"signal\":%d}", id, WTERMSIG(st));
			if (w > 0)
				continue;
			now = seq_get();
			idle = now == last ? idle + 1 : 0;
			last = now;
			if (idle == 6000) {
				lab_error("scenario stalled", (int)now);
				kill(-1, SIGKILL);
			}
			nanosleep(&nap, NULL);
		}
	}
	out("@lab {\"scn\":\"%s\",\"event\":\"end\",\"next\":%d}", id, (int)seq_get());
	close(seq_fd);
}

static void baseline_compat(void)
{
	pid_t pid;
	int st = 0;

	if (access("/probe32", X_OK))
		return;
	pid = fork();
	if (pid == 0) {
		char *argv[] = {"/probe32", "observe", NULL};
		extern char **environ;

		execve(argv[0], argv, environ);
		out("@lab {\"scn\":\"baseline\",\"step\":-1,\"op\":\"exec\",\"proc\":\"compat\",\"result\":%d}", -errno);
		_exit(1);
	}
	waitpid(pid, &st, 0);
}

/* What the node agent asks each node: does this kernel inherit HWCAPs? (hwcap-exec --probe, first line) */
static void probe_inheritance(void)
{
	char buf[256] = "";
	int fds[2], st = 0;
	ssize_t n = 0, r;
	pid_t pid;

	if (access("/hwcap-exec", X_OK) || pipe(fds))
		return;
	pid = fork();
	if (pid == 0) {
		char *argv[] = {"/hwcap-exec", "--probe", NULL};
		extern char **environ;

		dup2(fds[1], 1);
		close(fds[0]);
		execve(argv[0], argv, environ);
		_exit(127);
	}
	close(fds[1]);
	while (n < (ssize_t)sizeof(buf) - 1 && (r = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += r;
	close(fds[0]);
	buf[n] = 0;
	buf[strcspn(buf, "\n\"\\")] = 0;
	waitpid(pid, &st, 0);
	out("@lab {\"scn\":\"baseline\",\"event\":\"probe\",\"exit\":%d,\"output\":\"%s\"}",
	    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), buf);
}

#if defined(__aarch64__)
/*
 * The ID registers as EL0 reads them with MRS (the kernel emulates these reads from its sanitised copies when
 * it advertises HWCAP_CPUID), for the node-levelling proof: an ID-register override on the kernel command line
 * must show here as well as in AT_HWCAP*. Generic encodings, so no assembler support for SVE/SME is needed.
 */
static void print_idregs(void)
{
	if (!(getauxval(AT_HWCAP) & (1UL << 11))) /* HWCAP_CPUID */
		return;
	out("@lab {\"scn\":\"baseline\",\"event\":\"idregs\",\"id_aa64pfr0\":\"%#lx\",\"id_aa64pfr1\":\"%#lx\","
	    "\"id_aa64zfr0\":\"%#lx\",\"id_aa64smfr0\":\"%#lx\",\"id_aa64isar1\":\"%#lx\",\"id_aa64isar2\":\"%#lx\"}",
	    READ_IDREG("S3_0_C0_C4_0"), READ_IDREG("S3_0_C0_C4_1"), READ_IDREG("S3_0_C0_C4_4"),
	    READ_IDREG("S3_0_C0_C4_5"), READ_IDREG("S3_0_C0_C6_1"), READ_IDREG("S3_0_C0_C6_2"));
}
#else
static void print_idregs(void)
{
}
#endif

#if defined(__x86_64__)
#define LAB_ARCH_GET_CPUID 0x1011
#define LAB_ARCH_SET_CPUID 0x1012
static sigjmp_buf cpuid_jmp;

static void cpuid_segv(int sig)
{
	(void)sig;
	siglongjmp(cpuid_jmp, 1);
}

/* Does the CPUID instruction fault (SIGSEGV) in this thread? */
static int cpuid_traps(void)
{
	struct sigaction sa, old;
	volatile int trapped = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cpuid_segv;
	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(cpuid_jmp, 1)) {
		trapped = 1;
	} else {
		unsigned a = 0, b, c, d;

		__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
	}
	sigaction(SIGSEGV, &old, NULL);
	return trapped;
}

/*
 * docs/kernel.md#hwcap-cpuid, x86 side: arch_prctl(ARCH_SET_CPUID, 0) makes CPUID fault in this thread (where the
 * CPU offers CPUID faulting); the child sets it, checks that CPUID traps, then execs itself, which checks again
 * (the kernel's arch_setup_new_exec() is read to turn it off) and prints one "cpuid_fault" line. /init runs it at
 * boot; "PROBE cpuid-fault" runs it anywhere (the lab runs it on the host, whose CPU may offer the feature).
 */
static void cpuid_fault_check(void)
{
	char set[24], before[4];
	pid_t pid = fork();
	int st = 0;

	if (pid == 0) {
		char *argv[] = {"/proc/self/exe", "cpuid-after-exec", set, before, NULL};
		extern char **environ;
		long r = syscall(SYS_arch_prctl, LAB_ARCH_SET_CPUID, 0);

		snprintf(set, sizeof(set), "%ld", r < 0 ? -errno : r);
		snprintf(before, sizeof(before), "%d", r == 0 ? cpuid_traps() : 0);
		execve(argv[0], argv, environ);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		out("@lab {\"scn\":\"baseline\",\"event\":\"cpuid_fault\",\"child_status\":%d}", st);
}

static void cpuid_after_exec(const char *set, const char *before)
{
	out("@lab {\"scn\":\"baseline\",\"event\":\"cpuid_fault\",\"set\":%s,\"trapped_before_exec\":%s,"
	    "\"trapped_after_exec\":%d,\"get_after_exec\":%ld}",
	    set, before, cpuid_traps(), syscall(SYS_arch_prctl, LAB_ARCH_GET_CPUID, 0));
}
#else
static void cpuid_fault_check(void)
{
}
#endif

static void as_init(void)
{
	char ids[128][64];
	int n = 0;
	FILE *f;

	mkdir("/proc", 0555);
	mkdir("/run", 0777);
	if (mount("proc", "/proc", "proc", 0, NULL))
		lab_error("mount /proc", errno);
	out("@lab {\"event\":\"boot\",\"arch\":\"%s\"}", PROBE_ARCH);
	scn = "baseline";
	observe(-1, "init");
	print_idregs();
	cpuid_fault_check();
	baseline_compat();
	probe_inheritance();
	f = fopen("/lab/index", "r");
	if (!f)
		lab_error("open /lab/index", errno);
	while (f && n < 128 && fgets(ids[n], sizeof(ids[n]), f)) {
		ids[n][strcspn(ids[n], "\n")] = 0;
		if (ids[n][0])
			n++;
	}
	if (f)
		fclose(f);
	for (int i = 0; i < n; i++)
		run_scenario(ids[i]);
	out("@lab {\"event\":\"done\"}");
	sync();
#if defined(__x86_64__)
	reboot(RB_AUTOBOOT); /* no ACPI power-off in the tiny kernel: qemu -no-reboot exits on the reset */
#else
	reboot(RB_POWER_OFF); /* PSCI SYSTEM_OFF on -M virt */
#endif
	for (;;)
		pause();
}

int main(int argc, char **argv, char **envp)
{
	char **e = envp;

	while (*e)
		e++;
	stack_auxv = (unsigned long *)(e + 1);
	if (getpid() == 1)
		as_init();
	if (argc == 5 && !strcmp(argv[1], "run"))
		return run(argv[2], atoi(argv[3]), argv[4]);
#if defined(__x86_64__)
	if (argc == 4 && !strcmp(argv[1], "cpuid-after-exec")) {
		cpuid_after_exec(argv[2], argv[3]);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "cpuid-fault")) {
		cpuid_fault_check();
		return 0;
	}
#endif
	if (argc == 2 && !strcmp(argv[1], "observe")) {
		scn = "baseline";
		observe(-1, strcmp(PROBE_ABI, "compat") ? "native" : "compat");
		return 0;
	}
	fprintf(stderr, "usage: %s run SCENARIO STEP NAMES | observe | cpuid-fault (x86_64)\n", argv[0]);
	return 2;
}
