/*
 * hwcap-exec — apply a HWCAP mask to this process's saved auxiliary vector, then exec a program.
 *
 * The init step of hwcap-operator. With the kernel series "exec: inherit HWCAPs from the parent process"
 * (v5), a vector written by prctl(PR_SET_MM, PR_SET_MM_MAP) makes every later exec in this process tree
 * see AT_HWCAPn = (value in the parent's saved vector) & (kernel's value). This binary writes that vector
 * and then execvp()s the entrypoint in the same process: argv, environment, cwd, fds, PID, credentials
 * and signal dispositions are untouched (no fork, no setenv).
 *
 * USAGE
 *   hwcap-exec --hwcap HEX [--hwcap2 HEX] [--hwcap3 HEX] [--hwcap4 HEX]
 *              [--on-failure=fail|warn] [--print[=text|json]] [--] PROGRAM [ARGS...]
 *   hwcap-exec --probe [--print[=text|json]]
 *   hwcap-exec --install DEST
 *   hwcap-exec --version | --help
 *
 *   HEX is a hexadecimal word, "0x" prefix optional (at most 16 digits on 64-bit, 8 on 32-bit).
 *   Options end at "--" or at the first argument that does not start with "-"; everything after that is
 *   PROGRAM and its arguments, passed on verbatim. Each option may be given once.
 *
 * WHAT IS WRITTEN
 *   1. The current saved vector is read with prctl(PR_GET_AUXV) (present since Linux 6.4 as far as we know,
 *      docs/kernel.md#unverified; its return value is the kernel's sizeof(mm->saved_auxv),
 *      docs/kernel.md#pr-get-auxv), else from /proc/self/auxv (size then unknown: the kernel checks).
 *   2. Every AT_HWCAPn entry in it is ANDed with the --hwcapn mask. A word whose option is not given is
 *      left unchanged (the mask for it is "all ones"). Entry order and all other entries are kept.
 *      Each HWCAP type is kept once (where it first stood, with the value of its last entry): under the
 *      patch a duplicate counts toward inherit_hwcap()'s word count and can end its scan early.
 *   3. Every HWCAP word the kernel gave this process (the auxv on its initial stack, i.e. what getauxval()
 *      sees) must be in the vector, because the patched kernel turns a missing word into 0 in children:
 *      a missing one is appended before AT_NULL, with the kernel's value & mask. Words the kernel does not
 *      provide (e.g. AT_HWCAP4 on arm64) are never added, whatever the mask says.
 *   4. The vector, AT_NULL-terminated and zero-padded to the kernel's saved_auxv size when known, is applied
 *      with PR_SET_MM_MAP (no capability needed: exe_fd = -1, the memory-layout fields are this process's
 *      own values from /proc/self/stat and brk(0), read by proc_stat.h; docs/kernel.md#prctl-set-mm-map).
 *      Should they read zeros (an old note claimed so for a non-dumpable process; the kernel lab saw real
 *      values on 6.12.117 and this machine's 6.18, as do_task_stat() lets a process inspect itself:
 *      docs/kernel.md#non-dumpable-layout), PR_SET_DUMPABLE is set to 1 for the call and restored afterwards.
 *      Only if PR_SET_MM_MAP fails and CAP_SYS_RESOURCE is in the effective set, PR_SET_MM_AUXV is tried.
 *      A vector larger than the kernel's saved_auxv is refused. The vector read back afterwards must equal
 *      the one requested.
 *   5. execvp(PROGRAM, ARGS).
 *   On a kernel without the series the prctl succeeds too but no descendant inherits anything: this binary
 *   does not check that (it would cost a re-exec per container); --probe answers it once per node.
 *
 * OPTIONS
 *   --on-failure=fail  (default) if step 1-4 fails: one line on stderr, exit 71, PROGRAM is not run.
 *   --on-failure=warn  if step 1-4 fails: one line on stderr, then run PROGRAM unmasked anyway.
 *   --print, --print=text  write the vector before and after (as read back from the kernel) to stderr:
 *                      a "# before" line, one "AT_NAME 0xVALUE" line per entry (AT_NULL omitted; unknown
 *                      types as AT_0x<type>), then "# after <method>" and the entries again.
 *   --print=json       one JSON object on one stderr line: {"hwcap_exec": version, "mode": "apply"|"probe",
 *                      "ok": bool, "error": str|null, "method": "PR_SET_MM_MAP"|"PR_SET_MM_AUXV"|null,
 *                      "saved_auxv_size": bytes (0 = unknown), "dumpable_fixup": bool,
 *                      "mask": [word0..word3, null where not given], "before": [[type, value], ...],
 *                      "after": [[type, value], ...]}  (numbers are decimal, AT_NULL omitted).
 *   --probe            does this kernel inherit HWCAPs? Like the kernel selftest: clear the most significant
 *                      set bit of the last non-zero HWCAP word, apply, re-exec /proc/self/exe in a verify
 *                      mode (same PID) that compares the value on its own initial auxv. Prints one line on
 *                      stdout: "supported", "unsupported" or "unknown: <why>".
 *   --install DEST     copy this binary (/proc/self/exe) to DEST, mode 0755, via a temporary file in DEST's
 *                      directory and rename(): the webhook's init container runs it to fill the pod's emptyDir
 *                      (no shell or cp needed in the image; an existing DEST is replaced atomically).
 *
 * EXIT CODES
 *   (any)  after a successful exec, PROGRAM's own status — hwcap-exec itself is gone.
 *   0      --help, --version, --install done; --probe: supported.
 *   3      --probe: unsupported (the re-executed child saw the kernel's unmasked value).
 *   4      --probe: unknown (the test mask could not be applied, nothing to clear, re-exec failed, ...).
 *   64     usage error (the message names the bad argument).
 *   70     internal error: the --print output could not be written.
 *   71     the mask could not be applied and --on-failure=fail.
 *   73     --install: DEST could not be written (the message names DEST and the failing step).
 *   126    PROGRAM found but could not be executed (EACCES, ENOEXEC, ...).
 *   127    PROGRAM not found (ENOENT).
 *   Every message is one stderr line starting with "hwcap-exec: ".
 *
 * BUILD
 *   make                                   static musl binary in build/hwcap-exec (Debian musl-tools)
 *   make CC=aarch64-linux-gnu-gcc OUT=build/arm64/hwcap-exec   static glibc cross build (larger)
 *   A 32-bit build (e.g. CC=arm-linux-gnueabihf-gcc) is for 32-bit (compat) containers on a 64-bit kernel:
 *   it reads and writes the packed 32-bit pairs such a task's saved_auxv holds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proc_stat.h"

#ifndef HWCAP_EXEC_VERSION
#define HWCAP_EXEC_VERSION "0.1.0"
#endif

/* include/uapi/linux/prctl.h; spelled out so musl and glibc builds need no kernel headers. */
#define HX_PR_GET_DUMPABLE 3
#define HX_PR_SET_DUMPABLE 4
#define HX_PR_SET_MM 35
#define HX_PR_SET_MM_AUXV 12
#define HX_PR_SET_MM_MAP 14
#define HX_PR_SET_MM_MAP_SIZE 15
#define HX_PR_GET_AUXV 0x41555856UL
#define HX_CAP_SYS_RESOURCE 24
#define HX_CAP_VERSION_3 0x20080522U

enum { AT_NULL_ = 0, AT_HWCAP_ = 16, AT_HWCAP2_ = 26, AT_HWCAP3_ = 29, AT_HWCAP4_ = 30 };
enum { EX_OK_ = 0, EX_UNSUPPORTED = 3, EX_UNKNOWN = 4, EX_USAGE_ = 64, EX_SOFTWARE_ = 70,
       EX_APPLY = 71, EX_CANTCREAT_ = 73, EX_NOEXEC = 126, EX_NOTFOUND = 127 };

typedef unsigned long aword; /* one auxv word: the kernel's saved_auxv element for this ABI */

#define MAX_WORDS 512 /* 4 KiB on 64-bit; kernels use 54..70 words */
struct vec {
	aword w[MAX_WORDS];
	size_t pairs; /* pairs before AT_NULL */
};

static const aword hw_types[4] = { AT_HWCAP_, AT_HWCAP2_, AT_HWCAP3_, AT_HWCAP4_ };
static const aword *stack_auxv; /* what the kernel put on our initial stack (= what getauxval reads) */

enum print_mode { PRINT_NONE, PRINT_TEXT, PRINT_JSON };
struct opts {
	int has[4];
	aword mask[4];
	int warn;
	int on_failure_given;
	enum print_mode print;
	int print_given;
	int probe;
	const char *verify; /* internal: --probe-verify=TYPE:EXPECTED:ORIGINAL */
	const char *install;
	char **program;
};

struct report {
	const char *mode;
	const char *method;
	int ok;
	int dumpable_fixup;
	size_t saved_size;
	char error[320];
	struct vec before, after;
	int have_after;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof line, "hwcap-exec: ");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = strlen(line);
	line[len++] = '\n';
	ssize_t r = write(2, line, len);
	(void)r;
}

static long xprctl(unsigned long op, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)
{
	return syscall(SYS_prctl, op, a2, a3, a4, a5);
}

static const char *at_name(aword type, char *buf, size_t n)
{
	static const struct { unsigned char t; const char *name; } names[] = {
		{ 0, "AT_NULL" }, { 1, "AT_IGNORE" }, { 2, "AT_EXECFD" }, { 3, "AT_PHDR" }, { 4, "AT_PHENT" },
		{ 5, "AT_PHNUM" }, { 6, "AT_PAGESZ" }, { 7, "AT_BASE" }, { 8, "AT_FLAGS" }, { 9, "AT_ENTRY" },
		{ 10, "AT_NOTELF" }, { 11, "AT_UID" }, { 12, "AT_EUID" }, { 13, "AT_GID" }, { 14, "AT_EGID" },
		{ 15, "AT_PLATFORM" }, { 16, "AT_HWCAP" }, { 17, "AT_CLKTCK" }, { 23, "AT_SECURE" },
		{ 24, "AT_BASE_PLATFORM" }, { 25, "AT_RANDOM" }, { 26, "AT_HWCAP2" }, { 27, "AT_RSEQ_FEATURE_SIZE" },
		{ 28, "AT_RSEQ_ALIGN" }, { 29, "AT_HWCAP3" }, { 30, "AT_HWCAP4" }, { 31, "AT_EXECFN" },
		{ 32, "AT_SYSINFO" }, { 33, "AT_SYSINFO_EHDR" }, { 51, "AT_MINSIGSTKSZ" },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (names[i].t == type)
			return names[i].name;
	snprintf(buf, n, "AT_0x%lx", type);
	return buf;
}

static int hw_index(aword type)
{
	for (int i = 0; i < 4; i++)
		if (hw_types[i] == type)
			return i;
	return -1;
}

/* ---- reading auxv ---- */

static void vec_from_words(struct vec *v, const aword *w, size_t nwords)
{
	v->pairs = 0;
	for (size_t i = 0; i + 1 < nwords && w[i] != AT_NULL_ && v->pairs < MAX_WORDS / 2 - 1; i += 2) {
		v->w[2 * v->pairs] = w[i];
		v->w[2 * v->pairs + 1] = w[i + 1];
		v->pairs++;
	}
	v->w[2 * v->pairs] = v->w[2 * v->pairs + 1] = 0;
}

/* The kernel's saved_auxv of this process. *saved_size = sizeof(mm->saved_auxv), or 0 if unknown. */
static int read_saved(struct vec *v, size_t *saved_size, char *err, size_t errn)
{
	static aword buf[MAX_WORDS];
	memset(buf, 0, sizeof buf);
	long r = xprctl(HX_PR_GET_AUXV, (unsigned long)buf, sizeof buf, 0, 0);
	if (r > 0) {
		if ((size_t)r > sizeof buf) {
			snprintf(err, errn, "PR_GET_AUXV: saved_auxv is %ld bytes, more than %zu", r, sizeof buf);
			return -1;
		}
		*saved_size = (size_t)r;
		vec_from_words(v, buf, (size_t)r / sizeof(aword));
		return 0;
	}
	/* Kernels before 6.4 (EINVAL) or a filter denying it: the procfs view of the same array. */
	int fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errn, "cannot read the auxv: PR_GET_AUXV and /proc/self/auxv: %s", strerror(errno));
		return -1;
	}
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, (char *)buf + got, sizeof buf - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errn, "read /proc/self/auxv: %s", strerror(errno));
			close(fd);
			return -1;
		}
		if (n == 0 || (got += (size_t)n) == sizeof buf)
			break;
	}
	close(fd);
	*saved_size = 0;
	vec_from_words(v, buf, got / sizeof(aword));
	return 0;
}

/* Index of the last entry of this type, or -1 (the patched kernel's inherit_hwcap lets the last one win). */
static long vec_find(const struct vec *v, aword type)
{
	long found = -1;
	for (size_t i = 0; i < v->pairs; i++)
		if (v->w[2 * i] == type)
			found = (long)i;
	return found;
}

static int stack_find(aword type, aword *val)
{
	int found = 0;
	for (const aword *p = stack_auxv; p && p[0] != AT_NULL_; p += 2)
		if (p[0] == type) {
			*val = p[1];
			found = 1;
		}
	return found;
}

/* ---- building and applying ---- */

static int build_masked(const struct vec *in, struct vec *out, const struct opts *o, size_t saved_size,
			char *err, size_t errn)
{
	out->pairs = 0;
	for (size_t i = 0; i < in->pairs; i++) {
		aword type = in->w[2 * i], val = in->w[2 * i + 1];
		int k = hw_index(type);
		if (k >= 0) {
			/* One entry per HWCAP type, where it first stood, with the value of its last entry. */
			if (vec_find(out, type) >= 0)
				continue;
			val = in->w[2 * vec_find(in, type) + 1];
			if (o->has[k])
				val &= o->mask[k];
		}
		out->w[2 * out->pairs] = type;
		out->w[2 * out->pairs + 1] = val;
		out->pairs++;
	}
	out->w[2 * out->pairs] = out->w[2 * out->pairs + 1] = 0;
	for (int k = 0; k < 4; k++) {
		aword kval;
		if (vec_find(out, hw_types[k]) >= 0 || !stack_find(hw_types[k], &kval))
			continue;
		if (out->pairs >= MAX_WORDS / 2 - 1) {
			snprintf(err, errn, "auxv has too many entries to add AT_HWCAP%d", k + 1);
			return -1;
		}
		out->w[2 * out->pairs] = hw_types[k];
		out->w[2 * out->pairs + 1] = o->has[k] ? (kval & o->mask[k]) : kval;
		out->pairs++;
		out->w[2 * out->pairs] = out->w[2 * out->pairs + 1] = 0;
	}
	size_t need = (out->pairs + 1) * 2 * sizeof(aword);
	if (saved_size && need > saved_size) {
		snprintf(err, errn, "the masked auxv needs %zu bytes, the kernel's saved_auxv holds %zu", need,
			 saved_size);
		return -1;
	}
	return 0;
}

static int layout_plausible(const struct proc_mm_map *m)
{
	const uint64_t *a = &m->start_code;
	for (int i = 0; i < 11; i++)
		if (a[i] < 4096)
			return 0;
	return m->start_code < m->end_code && m->start_data <= m->end_data && m->start_brk <= m->brk &&
	       m->arg_start <= m->arg_end && m->env_start <= m->env_end;
}

static int has_cap_sys_resource(void)
{
	struct { uint32_t version; int pid; } hdr = { HX_CAP_VERSION_3, 0 };
	struct { uint32_t effective, permitted, inheritable; } data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capget, &hdr, data) != 0)
		return 0;
	return (data[HX_CAP_SYS_RESOURCE / 32].effective >> (HX_CAP_SYS_RESOURCE % 32)) & 1;
}

static int vec_equal(const struct vec *a, const struct vec *b)
{
	return a->pairs == b->pairs && memcmp(a->w, b->w, a->pairs * 2 * sizeof(aword)) == 0;
}

/* Write `want` as the saved auxv. Fills r->method, r->error, r->after; returns 0 on success. */
static int apply(const struct vec *want, struct report *r)
{
	static aword buf[MAX_WORDS];
	size_t need = (want->pairs + 1) * 2 * sizeof(aword);
	size_t len = r->saved_size ? r->saved_size : need;
	memset(buf, 0, sizeof buf);
	memcpy(buf, want->w, want->pairs * 2 * sizeof(aword));

	struct proc_mm_map m;
	memset(&m, 0, sizeof m);
	int map_errno = 0;
	const char *map_why = NULL;
	int was_dumpable = (int)xprctl(HX_PR_GET_DUMPABLE, 0, 0, 0, 0);
	if (proc_stat_read_layout(&m) != 0) {
		map_why = "cannot parse /proc/self/stat";
	} else if (!layout_plausible(&m) && was_dumpable == 0 &&
		   xprctl(HX_PR_SET_DUMPABLE, 1, 0, 0, 0) == 0) {
		/* A guard for kernels not measured: the lab's non-dumpable processes read their own layout
		 * (docs/kernel.md#non-dumpable-layout); only other readers see zeros. Dumpable again, read once more. */
		r->dumpable_fixup = 1;
		if (proc_stat_read_layout(&m) != 0)
			map_why = "cannot parse /proc/self/stat";
	}
	if (!map_why && !layout_plausible(&m))
		map_why = was_dumpable == 0 ? "/proc/self/stat shows no memory layout (non-dumpable process)"
					    : "/proc/self/stat shows an implausible memory layout";
	if (!map_why) {
		m.auxv = (uint64_t)(uintptr_t)buf;
		m.auxv_size = (uint32_t)len;
		m.exe_fd = (uint32_t)-1;
		if (xprctl(HX_PR_SET_MM, HX_PR_SET_MM_MAP, (unsigned long)&m, sizeof m, 0) == 0)
			r->method = "PR_SET_MM_MAP";
		else
			map_errno = errno;
	}
	if (r->dumpable_fixup)
		xprctl(HX_PR_SET_DUMPABLE, (unsigned long)was_dumpable, 0, 0, 0);

	if (!r->method) {
		char why[160];
		if (map_why) {
			snprintf(why, sizeof why, "%s", map_why);
		} else {
			unsigned int ksize = 0;
			if (map_errno == EINVAL &&
			    xprctl(HX_PR_SET_MM, HX_PR_SET_MM_MAP_SIZE, (unsigned long)&ksize, 0, 0) != 0)
				snprintf(why, sizeof why, "%s (kernel without CONFIG_CHECKPOINT_RESTORE?)",
					 strerror(map_errno));
			else if (map_errno == EINVAL && ksize != sizeof m)
				snprintf(why, sizeof why, "%s (kernel's prctl_mm_map is %u bytes, ours %zu)",
					 strerror(map_errno), ksize, sizeof m);
			else
				snprintf(why, sizeof why, "%s", strerror(map_errno));
		}
		if (!has_cap_sys_resource()) {
			snprintf(r->error, sizeof r->error,
				 "PR_SET_MM_MAP: %s; PR_SET_MM_AUXV not tried (needs CAP_SYS_RESOURCE)", why);
			return -1;
		}
		if (xprctl(HX_PR_SET_MM, HX_PR_SET_MM_AUXV, (unsigned long)buf, len, 0) != 0) {
			snprintf(r->error, sizeof r->error, "PR_SET_MM_MAP: %s; PR_SET_MM_AUXV: %s", why,
				 strerror(errno));
			return -1;
		}
		r->method = "PR_SET_MM_AUXV";
	}
	size_t ignored;
	char err[160];
	if (read_saved(&r->after, &ignored, err, sizeof err) != 0) {
		snprintf(r->error, sizeof r->error, "%s succeeded but reading back failed: %s", r->method, err);
		return -1;
	}
	r->have_after = 1;
	if (!vec_equal(&r->after, want)) {
		snprintf(r->error, sizeof r->error, "%s succeeded but the kernel stored a different vector",
			 r->method);
		return -1;
	}
	return 0;
}

/* ---- output ---- */

struct out {
	char b[32768];
	size_t n;
	int overflow;
};

static void out_add(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_add(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->b + o->n, sizeof o->b - o->n, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof o->b - o->n)
		o->overflow = 1;
	else
		o->n += (size_t)n;
}

static void out_vec_text(struct out *o, const struct vec *v)
{
	char nb[32];
	for (size_t i = 0; i < v->pairs; i++)
		out_add(o, "%s 0x%lx\n", at_name(v->w[2 * i], nb, sizeof nb), v->w[2 * i + 1]);
}

static void out_vec_json(struct out *o, const struct vec *v)
{
	out_add(o, "[");
	for (size_t i = 0; i < v->pairs; i++)
		out_add(o, "%s[%lu,%lu]", i ? "," : "", v->w[2 * i], v->w[2 * i + 1]);
	out_add(o, "]");
}

static int print_report(const struct report *r, const struct opts *o)
{
	static struct out out;
	out.n = 0;
	if (o->print == PRINT_TEXT) {
		out_add(&out, "# before\n");
		out_vec_text(&out, &r->before);
		if (r->have_after) {
			out_add(&out, "# after %s\n", r->method ? r->method : "(unchanged)");
			out_vec_text(&out, &r->after);
		} else {
			out_add(&out, "# after (unavailable)\n");
		}
	} else {
		out_add(&out, "{\"hwcap_exec\":\"%s\",\"mode\":\"%s\",\"ok\":%s,\"error\":", HWCAP_EXEC_VERSION,
			r->mode, r->ok ? "true" : "false");
		if (r->ok) {
			out_add(&out, "null");
		} else {
			out_add(&out, "\"");
			for (const char *c = r->error; *c; c++) {
				if (*c == '"' || *c == '\\')
					out_add(&out, "\\%c", *c);
				else if ((unsigned char)*c < 0x20)
					out_add(&out, "\\u%04x", (unsigned)(unsigned char)*c);
				else
					out_add(&out, "%c", *c);
			}
			out_add(&out, "\"");
		}
		if (r->method)
			out_add(&out, ",\"method\":\"%s\"", r->method);
		else
			out_add(&out, ",\"method\":null");
		out_add(&out, ",\"saved_auxv_size\":%zu,\"dumpable_fixup\":%s,\"mask\":[", r->saved_size,
			r->dumpable_fixup ? "true" : "false");
		for (int k = 0; k < 4; k++) {
			if (o->has[k])
				out_add(&out, "%s%lu", k ? "," : "", o->mask[k]);
			else
				out_add(&out, "%snull", k ? "," : "");
		}
		out_add(&out, "],\"before\":");
		out_vec_json(&out, &r->before);
		out_add(&out, ",\"after\":");
		if (r->have_after)
			out_vec_json(&out, &r->after);
		else
			out_add(&out, "null");
		out_add(&out, "}\n");
	}
	if (out.overflow)
		return -1;
	for (size_t done = 0; done < out.n;) {
		ssize_t n = write(2, out.b + done, out.n - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* ---- command line ---- */

static void usage(void)
{
	static const char text[] =
		"usage: hwcap-exec --hwcap HEX [--hwcap2 HEX] [--hwcap3 HEX] [--hwcap4 HEX]\n"
		"                  [--on-failure=fail|warn] [--print[=text|json]] [--] PROGRAM [ARGS...]\n"
		"       hwcap-exec --probe [--print[=text|json]]\n"
		"       hwcap-exec --install DEST\n"
		"       hwcap-exec --version | --help\n"
		"\n"
		"ANDs the AT_HWCAPn words of this process's saved auxv with the masks (a word without a mask\n"
		"is unchanged), writes the vector with prctl(PR_SET_MM, PR_SET_MM_MAP) and execs PROGRAM in\n"
		"the same process. With the kernel series \"exec: inherit HWCAPs from the parent process\"\n"
		"every descendant of PROGRAM then sees the masked HWCAPs.\n"
		"\n"
		"  --on-failure=fail|warn  if the mask cannot be applied: exit 71 (default) or run PROGRAM anyway\n"
		"  --print[=text|json]     the auxv before and after, on stderr\n"
		"  --probe                 print supported|unsupported|unknown: does this kernel inherit HWCAPs?\n"
		"  --install DEST          copy this binary to DEST (mode 0755, atomic rename)\n"
		"\n"
		"exit: PROGRAM's status; 64 usage; 70 internal; 71 mask not applied; 73 install failed;\n"
		"      126 not executable; 127 not found; --probe: 0 supported, 3 unsupported, 4 unknown\n";
	ssize_t r = write(1, text, sizeof text - 1);
	(void)r;
}

static int parse_hex(const char *opt, const char *s, aword *out)
{
	const char *d = s;
	if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X'))
		d += 2;
	size_t nd = strspn(d, "0123456789abcdefABCDEF");
	if (nd == 0 || d[nd] != 0) {
		say("%s: bad value '%s' (want a hexadecimal word such as 0x1f)", opt, s);
		return -1;
	}
	while (nd > 1 && *d == '0')
		d++, nd--;
	if (nd > sizeof(aword) * 2) {
		say("%s: value '%s' does not fit in %zu bits", opt, s, sizeof(aword) * 8);
		return -1;
	}
	*out = (aword)strtoull(d, NULL, 16);
	return 0;
}

/* "--name=value" or "--name value": returns the value or NULL (usage error reported). */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *matched)
{
	size_t nl = strlen(name);
	const char *a = argv[*i];
	*matched = 0;
	if (strncmp(a, name, nl) != 0 || (a[nl] != 0 && a[nl] != '='))
		return NULL;
	*matched = 1;
	if (a[nl] == '=')
		return a + nl + 1;
	if (*i + 1 >= argc) {
		say("option '%s' needs a value", name);
		return NULL;
	}
	return argv[++*i];
}

/* Returns -1 on a usage error, 1 when --help/--version was handled, 0 to go on. */
static int parse_args(int argc, char **argv, struct opts *o)
{
	static const char *const hw_opts[4] = { "--hwcap", "--hwcap2", "--hwcap3", "--hwcap4" };
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int matched = 0;
		const char *v;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == 0)
			break;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage();
			return 1;
		}
		if (strcmp(a, "--version") == 0) {
			ssize_t r = write(1, "hwcap-exec " HWCAP_EXEC_VERSION "\n", sizeof("hwcap-exec " HWCAP_EXEC_VERSION));
			(void)r;
			return 1;
		}
		int k;
		for (k = 0; k < 4; k++) {
			v = opt_value(argc, argv, &i, hw_opts[k], &matched);
			if (!matched)
				continue;
			if (!v)
				return -1;
			if (o->has[k]) {
				say("option '%s' given twice", hw_opts[k]);
				return -1;
			}
			if (parse_hex(hw_opts[k], v, &o->mask[k]) != 0)
				return -1;
			o->has[k] = 1;
			break;
		}
		if (k < 4)
			continue;
		v = opt_value(argc, argv, &i, "--on-failure", &matched);
		if (matched) {
			if (!v)
				return -1;
			if (o->on_failure_given++) {
				say("option '--on-failure' given twice");
				return -1;
			}
			if (strcmp(v, "fail") == 0)
				o->warn = 0;
			else if (strcmp(v, "warn") == 0)
				o->warn = 1;
			else {
				say("--on-failure: bad value '%s' (want fail or warn)", v);
				return -1;
			}
			continue;
		}
		if (strncmp(a, "--print", 7) == 0 && (a[7] == 0 || a[7] == '=')) {
			if (o->print_given++) {
				say("option '--print' given twice");
				return -1;
			}
			if (a[7] == 0 || strcmp(a + 8, "text") == 0)
				o->print = PRINT_TEXT;
			else if (strcmp(a + 8, "json") == 0)
				o->print = PRINT_JSON;
			else {
				say("--print: bad value '%s' (want text or json)", a + 8);
				return -1;
			}
			continue;
		}
		v = opt_value(argc, argv, &i, "--install", &matched);
		if (matched) {
			if (!v)
				return -1;
			if (o->install) {
				say("option '--install' given twice");
				return -1;
			}
			if (!*v) {
				say("--install: empty DEST");
				return -1;
			}
			o->install = v;
			continue;
		}
		if (strcmp(a, "--probe") == 0) {
			o->probe = 1;
			continue;
		}
		if (strncmp(a, "--probe-verify=", 15) == 0) {
			o->verify = a + 15;
			continue;
		}
		say("unknown option '%s' (see --help)", a);
		return -1;
	}
	int any_mask = o->has[0] | o->has[1] | o->has[2] | o->has[3];
	if (o->verify)
		return 0;
	if (o->install || o->probe) {
		const char *mode = o->install ? "--install" : "--probe";
		int conflict = o->install ? any_mask || o->probe || o->print_given || o->on_failure_given
					  : any_mask || o->on_failure_given;
		if (conflict) {
			say("%s takes no other option%s", mode, o->install ? "" : " than --print");
			return -1;
		}
		if (i < argc) {
			say("%s takes no PROGRAM (got '%s')", mode, argv[i]);
			return -1;
		}
		return 0;
	}
	if (!any_mask) {
		say("no mask given (need at least one of --hwcap, --hwcap2, --hwcap3, --hwcap4)");
		return -1;
	}
	if (i >= argc) {
		say("no PROGRAM given (usage: hwcap-exec --hwcap HEX -- PROGRAM [ARGS...])");
		return -1;
	}
	o->program = argv + i;
	return 0;
}

/* ---- modes ---- */

static int verify_mode(const char *spec)
{
	char *end;
	aword type = strtoul(spec, &end, 0), expected, original, seen;
	if (*end != ':')
		goto bad;
	expected = strtoul(end + 1, &end, 0);
	if (*end != ':')
		goto bad;
	original = strtoul(end + 1, &end, 0);
	if (*end != 0)
		goto bad;
	if (!stack_find(type, &seen)) {
		printf("unknown: the re-executed probe has no entry of type %lu\n", type);
		return EX_UNKNOWN;
	}
	if (seen == expected && expected != original) {
		printf("supported\n");
		return EX_OK_;
	}
	if (seen == original) {
		printf("unsupported\n");
		return EX_UNSUPPORTED;
	}
	printf("unknown: the re-executed probe saw 0x%lx (masked 0x%lx, kernel 0x%lx)\n", seen, expected, original);
	return EX_UNKNOWN;
bad:
	say("--probe-verify: bad value '%s' (internal option: TYPE:EXPECTED:ORIGINAL)", spec);
	return EX_USAGE_;
}

static int probe_mode(struct opts *o, struct report *r, char **envp)
{
	char err[200];
	r->mode = "probe";
	if (read_saved(&r->before, &r->saved_size, err, sizeof err) != 0) {
		printf("unknown: %s\n", err);
		return EX_UNKNOWN;
	}
	/* Like tools/testing/selftests/exec/hwcap_inherit.c: the last non-zero HWCAP entry, top set bit. */
	long at = -1;
	for (size_t i = 0; i < r->before.pairs; i++)
		if (hw_index(r->before.w[2 * i]) >= 0 && r->before.w[2 * i + 1] != 0)
			at = (long)i;
	if (at < 0) {
		printf("unknown: no non-zero HWCAP word in this process's auxv\n");
		return EX_UNKNOWN;
	}
	aword type = r->before.w[2 * at], original = r->before.w[2 * at + 1];
	int msb = (int)(sizeof(aword) * 8) - 1;
	while (!((original >> msb) & 1))
		msb--;
	int k = hw_index(type);
	o->has[k] = 1;
	o->mask[k] = ~((aword)1 << msb);
	struct vec want;
	int rc = build_masked(&r->before, &want, o, r->saved_size, r->error, sizeof r->error);
	if (rc == 0)
		rc = apply(&want, r);
	r->ok = rc == 0;
	if (o->print != PRINT_NONE && print_report(r, o) != 0)
		return EX_SOFTWARE_;
	if (rc != 0) {
		printf("unknown: the test mask could not be applied: %s\n", r->error);
		return EX_UNKNOWN;
	}
	char spec[96];
	snprintf(spec, sizeof spec, "--probe-verify=%lu:0x%lx:0x%lx", type, original & o->mask[k], original);
	char *args[] = { (char *)"hwcap-exec", spec, NULL };
	fflush(stdout);
	execve("/proc/self/exe", args, envp);
	printf("unknown: cannot re-execute /proc/self/exe: %s\n", strerror(errno));
	return EX_UNKNOWN;
}

/* Copy /proc/self/exe to dest through a temporary file next to it, then rename(). */
static int install_mode(const char *dest)
{
	static char buf[65536];
	char tmp[4096];
	const char *step = "open /proc/self/exe";
	int in = -1, out = -1, err = 0;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dest, (long)getpid()) >= sizeof tmp) {
		say("--install %s: path too long", dest);
		return EX_CANTCREAT_;
	}
	in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (in < 0)
		goto fail;
	step = "create";
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
	if (out < 0)
		goto fail;
	for (;;) {
		step = "read /proc/self/exe";
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		step = "write";
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto fail;
			done += w;
		}
	}
	step = "chmod";
	if (fchmod(out, 0755) != 0)
		goto fail;
	step = "close";
	int rc = close(out);
	out = -1;
	if (rc != 0)
		goto fail;
	step = "rename";
	if (rename(tmp, dest) != 0)
		goto fail;
	close(in);
	return EX_OK_;
fail:
	err = errno;
	if (out >= 0)
		close(out);
	if (in >= 0)
		close(in);
	if (strcmp(step, "open /proc/self/exe") != 0 && strcmp(step, "create") != 0)
		unlink(tmp);
	say("--install %s: %s: %s", dest, step, strerror(err));
	return EX_CANTCREAT_;
}

int main(int argc, char **argv, char **envp)
{
	static struct opts o;
	static struct report r;
	char **e = envp;
	while (*e)
		e++;
	stack_auxv = (const aword *)(e + 1); /* the auxv follows envp's NULL on the initial stack */
	for (int k = 0; k < 4; k++)
		o.mask[k] = ~(aword)0;

	int pa = parse_args(argc, argv, &o);
	if (pa != 0)
		return pa > 0 ? EX_OK_ : EX_USAGE_;
	if (o.verify)
		return verify_mode(o.verify);
	if (o.install)
		return install_mode(o.install);
	if (o.probe)
		return probe_mode(&o, &r, envp);

	r.mode = "apply";
	struct vec want;
	int rc = read_saved(&r.before, &r.saved_size, r.error, sizeof r.error);
	if (rc == 0)
		rc = build_masked(&r.before, &want, &o, r.saved_size, r.error, sizeof r.error);
	if (rc == 0)
		rc = apply(&want, &r);
	r.ok = rc == 0;
	if (rc != 0 && !r.method && r.before.pairs > 0) {
		r.after = r.before; /* nothing was written: the vector is unchanged */
		r.have_after = 1;
	}
	if (o.print != PRINT_NONE && print_report(&r, &o) != 0) {
		say("cannot write the --print output");
		return EX_SOFTWARE_;
	}
	if (rc != 0) {
		if (!o.warn) {
			say("mask not applied, not running %s: %s", o.program[0], r.error);
			return EX_APPLY;
		}
		say("warning: mask not applied, running %s unmasked: %s", o.program[0], r.error);
	}
	execvp(o.program[0], o.program);
	int err = errno;
	say("cannot execute %s: %s", o.program[0], strerror(err));
	return err == ENOENT ? EX_NOTFOUND : EX_NOEXEC;
}
