/*
 * posternctl audit: keygen, ls, show, verify, replay, export, search. Each reads recording
 * files straight from the audit directory (--dir, else $POSTERN_AUDIT_DIR, else the default):
 * headers need no key, everything inside needs an auditor's secret key (--key, else
 * $POSTERN_AUDIT_KEY). Signatures are checked against a pinned node key (--node-key, else
 * $POSTERN_AUDIT_NODE_KEY), else the node-NAME.pub posternd keeps in the audit directory.
 */
#include "relay/ctl_audit.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/format.h"
#include "audit/reader.h"
#include "relay/util.h"

#define CTL_AUDIT_DEFAULT_DIR	"/var/lib/postern/audit"
#define CTL_ARGS_MAX		64
#define CTL_PROGRESS_MIN	2		/* recordings before a progress line is worth it */
#define CTL_TEXT_PREVIEW	200		/* bytes of raw data shown per line by show */
#define CTL_CAST_WIDTH		120
#define CTL_CAST_HEIGHT		40
#define CTL_SEARCH_SHOW		160		/* bytes of a matching statement printed */

struct ctl_opts {
	const char *dir, *key_file, *node_key_file, *user, *target, *protocol, *format, *output, *query, *comment;
	double since, until, speed, max_wait;
	bool json, all, has_since, has_until;
	const char *args[CTL_ARGS_MAX];
	int nargs;
	/* loaded */
	struct audit_auditor_key key;
	bool have_key;
	uint8_t node_pk[crypto_sign_PUBLICKEYBYTES];
	bool have_node_pk;
};

/* ---- small helpers ---- */

static const char *
ctl_fmt_us(uint64_t us, char *buf, size_t size)
{
	time_t t = (time_t)(us / 1000000u);
	struct tm tm;

	gmtime_r(&t, &tm);
	tm.tm_year %= 10000;	/* a year of at most four digits: the line stays the same width */
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(us % 1000000u));
	return buf;
}

static const char *
ctl_fmt_bytes(uint64_t n, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
	return buf;
}

static const char *
ctl_fmt_duration(uint64_t us, char *buf, size_t size)
{
	if (us < 1000)
		snprintf(buf, size, "%llu µs", (unsigned long long)us);
	else if (us < 1000000)
		snprintf(buf, size, "%.1f ms", (double)us / 1e3);
	else
		snprintf(buf, size, "%.2f s", (double)us / 1e6);
	return buf;
}

/* TEXT on one line: control characters as \n, \t, \xHH. */
static void
ctl_put_oneline(FILE *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c == '\r')
			fputs("\\r", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
}

static bool
ctl_ci_contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	if (n == 0)
		return true;
	for (const char *p = hay; *p != '\0'; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return false;
}

/* "2024-05-01", "2024-05-01T10:00[:00][Z]", or a duration ago ("2h", "7d", "3600"). */
static int
ctl_time_parse(const char *s, double *out)
{
	static const char *const formats[] = { "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M",
		"%Y-%m-%d %H:%M", "%Y-%m-%d", NULL };
	long secs;

	for (int i = 0; formats[i] != NULL; i++) {
		struct tm tm;
		const char *end;

		memset(&tm, 0, sizeof(tm));
		end = strptime(s, formats[i], &tm);
		if (end != NULL && (*end == '\0' || (end[0] == 'Z' && end[1] == '\0'))) {
			*out = (double)timegm(&tm);
			return 0;
		}
	}
	if (util_duration_parse(s, &secs) == 0) {
		*out = (double)time(NULL) - (double)secs;
		return 0;
	}
	return -1;
}

static bool
ctl_progress_on(size_t total)
{
	return total >= CTL_PROGRESS_MIN && isatty(STDERR_FILENO);
}

static void
ctl_progress(const char *what, size_t done, size_t total)
{
	fprintf(stderr, "\r%s %zu/%zu recordings…", what, done, total);
	if (done == total)
		fprintf(stderr, "\r\033[K");
	fflush(stderr);
}

/* ---- options ---- */

static int
ctl_parse(int argc, char **argv, int from, struct ctl_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->speed = 1;
	o->max_wait = 2;
	o->dir = getenv("POSTERN_AUDIT_DIR");
	o->key_file = getenv("POSTERN_AUDIT_KEY");
	o->node_key_file = getenv("POSTERN_AUDIT_NODE_KEY");
	if (o->dir == NULL || *o->dir == '\0')
		o->dir = CTL_AUDIT_DEFAULT_DIR;
	if (o->key_file != NULL && *o->key_file == '\0')
		o->key_file = NULL;
	if (o->node_key_file != NULL && *o->node_key_file == '\0')
		o->node_key_file = NULL;
	for (int i = from; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **dst = NULL;

		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(a, "--all") == 0) {
			o->all = true;
			continue;
		}
		if (a[0] != '-' || strcmp(a, "-") == 0) {
			if (o->nargs == CTL_ARGS_MAX) {
				fprintf(stderr, "posternctl audit: too many arguments\n");
				return -1;
			}
			o->args[o->nargs++] = a;
			continue;
		}
		if (strcmp(a, "--dir") == 0)
			dst = &o->dir;
		else if (strcmp(a, "--key") == 0)
			dst = &o->key_file;
		else if (strcmp(a, "--node-key") == 0)
			dst = &o->node_key_file;
		else if (strcmp(a, "--user") == 0)
			dst = &o->user;
		else if (strcmp(a, "--target") == 0)
			dst = &o->target;
		else if (strcmp(a, "--protocol") == 0)
			dst = &o->protocol;
		else if (strcmp(a, "--format") == 0)
			dst = &o->format;
		else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
			dst = &o->output;
		else if (strcmp(a, "--query") == 0)
			dst = &o->query;
		else if (strcmp(a, "--comment") == 0)
			dst = &o->comment;
		if (dst == NULL && strcmp(a, "--since") != 0 && strcmp(a, "--until") != 0 && strcmp(a, "--speed") != 0 &&
		    strcmp(a, "--max-wait") != 0) {
			fprintf(stderr, "posternctl audit: unknown option %s\n", a);
			return -1;
		}
		if (v == NULL) {
			fprintf(stderr, "posternctl audit: %s needs a value\n", a);
			return -1;
		}
		i++;
		if (dst != NULL) {
			*dst = v;
		} else if (strcmp(a, "--speed") == 0 || strcmp(a, "--max-wait") == 0) {
			char *end;
			double d = strtod(v, &end);

			if (*end != '\0' || d < 0 || d > 1e6) {
				fprintf(stderr, "posternctl audit: %s takes a number (0 for no waiting)\n", a);
				return -1;
			}
			*(a[2] == 's' ? &o->speed : &o->max_wait) = d;
		} else {
			bool since = strcmp(a, "--since") == 0;

			if (ctl_time_parse(v, since ? &o->since : &o->until) != 0) {
				fprintf(stderr, "posternctl audit: %s takes a time like 2024-05-01, 2024-05-01T10:00:00Z, "
				    "or a duration ago like 2h or 7d\n", a);
				return -1;
			}
			*(since ? &o->has_since : &o->has_until) = true;
		}
	}
	return 0;
}

static int
ctl_load_key(struct ctl_opts *o, bool required)
{
	char err[512];

	if (o->key_file == NULL) {
		if (!required)
			return 0;
		fprintf(stderr, "posternctl audit: this needs an auditor's secret key: --key FILE (or $POSTERN_AUDIT_KEY)\n");
		return CTL_AUDIT_USAGE;
	}
	if (audit_key_read(o->key_file, &o->key, err, sizeof(err)) != 0) {
		fprintf(stderr, "posternctl audit: %s\n", err);
		return CTL_AUDIT_UNREADABLE;
	}
	if (!o->key.has_secret) {
		fprintf(stderr, "posternctl audit: %s is a public key; decrypting needs the secret one (the file without .pub)\n",
		    o->key_file);
		return CTL_AUDIT_USAGE;
	}
	o->have_key = true;
	return 0;
}

static int
ctl_load_node_key(struct ctl_opts *o)
{
	char err[512];

	if (o->node_key_file == NULL)
		return 0;
	if (audit_node_key_read_public(o->node_key_file, o->node_pk, err, sizeof(err)) != 0) {
		fprintf(stderr, "posternctl audit: %s\n", err);
		return CTL_AUDIT_UNREADABLE;
	}
	o->have_node_pk = true;
	return 0;
}

/* The node key to check F against: pinned, else the audit directory's copy; NULL: the file's own. */
static const uint8_t *
ctl_node_key_for(const struct ctl_opts *o, const struct audit_file *f, uint8_t buf[crypto_sign_PUBLICKEYBYTES])
{
	char name[256], path[4096], err[256];

	if (o->have_node_pk)
		return o->node_pk;
	snprintf(path, sizeof(path), "%s/%s", o->dir, audit_node_pub_name(audit_file_str(f, "node"), name, sizeof(name)));
	if (access(path, R_OK) == 0 && audit_node_key_read_public(path, buf, err, sizeof(err)) == 0)
		return buf;
	return NULL;
}

/* ---- finding recordings ---- */

struct ctl_rec {
	char *path;
	json_t *header;		/* NULL when it could not be read */
	uint64_t start_us, size;
	int open_r;		/* audit_file_open's result */
	char err[256];
};

static void
ctl_recs_free(struct ctl_rec *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].path);
		json_decref(list[i].header);
	}
	free(list);
}

static int
ctl_rec_cmp(const void *a, const void *b)
{
	const struct ctl_rec *x = a, *y = b;

	if (x->start_us != y->start_us)
		return x->start_us < y->start_us ? -1 : 1;
	return strcmp(x->path, y->path);
}

static bool
ctl_is_recording(const char *name)
{
	size_t len = strlen(name), sfx = strlen(AUDIT_FILE_SUFFIX);

	return len > sfx && name[0] != '.' && strcmp(name + len - sfx, AUDIT_FILE_SUFFIX) == 0;
}

/* Every recording in the directory, header read, sorted by start. */
static int
ctl_scan(const struct ctl_opts *o, struct ctl_rec **out, size_t *count)
{
	struct ctl_rec *list = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir(o->dir);

	*out = NULL;
	*count = 0;
	if (d == NULL) {
		fprintf(stderr, "posternctl audit: cannot read the audit directory %s: %s (use --dir or $POSTERN_AUDIT_DIR)\n",
		    o->dir, strerror(errno));
		return CTL_AUDIT_UNREADABLE;
	}
	while ((de = readdir(d)) != NULL) {
		struct audit_file f;
		struct ctl_rec *r;

		if (!ctl_is_recording(de->d_name))
			continue;
		if (n == cap) {
			struct ctl_rec *grown = realloc(list, (cap = cap ? cap * 2 : 64) * sizeof(*list));

			if (grown == NULL)
				break;
			list = grown;
		}
		r = &list[n];
		memset(r, 0, sizeof(*r));
		if (asprintf(&r->path, "%s/%s", o->dir, de->d_name) < 0)
			break;
		n++;
		r->open_r = audit_file_open(r->path, &f, r->err, sizeof(r->err));
		if (r->open_r == 0) {
			r->header = json_incref(f.header);
			r->start_us = audit_file_start_us(&f);
			r->size = f.size;
		}
		audit_file_close(&f);
	}
	closedir(d);
	if (n > 0)
		qsort(list, n, sizeof(*list), ctl_rec_cmp);
	*out = list;
	*count = n;
	return 0;
}

static const char *
ctl_hstr(json_t *h, const char *key)
{
	const char *s = json_string_value(json_object_get(h, key));

	return s ? s : "";
}

static bool
ctl_match(const struct ctl_opts *o, const struct ctl_rec *r)
{
	double start = (double)r->start_us / 1e6;

	if (r->header == NULL)
		return o->user == NULL && o->target == NULL && o->protocol == NULL && !o->has_since && !o->has_until;
	if (o->user != NULL && fnmatch(o->user, ctl_hstr(r->header, "user"), 0) != 0)
		return false;
	if (o->target != NULL && fnmatch(o->target, ctl_hstr(r->header, "target"), 0) != 0)
		return false;
	if (o->protocol != NULL && strcmp(o->protocol, ctl_hstr(r->header, "protocol")) != 0)
		return false;
	if (o->has_since && start < o->since)
		return false;
	if (o->has_until && start >= o->until)
		return false;
	return true;
}

/* ID is a path, a file name in the directory, or a session id (or a unique prefix of one). */
static int
ctl_resolve(const struct ctl_opts *o, const char *id, char **path)
{
	struct dirent *de;
	size_t idlen = strlen(id), found = 0;
	DIR *d;

	*path = NULL;
	if (strchr(id, '/') != NULL) {
		*path = strdup(id);
		return 0;
	}
	if (ctl_is_recording(id)) {
		if (asprintf(path, "%s/%s", o->dir, id) < 0)
			*path = NULL;
		return 0;
	}
	if (idlen < 4 || idlen > 16 || strspn(id, "0123456789abcdef") != idlen) {
		fprintf(stderr, "posternctl audit: \"%s\" is not a session id (16 hex digits, or at least the first 4), "
		    "a recording file, or a path\n", id);
		return CTL_AUDIT_USAGE;
	}
	if ((d = opendir(o->dir)) == NULL) {
		fprintf(stderr, "posternctl audit: cannot read the audit directory %s: %s (use --dir or $POSTERN_AUDIT_DIR)\n",
		    o->dir, strerror(errno));
		return CTL_AUDIT_UNREADABLE;
	}
	while ((de = readdir(d)) != NULL) {
		const char *dash = strchr(de->d_name, '-');

		if (!ctl_is_recording(de->d_name) || dash == NULL || strncmp(dash + 1, id, idlen) != 0)
			continue;
		if (found++ == 0 && asprintf(path, "%s/%s", o->dir, de->d_name) < 0)
			*path = NULL;
	}
	closedir(d);
	if (found == 1 && *path != NULL)
		return 0;
	free(*path);
	*path = NULL;
	if (found == 0)
		fprintf(stderr, "posternctl audit: no recording of session %s in %s (posternctl audit ls lists them)\n", id, o->dir);
	else
		fprintf(stderr, "posternctl audit: %zu recordings match %s; give more of the session id\n", found, id);
	return CTL_AUDIT_UNREADABLE;
}

/* ---- events as JSON and as text ---- */

static const char *
ctl_event_name(uint8_t type)
{
	switch (type) {
	case AUDIT_EV_START: return "start";
	case AUDIT_EV_ACCESS: return "access";
	case AUDIT_EV_STATEMENT: return "statement";
	case AUDIT_EV_OUTCOME: return "outcome";
	case AUDIT_EV_BYTES: return "bytes";
	case AUDIT_EV_UP: return "data_up";
	case AUDIT_EV_DOWN: return "data_down";
	case AUDIT_EV_OUTPUT: return "output";
	case AUDIT_EV_INPUT: return "input";
	case AUDIT_EV_WINDOW: return "window";
	case AUDIT_EV_ERROR: return "error";
	case AUDIT_EV_END: return "end";
	default: return "unknown";
	}
}

static bool
ctl_event_is_raw(uint8_t type)
{
	return type == AUDIT_EV_UP || type == AUDIT_EV_DOWN || type == AUDIT_EV_OUTPUT || type == AUDIT_EV_INPUT;
}

/* The event as one JSON object: type, ts, ts_us, then its own fields (raw data as base64). */
static json_t *
ctl_event_json(const struct audit_event *ev)
{
	char ts[64];
	json_t *o = json_pack("{s:s, s:s, s:I}", "type", ctl_event_name(ev->type), "ts", ctl_fmt_us(ev->ts_us, ts, sizeof(ts)),
	    "ts_us", (json_int_t)ev->ts_us);

	if (o == NULL)
		return NULL;
	if (ctl_event_is_raw(ev->type)) {
		size_t cap = 4 * ((ev->len + 2) / 3) + 1;
		char *b64 = malloc(cap);

		json_object_set_new(o, "len", json_integer((json_int_t)ev->len));
		if (b64 != NULL && util_b64_encode(ev->data, ev->len, b64, cap) == 0)
			json_object_set_new(o, "data_b64", json_string(b64));
		free(b64);
	} else {
		json_t *body = json_loadb((const char *)ev->data, ev->len, JSON_ALLOW_NUL, NULL);

		if (json_is_object(body))
			json_object_update(o, body);
		else
			json_object_set_new(o, "malformed", json_true());
		json_decref(body);
	}
	return o;
}

static const char *
ctl_jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static json_int_t
ctl_jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* One human line for EV (already as JSON in O), without the time. */
static void
ctl_event_line(FILE *out, const struct audit_event *ev, json_t *o)
{
	char a[40], b[40], c[40];

	switch (ev->type) {
	case AUDIT_EV_START:
		fprintf(out, "start      user=%s target=%s protocol=%s login=%s", ctl_jstr(o, "user"), ctl_jstr(o, "target"),
		    ctl_jstr(o, "protocol"), ctl_jstr(o, "login"));
		if (json_object_get(o, "database"))
			fprintf(out, " database=%s", ctl_jstr(o, "database"));
		fprintf(out, " client=%s node=%s tls=%s", ctl_jstr(o, "client"), ctl_jstr(o, "node"),
		    json_is_true(json_object_get(o, "tls")) ? "yes" : "no");
		if (json_object_get(o, "application_name"))
			fprintf(out, " application_name=%s", ctl_jstr(o, "application_name"));
		break;
	case AUDIT_EV_ACCESS:
		fprintf(out, "access     %s: certificate serial %lld%s%s, role %s, on_connect %s, login %s", ctl_jstr(o, "decision"),
		    (long long)ctl_jint(o, "serial"), json_object_get(o, "not_after") ? " valid until " : "",
		    ctl_jstr(o, "not_after"), ctl_jstr(o, "role"), ctl_jstr(o, "on_connect"), ctl_jstr(o, "login"));
		break;
	case AUDIT_EV_STATEMENT:
		fprintf(out, "statement  #%lld %s %s", (long long)ctl_jint(o, "seq"), ctl_jstr(o, "kind"), ctl_jstr(o, "decision"));
		if (json_object_get(o, "reason"))
			fprintf(out, " (%s)", ctl_jstr(o, "reason"));
		fputs(": ", out);
		{
			json_t *t = json_object_get(o, "text");

			ctl_put_oneline(out, json_string_value(t) ? json_string_value(t) : "", json_string_length(t));
		}
		if (json_is_true(json_object_get(o, "truncated")))
			fprintf(out, " … (%lld bytes in all)", (long long)ctl_jint(o, "len"));
		if (json_is_true(json_object_get(o, "redacted")))
			fputs("  [secrets redacted]", out);
		break;
	case AUDIT_EV_OUTCOME:
		fprintf(out, "outcome    #%lld ", (long long)ctl_jint(o, "seq"));
		if (strcmp(ctl_jstr(o, "kind"), "execute") == 0)
			fputs("execute: ", out);
		if (json_object_get(o, "sqlstate"))
			fprintf(out, "ERROR %s", ctl_jstr(o, "sqlstate"));
		else
			fputs(ctl_jstr(o, "tag")[0] ? ctl_jstr(o, "tag") : strcmp(ctl_jstr(o, "kind"), "parse") == 0 ? "parsed" : "done",
			    out);
		if (json_object_get(o, "rows"))
			fprintf(out, ", %lld row%s", (long long)ctl_jint(o, "rows"), ctl_jint(o, "rows") == 1 ? "" : "s");
		if (json_object_get(o, "duration_us"))
			fprintf(out, ", %s", ctl_fmt_duration((uint64_t)ctl_jint(o, "duration_us"), a, sizeof(a)));
		break;
	case AUDIT_EV_BYTES:
		fprintf(out, "bytes      up %s, down %s", ctl_fmt_bytes((uint64_t)ctl_jint(o, "up"), a, sizeof(a)),
		    ctl_fmt_bytes((uint64_t)ctl_jint(o, "down"), b, sizeof(b)));
		break;
	case AUDIT_EV_WINDOW:
		fprintf(out, "window     %lldx%lld", (long long)ctl_jint(o, "cols"), (long long)ctl_jint(o, "rows"));
		break;
	case AUDIT_EV_ERROR:
		fprintf(out, "error      %s", ctl_jstr(o, "error"));
		break;
	case AUDIT_EV_END:
		fprintf(out, "end        %s (%s); %lld statements, %lld denied; up %s, down %s; %s", ctl_jstr(o, "reason"),
		    ctl_jstr(o, "cause"), (long long)ctl_jint(o, "statements"), (long long)ctl_jint(o, "denied"),
		    ctl_fmt_bytes((uint64_t)ctl_jint(o, "bytes_up"), a, sizeof(a)),
		    ctl_fmt_bytes((uint64_t)ctl_jint(o, "bytes_down"), b, sizeof(b)),
		    ctl_fmt_duration((uint64_t)ctl_jint(o, "duration_us"), c, sizeof(c)));
		break;
	default:
		if (ctl_event_is_raw(ev->type)) {
			fprintf(out, "%-10s %zu bytes: ", ctl_event_name(ev->type), ev->len);
			ctl_put_oneline(out, (const char *)ev->data, ev->len < CTL_TEXT_PREVIEW ? ev->len : CTL_TEXT_PREVIEW);
			if (ev->len > CTL_TEXT_PREVIEW)
				fputs("…", out);
		} else {
			fprintf(out, "event '%c'  %zu bytes", ev->type >= 0x20 && ev->type < 0x7f ? ev->type : '?', ev->len);
		}
		break;
	}
}

/* ---- checking one recording ---- */

/* Open and check PATH, calling FN per event when a key is loaded. The exit code for it. */
static int
ctl_check(const struct ctl_opts *o, const char *path, audit_event_fn fn, void *arg, struct audit_check *chk,
    struct audit_file *keep, char *err, size_t errlen)
{
	struct audit_file f;
	uint8_t buf[crypto_sign_PUBLICKEYBYTES];
	int r;

	memset(chk, 0, sizeof(*chk));
	r = audit_file_open(path, &f, err, errlen);
	if (r == -2) {
		chk->verdict = AUDIT_VERDICT_TAMPERED;
		snprintf(chk->what, sizeof(chk->what), "%s", err);
		audit_file_close(&f);
		return CTL_AUDIT_TAMPERED;
	}
	if (r != 0) {
		audit_file_close(&f);
		return CTL_AUDIT_UNREADABLE;
	}
	if (audit_file_check(&f, ctl_node_key_for(o, &f, buf), o->have_key ? &o->key : NULL, fn, arg, chk, err, errlen) != 0) {
		audit_file_close(&f);
		return CTL_AUDIT_UNREADABLE;
	}
	if (keep != NULL)
		*keep = f;
	else
		audit_file_close(&f);
	return chk->verdict == AUDIT_VERDICT_INTACT ? CTL_AUDIT_OK :
	    chk->verdict == AUDIT_VERDICT_INCOMPLETE ? CTL_AUDIT_INCOMPLETE : CTL_AUDIT_TAMPERED;
}

/* The worse of two exit codes: tampered, unreadable, incomplete, intact. */
static int
ctl_worse(int a, int b)
{
	static const int rank[] = { [CTL_AUDIT_OK] = 0, [CTL_AUDIT_INCOMPLETE] = 1, [CTL_AUDIT_UNREADABLE] = 2,
		[CTL_AUDIT_TAMPERED] = 3, [CTL_AUDIT_USAGE] = 4 };

	return rank[a] >= rank[b] ? a : b;
}

static const char *
ctl_id_of(const char *path, char *buf, size_t size)
{
	const char *base = strrchr(path, '/'), *dash;

	base = base ? base + 1 : path;
	dash = strchr(base, '-');
	snprintf(buf, size, "%.*s", (int)strcspn(dash ? dash + 1 : base, "."), dash ? dash + 1 : base);
	return buf;
}

/* ---- keygen ---- */

static int
ctl_keygen(struct ctl_opts *o)
{
	struct audit_auditor_key k;
	char err[512];

	if (o->nargs != 1) {
		fprintf(stderr, "posternctl audit keygen takes one file name: the secret key goes there, the public one to FILE.pub\n");
		return CTL_AUDIT_USAGE;
	}
	if (audit_key_generate(o->args[0], o->comment, &k, err, sizeof(err)) != 0) {
		fprintf(stderr, "posternctl audit: %s\n", err);
		return CTL_AUDIT_UNREADABLE;
	}
	sodium_memzero(&k.sk, sizeof(k.sk));
	printf("auditor key %s\n  secret: %s (0600: keep it with the auditor, never on the relay)\n"
	    "  public: %s.pub (add it to auditor_keys in posternd.lua, then posternctl reload)\n", k.id, o->args[0],
	    o->args[0]);
	return CTL_AUDIT_OK;
}

/* ---- ls ---- */

static json_t *
ctl_header_public(const struct ctl_rec *r)
{
	json_t *h = json_deep_copy(r->header);

	json_object_del(h, "auditors");
	json_object_del(h, "stream_header");
	json_object_set_new(h, "file", json_string(r->path));
	json_object_set_new(h, "size", json_integer((json_int_t)r->size));
	return h;
}

static int
ctl_ls(struct ctl_opts *o)
{
	struct ctl_rec *list;
	size_t n, shown = 0;
	json_t *arr = NULL;
	int r;

	if (o->nargs != 0) {
		fprintf(stderr, "posternctl audit ls takes filters only: --user --target --protocol --since --until --json\n");
		return CTL_AUDIT_USAGE;
	}
	if ((r = ctl_scan(o, &list, &n)) != 0)
		return r;
	if (o->json)
		arr = json_array();
	else
		printf("%-16s  %-20s  %-12s  %-12s  %-8s  %-21s  %-10s  %9s\n", "SESSION", "START", "USER", "TARGET",
		    "PROTOCOL", "CLIENT", "NODE", "SIZE");
	for (size_t i = 0; i < n; i++) {
		struct ctl_rec *rec = &list[i];
		char start[32], size[32], id[32];

		if (!ctl_match(o, rec))
			continue;
		shown++;
		if (rec->header == NULL) {
			if (o->json)
				json_array_append_new(arr, json_pack("{s:s, s:s}", "file", rec->path, "error", rec->err));
			else
				printf("%-16s  unreadable: %s\n", ctl_id_of(rec->path, id, sizeof(id)), rec->err);
			continue;
		}
		if (o->json) {
			json_array_append_new(arr, ctl_header_public(rec));
			continue;
		}
		util_time_format((double)rec->start_us / 1e6, start, sizeof(start));
		printf("%-16s  %-20s  %-12s  %-12s  %-8s  %-21s  %-10s  %9s\n", ctl_hstr(rec->header, "session"), start,
		    ctl_hstr(rec->header, "user"), ctl_hstr(rec->header, "target"), ctl_hstr(rec->header, "protocol"),
		    ctl_hstr(rec->header, "client"), ctl_hstr(rec->header, "node"), ctl_fmt_bytes(rec->size, size, sizeof(size)));
	}
	if (o->json) {
		char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		puts(text ? text : "[]");
		free(text);
		json_decref(arr);
	} else if (shown == 0) {
		printf("(no recordings%s in %s)\n", n ? " match" : "", o->dir);
	}
	ctl_recs_free(list, n);
	return CTL_AUDIT_OK;
}

/* ---- verify ---- */

static void
ctl_verify_print(const struct ctl_opts *o, const char *path, int code, const struct audit_check *c, const char *err)
{
	char id[32], ts[40];

	ctl_id_of(path, id, sizeof(id));
	if (o->json) {
		json_t *j = json_pack("{s:s, s:s}", "session", id, "file", path);
		char *text;

		if (code == CTL_AUDIT_UNREADABLE) {
			json_object_set_new(j, "verdict", json_string("unreadable"));
			json_object_set_new(j, "error", json_string(err));
		} else {
			json_object_set_new(j, "verdict", json_string(audit_verdict_name(c->verdict)));
			json_object_set_new(j, "detail", json_string(c->what));
			json_object_set_new(j, "trusted_key", json_boolean(c->trusted_key));
			json_object_set_new(j, "decrypted", json_boolean(c->decrypted));
			json_object_set_new(j, "chunks", json_integer((json_int_t)c->chunks));
			json_object_set_new(j, "signatures", json_integer((json_int_t)c->signatures));
			if (c->decrypted)
				json_object_set_new(j, "events", json_integer((json_int_t)c->events));
			if (c->last_ts)
				json_object_set_new(j, "last_event", json_string(ctl_fmt_us(c->last_ts, ts, sizeof(ts))));
			json_object_set_new(j, "writing", json_boolean(c->writing));
		}
		text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(text ? text : "{}");
		free(text);
		json_decref(j);
		return;
	}
	switch (code) {
	case CTL_AUDIT_UNREADABLE:
		printf("%-16s  unreadable  %s\n", id, err);
		return;
	case CTL_AUDIT_TAMPERED:
		printf("%-16s  TAMPERED    %s\n", id, c->what);
		return;
	case CTL_AUDIT_INCOMPLETE:
		printf("%-16s  incomplete  last event at %s; %s\n", id, c->last_ts ? ctl_fmt_us(c->last_ts, ts, sizeof(ts)) : "-",
		    c->what);
		break;
	default:
		printf("%-16s  intact      %llu chunks, %llu signatures%s, ended %s\n", id, (unsigned long long)c->chunks,
		    (unsigned long long)c->signatures, c->decrypted ? ", decrypted" : "", ctl_fmt_us(c->last_ts, ts, sizeof(ts)));
		break;
	}
	if (!c->trusted_key)
		printf("%-16s  (checked against the node key inside the file: pin the relay's key with --node-key)\n", "");
}

static int
ctl_verify(struct ctl_opts *o)
{
	struct ctl_rec *list = NULL;
	size_t n = 0;
	int worst = CTL_AUDIT_OK, r;
	char err[512];

	if ((r = ctl_load_key(o, false)) != 0 || (r = ctl_load_node_key(o)) != 0)
		return r;
	if (o->all == (o->nargs > 0)) {
		fprintf(stderr, "posternctl audit verify takes session ids (or files), or --all\n");
		return CTL_AUDIT_USAGE;
	}
	if (o->all) {
		size_t total = 0, done = 0;

		if ((r = ctl_scan(o, &list, &n)) != 0)
			return r;
		for (size_t i = 0; i < n; i++)
			total += ctl_match(o, &list[i]);
		for (size_t i = 0; i < n; i++) {
			struct audit_check c;

			if (!ctl_match(o, &list[i]))
				continue;
			err[0] = '\0';
			r = ctl_check(o, list[i].path, NULL, NULL, &c, NULL, err, sizeof(err));
			if (ctl_progress_on(total))
				ctl_progress("verifying", ++done, total);
			ctl_verify_print(o, list[i].path, r, &c, err);
			worst = ctl_worse(worst, r);
		}
		if (total == 0 && !o->json)
			printf("(no recordings in %s)\n", o->dir);
		ctl_recs_free(list, n);
		return worst;
	}
	for (int i = 0; i < o->nargs; i++) {
		struct audit_check c;
		char *path;

		if ((r = ctl_resolve(o, o->args[i], &path)) != 0) {
			worst = ctl_worse(worst, r);
			continue;
		}
		err[0] = '\0';
		r = ctl_check(o, path, NULL, NULL, &c, NULL, err, sizeof(err));
		ctl_verify_print(o, path, r, &c, err);
		worst = ctl_worse(worst, r);
		free(path);
	}
	return worst;
}

/* Report how a walk over a recording ended, after its events (stderr when stdout is data). */
static void
ctl_trailer(FILE *out, int code, const struct audit_check *c, const char *err)
{
	char ts[64];

	if (code == CTL_AUDIT_UNREADABLE)
		fprintf(out, "-- cannot read the recording: %s\n", err);
	else if (code == CTL_AUDIT_TAMPERED)
		fprintf(out, "-- TAMPERED: %s\n", c->what);
	else if (code == CTL_AUDIT_INCOMPLETE)
		fprintf(out, "-- incomplete: the last event before the recording stops is at %s (%s)\n",
		    c->last_ts ? ctl_fmt_us(c->last_ts, ts, sizeof(ts)) : "-", c->what);
	else
		fprintf(out, "-- intact: %llu events, every signature and chunk verified%s\n", (unsigned long long)c->events,
		    c->trusted_key ? "" : " (against the node key inside the file: pin it with --node-key)");
}

/* ---- show ---- */

struct ctl_show {
	FILE *out;
	bool json;
};

static void
ctl_show_event(const struct audit_event *ev, void *arg)
{
	struct ctl_show *sh = arg;
	json_t *o = ctl_event_json(ev);
	char ts[64];

	if (o == NULL)
		return;
	if (sh->json) {
		char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

		if (text != NULL)
			fprintf(sh->out, "%s\n", text);
		free(text);
	} else {
		fprintf(sh->out, "%s  ", ctl_fmt_us(ev->ts_us, ts, sizeof(ts)));
		ctl_event_line(sh->out, ev, o);
		fputc('\n', sh->out);
	}
	json_decref(o);
}

/* Resolve the one ID argument and load the key: shared by show, replay and export. */
static int
ctl_one_recording(struct ctl_opts *o, const char *cmd, char **path)
{
	int r;

	if (o->nargs != 1) {
		fprintf(stderr, "posternctl audit %s takes one session id (posternctl audit ls lists them)\n", cmd);
		return CTL_AUDIT_USAGE;
	}
	if ((r = ctl_load_key(o, true)) != 0 || (r = ctl_load_node_key(o)) != 0)
		return r;
	return ctl_resolve(o, o->args[0], path);
}

static int
ctl_show(struct ctl_opts *o)
{
	struct ctl_show sh = { .out = stdout, .json = o->json };
	struct audit_check c;
	char *path = NULL, err[512] = "";
	int r;

	if ((r = ctl_one_recording(o, "show", &path)) != 0)
		return r;
	r = ctl_check(o, path, ctl_show_event, &sh, &c, NULL, err, sizeof(err));
	fflush(stdout);
	ctl_trailer(o->json || r == CTL_AUDIT_UNREADABLE ? stderr : stdout, r, &c, err);
	free(path);
	return r;
}

/* ---- collected events (replay, export) ---- */

struct ctl_ev {
	uint8_t type;
	uint64_t ts_us;
	uint8_t *data;
	size_t len;
};

struct ctl_evlist {
	struct ctl_ev *v;
	size_t n, cap;
	bool oom;
};

static void
ctl_collect(const struct audit_event *ev, void *arg)
{
	struct ctl_evlist *l = arg;

	if (l->oom)
		return;
	if (l->n == l->cap) {
		struct ctl_ev *grown = realloc(l->v, (l->cap = l->cap ? l->cap * 2 : 256) * sizeof(*l->v));

		if (grown == NULL) {
			l->oom = true;
			return;
		}
		l->v = grown;
	}
	if ((l->v[l->n].data = malloc(ev->len ? ev->len : 1)) == NULL) {
		l->oom = true;
		return;
	}
	memcpy(l->v[l->n].data, ev->data, ev->len);
	l->v[l->n].type = ev->type;
	l->v[l->n].ts_us = ev->ts_us;
	l->v[l->n].len = ev->len;
	l->n++;
}

static void
ctl_evlist_free(struct ctl_evlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		sodium_memzero(l->v[i].data, l->v[i].len);
		free(l->v[i].data);
	}
	free(l->v);
}

static int
ctl_load_events(struct ctl_opts *o, const char *cmd, struct ctl_evlist *l, struct audit_file *f, struct audit_check *c)
{
	char *path = NULL, err[512] = "";
	int r;

	memset(l, 0, sizeof(*l));
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if ((r = ctl_one_recording(o, cmd, &path)) != 0)
		return r;
	r = ctl_check(o, path, ctl_collect, l, c, f, err, sizeof(err));
	free(path);
	if (l->oom) {
		fprintf(stderr, "posternctl audit: out of memory reading the recording\n");
		return CTL_AUDIT_UNREADABLE;
	}
	if (r == CTL_AUDIT_UNREADABLE || (r == CTL_AUDIT_TAMPERED && !c->decrypted))
		ctl_trailer(stderr, r, c, err);
	return r;
}

/*
 * The database timeline as text: one line for a statement, an indented one for its outcome.
 * Used by replay and by the asciicast export, so both say the same.
 */
static bool
ctl_timeline_line(const struct ctl_ev *e, char *buf, size_t size)
{
	json_t *o = json_loadb((const char *)e->data, e->len, JSON_ALLOW_NUL, NULL);
	char a[40], b[40];
	FILE *m;
	bool any = true;

	if (o == NULL)
		return false;
	if ((m = fmemopen(buf, size, "w")) == NULL) {
		json_decref(o);
		return false;
	}
	switch (e->type) {
	case AUDIT_EV_START:
		fprintf(m, "-- %s@%s (%s, login %s%s%s) from %s: session %s", ctl_jstr(o, "user"), ctl_jstr(o, "target"),
		    ctl_jstr(o, "protocol"), ctl_jstr(o, "login"), json_object_get(o, "database") ? ", database " : "",
		    ctl_jstr(o, "database"), ctl_jstr(o, "client"), ctl_jstr(o, "session"));
		break;
	case AUDIT_EV_STATEMENT:
		fprintf(m, "#%lld %s", (long long)ctl_jint(o, "seq"), ctl_jstr(o, "kind"));
		if (strcmp(ctl_jstr(o, "decision"), "allow") != 0)
			fprintf(m, " %s (%s)", strcmp(ctl_jstr(o, "decision"), "deny") == 0 ? "DENIED" : "TERMINATED",
			    ctl_jstr(o, "reason"));
		fputs(": ", m);
		ctl_put_oneline(m, ctl_jstr(o, "text"), strlen(ctl_jstr(o, "text")));
		break;
	case AUDIT_EV_OUTCOME:
		fprintf(m, "   -> #%lld ", (long long)ctl_jint(o, "seq"));
		if (strcmp(ctl_jstr(o, "kind"), "execute") == 0)
			fputs("execute: ", m);
		if (json_object_get(o, "sqlstate"))
			fprintf(m, "ERROR %s", ctl_jstr(o, "sqlstate"));
		else
			fputs(ctl_jstr(o, "tag")[0] ? ctl_jstr(o, "tag") : strcmp(ctl_jstr(o, "kind"), "parse") == 0 ? "parsed" : "ok",
			    m);
		if (json_object_get(o, "rows"))
			fprintf(m, " · %lld row%s", (long long)ctl_jint(o, "rows"), ctl_jint(o, "rows") == 1 ? "" : "s");
		if (json_object_get(o, "duration_us"))
			fprintf(m, " · %s", ctl_fmt_duration((uint64_t)ctl_jint(o, "duration_us"), a, sizeof(a)));
		break;
	case AUDIT_EV_ERROR:
		fprintf(m, "-- error: %s", ctl_jstr(o, "error"));
		break;
	case AUDIT_EV_END:
		fprintf(m, "-- session ended: %s (%s) · up %s, down %s", ctl_jstr(o, "reason"), ctl_jstr(o, "cause"),
		    ctl_fmt_bytes((uint64_t)ctl_jint(o, "bytes_up"), a, sizeof(a)),
		    ctl_fmt_bytes((uint64_t)ctl_jint(o, "bytes_down"), b, sizeof(b)));
		break;
	default:
		any = false;
		break;
	}
	fclose(m);
	json_decref(o);
	return any;
}

/* ---- replay ---- */

static void
ctl_sleep(double seconds)
{
	struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
ctl_replay(struct ctl_opts *o)
{
	struct ctl_evlist l;
	struct audit_file f;
	struct audit_check c;
	uint64_t t0 = 0, prev = 0;
	char line[8192];
	int r = ctl_load_events(o, "replay", &l, &f, &c);

	if (r == CTL_AUDIT_UNREADABLE || r == CTL_AUDIT_USAGE || (r == CTL_AUDIT_TAMPERED && !c.decrypted))
		goto out;
	if (l.n > 0)
		t0 = prev = l.v[0].ts_us;
	for (size_t i = 0; i < l.n; i++) {
		const struct ctl_ev *e = &l.v[i];
		double wait = e->ts_us > prev ? (double)(e->ts_us - prev) / 1e6 : 0;

		if (o->speed > 0 && wait > 0) {
			wait /= o->speed;
			if (o->max_wait > 0 && wait > o->max_wait)
				wait = o->max_wait;
			fflush(stdout);
			ctl_sleep(wait);
		}
		if (e->ts_us > prev)
			prev = e->ts_us;
		if (e->type == AUDIT_EV_OUTPUT) {
			/* A terminal session: its output, as it was. */
			fwrite(e->data, 1, e->len, stdout);
			continue;
		}
		if (ctl_timeline_line(e, line, sizeof(line)))
			printf("[+%9.3fs] %s\n", e->ts_us > t0 ? (double)(e->ts_us - t0) / 1e6 : 0.0, line);
	}
	fflush(stdout);
	ctl_trailer(stderr, r, &c, "");
out:
	ctl_evlist_free(&l);
	audit_file_close(&f);
	return r;
}

/* ---- export ---- */

static int
ctl_put_json_line(FILE *out, json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(12));
	int r = text != NULL && fprintf(out, "%s\n", text) > 0 ? 0 : -1;

	free(text);
	json_decref(j);
	return r;
}

static int
ctl_export_jsonl(FILE *out, const struct audit_file *f, const struct ctl_evlist *l, const struct audit_check *c)
{
	json_t *h = json_deep_copy(f->header);
	const char *session = audit_file_str(f, "session"), *user = audit_file_str(f, "user");
	const char *target = audit_file_str(f, "target"), *node = audit_file_str(f, "node");

	json_object_del(h, "auditors");
	json_object_del(h, "stream_header");
	json_object_set_new(h, "type", json_string("header"));
	if (ctl_put_json_line(out, h) != 0)
		return -1;
	for (size_t i = 0; i < l->n; i++) {
		struct audit_event ev = { l->v[i].type, l->v[i].ts_us, l->v[i].data, l->v[i].len };
		json_t *j = ctl_event_json(&ev);

		if (j == NULL)
			return -1;
		/* Every line stands alone in a SIEM: say whose session it is. */
		json_object_set_new(j, "session", json_string(session));
		json_object_set_new(j, "user", json_string(user));
		json_object_set_new(j, "target", json_string(target));
		json_object_set_new(j, "node", json_string(node));
		if (ctl_put_json_line(out, j) != 0)
			return -1;
	}
	return ctl_put_json_line(out, json_pack("{s:s, s:s, s:s, s:s, s:b}", "type", "integrity", "session", session,
	    "verdict", audit_verdict_name(c->verdict), "detail", c->what, "trusted_key", c->trusted_key));
}

/* Text as a JSON string for asciicast: invalid UTF-8 bytes become U+FFFD. */
static json_t *
ctl_utf8_string(const uint8_t *p, size_t n)
{
	char *buf = malloc(3 * n + 1);
	size_t o = 0, i = 0;
	json_t *s;

	if (buf == NULL)
		return NULL;
	while (i < n) {
		size_t k = 0;
		uint8_t ch = p[i];

		if (ch < 0x80)
			k = 1;
		else if (ch >= 0xc2 && ch <= 0xdf && i + 1 < n && (p[i + 1] & 0xc0) == 0x80)
			k = 2;
		else if (ch >= 0xe0 && ch <= 0xef && i + 2 < n && (p[i + 1] & 0xc0) == 0x80 && (p[i + 2] & 0xc0) == 0x80 &&
		    !(ch == 0xe0 && p[i + 1] < 0xa0) && !(ch == 0xed && p[i + 1] >= 0xa0))
			k = 3;
		else if (ch >= 0xf0 && ch <= 0xf4 && i + 3 < n && (p[i + 1] & 0xc0) == 0x80 && (p[i + 2] & 0xc0) == 0x80 &&
		    (p[i + 3] & 0xc0) == 0x80 && !(ch == 0xf0 && p[i + 1] < 0x90) && !(ch == 0xf4 && p[i + 1] >= 0x90))
			k = 4;
		if (k == 0) {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(buf + o, p + i, k);
		o += k;
		i += k;
	}
	s = json_stringn(buf, o);
	free(buf);
	return s;
}

/*
 * asciicast v2: a header line, then [seconds, "o", text] events. A terminal session's output
 * and input go as they were ("o", "i", "r" for a resize); a database session is drawn as its
 * query timeline, so `asciinema play` shows what was typed and what came back, with timing.
 */
static int
ctl_export_cast(FILE *out, const struct audit_file *f, const struct ctl_evlist *l)
{
	long width = CTL_CAST_WIDTH, height = CTL_CAST_HEIGHT;
	uint64_t t0 = audit_file_start_us(f);
	double last = 0;
	char title[512], line[8192];

	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].type == AUDIT_EV_WINDOW) {
			json_t *o = json_loadb((const char *)l->v[i].data, l->v[i].len, 0, NULL);

			if (ctl_jint(o, "cols") > 0 && ctl_jint(o, "rows") > 0) {
				width = (long)ctl_jint(o, "cols");
				height = (long)ctl_jint(o, "rows");
			}
			json_decref(o);
			break;
		}
	}
	if (l->n > 0 && (t0 == 0 || l->v[0].ts_us < t0))
		t0 = l->v[0].ts_us;
	snprintf(title, sizeof(title), "postern %s session %s: %s@%s", audit_file_str(f, "protocol"),
	    audit_file_str(f, "session"), audit_file_str(f, "user"), audit_file_str(f, "target"));
	if (ctl_put_json_line(out, json_pack("{s:i, s:i, s:i, s:I, s:s, s:{s:s, s:s}}", "version", 2, "width", (int)width,
	    "height", (int)height, "timestamp", (json_int_t)(t0 / 1000000u), "title", title, "env", "TERM", "xterm-256color",
	    "SHELL", "/bin/sh")) != 0)
		return -1;
	for (size_t i = 0; i < l->n; i++) {
		const struct ctl_ev *e = &l->v[i];
		double t = e->ts_us > t0 ? (double)(e->ts_us - t0) / 1e6 : 0;
		json_t *data = NULL;
		const char *kind = "o";

		if (t < last)
			t = last;	/* asciicast times never go back */
		if (e->type == AUDIT_EV_OUTPUT || e->type == AUDIT_EV_INPUT) {
			kind = e->type == AUDIT_EV_OUTPUT ? "o" : "i";
			data = ctl_utf8_string(e->data, e->len);
		} else if (e->type == AUDIT_EV_WINDOW) {
			json_t *o = json_loadb((const char *)e->data, e->len, 0, NULL);
			char size[64];

			snprintf(size, sizeof(size), "%lldx%lld", (long long)ctl_jint(o, "cols"), (long long)ctl_jint(o, "rows"));
			json_decref(o);
			kind = "r";
			data = json_string(size);
		} else if (ctl_timeline_line(e, line, sizeof(line))) {
			size_t n = strlen(line);

			if (n + 3 < sizeof(line))
				memcpy(line + n, "\r\n", 3);
			data = ctl_utf8_string((const uint8_t *)line, strlen(line));
		}
		if (data == NULL)
			continue;
		last = t;
		if (ctl_put_json_line(out, json_pack("[f, s, o]", t, kind, data)) != 0)
			return -1;
	}
	return 0;
}

static int
ctl_export(struct ctl_opts *o)
{
	struct ctl_evlist l;
	struct audit_file f;
	struct audit_check c;
	FILE *out = stdout;
	bool cast;
	int r, w;

	if (o->format == NULL || (strcmp(o->format, "jsonl") != 0 && strcmp(o->format, "asciicast") != 0)) {
		fprintf(stderr, "posternctl audit export needs --format jsonl (JSON lines, for a SIEM) or --format asciicast "
		    "(for asciinema play)\n");
		return CTL_AUDIT_USAGE;
	}
	cast = strcmp(o->format, "asciicast") == 0;
	r = ctl_load_events(o, "export", &l, &f, &c);
	if (r == CTL_AUDIT_UNREADABLE || r == CTL_AUDIT_USAGE || (r == CTL_AUDIT_TAMPERED && !c.decrypted))
		goto out;
	if (o->output != NULL && strcmp(o->output, "-") != 0 && (out = fopen(o->output, "we")) == NULL) {
		fprintf(stderr, "posternctl audit: cannot write %s: %s\n", o->output, strerror(errno));
		r = CTL_AUDIT_UNREADABLE;
		goto out;
	}
	w = cast ? ctl_export_cast(out, &f, &l) : ctl_export_jsonl(out, &f, &l, &c);
	if ((out != stdout ? fclose(out) : fflush(out)) != 0 || w != 0) {
		fprintf(stderr, "posternctl audit: cannot write the export: %s\n", strerror(errno));
		r = CTL_AUDIT_UNREADABLE;
		goto out;
	}
	if (r != CTL_AUDIT_OK)
		ctl_trailer(stderr, r, &c, "");
out:
	ctl_evlist_free(&l);
	audit_file_close(&f);
	return r;
}

/* ---- search ---- */

struct ctl_search {
	const struct ctl_opts *o;
	const struct ctl_rec *rec;
	size_t hits;
	bool progress;
};

static void
ctl_search_event(const struct audit_event *ev, void *arg)
{
	struct ctl_search *s = arg;
	json_t *o;
	const char *text;
	char ts[64];

	if (ev->type != AUDIT_EV_STATEMENT && ev->type != AUDIT_EV_ERROR)
		return;
	if ((o = json_loadb((const char *)ev->data, ev->len, JSON_ALLOW_NUL, NULL)) == NULL)
		return;
	text = ev->type == AUDIT_EV_STATEMENT ? ctl_jstr(o, "text") : ctl_jstr(o, "error");
	if (ctl_ci_contains(text, s->o->query)) {
		s->hits++;
		if (s->progress)
			fprintf(stderr, "\r\033[K");
		if (s->o->json) {
			json_t *j = ctl_event_json(ev);

			json_object_set_new(j, "session", json_string(ctl_hstr(s->rec->header, "session")));
			json_object_set_new(j, "user", json_string(ctl_hstr(s->rec->header, "user")));
			json_object_set_new(j, "target", json_string(ctl_hstr(s->rec->header, "target")));
			(void)ctl_put_json_line(stdout, j);
		} else {
			printf("%-16s  %s  %s@%s  ", ctl_hstr(s->rec->header, "session"), ctl_fmt_us(ev->ts_us, ts, sizeof(ts)),
			    ctl_hstr(s->rec->header, "user"), ctl_hstr(s->rec->header, "target"));
			if (ev->type == AUDIT_EV_STATEMENT)
				printf("#%lld %s: ", (long long)ctl_jint(o, "seq"), ctl_jstr(o, "decision"));
			else
				fputs("error: ", stdout);
			ctl_put_oneline(stdout, text, strlen(text) < CTL_SEARCH_SHOW ? strlen(text) : CTL_SEARCH_SHOW);
			if (strlen(text) > CTL_SEARCH_SHOW)
				fputs("…", stdout);
			putchar('\n');
		}
	}
	json_decref(o);
}

static int
ctl_search(struct ctl_opts *o)
{
	struct ctl_rec *list;
	size_t n, total = 0, done = 0, skipped = 0, hits = 0;
	int worst = CTL_AUDIT_OK, r;
	char err[512];

	if (o->query == NULL || o->nargs != 0) {
		fprintf(stderr, "posternctl audit search needs --query TEXT (and takes --user --target --protocol --since --until)\n");
		return CTL_AUDIT_USAGE;
	}
	if ((r = ctl_load_key(o, true)) != 0 || (r = ctl_load_node_key(o)) != 0)
		return r;
	if ((r = ctl_scan(o, &list, &n)) != 0)
		return r;
	for (size_t i = 0; i < n; i++)
		total += ctl_match(o, &list[i]);
	for (size_t i = 0; i < n; i++) {
		struct ctl_search s = { .o = o, .rec = &list[i], .progress = ctl_progress_on(total) };
		struct audit_check c;

		if (!ctl_match(o, &list[i]) || list[i].header == NULL)
			continue;
		if (s.progress)
			ctl_progress("searching", done, total);
		err[0] = '\0';
		r = ctl_check(o, list[i].path, ctl_search_event, &s, &c, NULL, err, sizeof(err));
		done++;
		hits += s.hits;
		if (r == CTL_AUDIT_UNREADABLE && strstr(err, "is not sealed to key") != NULL) {
			skipped++;
			continue;
		}
		if (r == CTL_AUDIT_TAMPERED || r == CTL_AUDIT_UNREADABLE) {
			if (s.progress)
				fprintf(stderr, "\r\033[K");
			fprintf(stderr, "posternctl audit: %s: %s\n", list[i].path, r == CTL_AUDIT_TAMPERED ? c.what : err);
			worst = ctl_worse(worst, r);
		}
	}
	if (ctl_progress_on(total))
		ctl_progress("searching", total, total);
	if (skipped > 0)
		fprintf(stderr, "posternctl audit: %zu recording%s not sealed to key %s were skipped\n", skipped,
		    skipped == 1 ? " is" : "s are", o->key.id);
	if (!o->json)
		fprintf(stderr, "%zu match%s in %zu recording%s\n", hits, hits == 1 ? "" : "es", done - skipped,
		    done - skipped == 1 ? "" : "s");
	ctl_recs_free(list, n);
	return worst;
}

/* ---- entry ---- */

void
ctl_audit_usage(FILE *out)
{
	fprintf(out,
	    "  audit keygen FILE    an auditor key pair: FILE (secret, 0600) and FILE.pub (for auditor_keys)\n"
	    "  audit ls [FILTERS] [--json]          recordings, from their plaintext headers (no key needed)\n"
	    "  audit show ID [--json]               the decrypted timeline, one event a line\n"
	    "  audit verify ID… | --all [--json]    intact (0), tampered (1, with what failed), incomplete (3)\n"
	    "  audit replay ID [--speed N] [--max-wait S]   the session again, with its timing\n"
	    "  audit export ID --format jsonl|asciicast [-o FILE]\n"
	    "  audit search --query TEXT [FILTERS] [--json]   statements containing TEXT\n"
	    "      FILTERS: --user U --target T (globs) --protocol P --since T --until T (2024-05-01, 7d …)\n"
	    "      --dir DIR (default $POSTERN_AUDIT_DIR, else " CTL_AUDIT_DEFAULT_DIR ")\n"
	    "      --key FILE: the auditor's secret key (default $POSTERN_AUDIT_KEY), for show, replay,\n"
	    "      export, search, and verify (which then decrypts too)\n"
	    "      --node-key FILE: the relay's audit_node.pub to check signatures against (default\n"
	    "      $POSTERN_AUDIT_NODE_KEY, else node-NAME.pub in the audit directory)\n"
	    "      exit codes: 0 intact, 1 tampered, 2 usage, 3 incomplete, 4 cannot read / wrong key\n");
}

int
ctl_audit_main(int argc, char **argv)
{
	struct ctl_opts o;
	const char *sub = argc > 1 ? argv[1] : NULL;
	int r;

	if (sub == NULL || strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		fprintf(sub ? stdout : stderr, "usage: posternctl audit COMMAND [ARGS]\n\n");
		ctl_audit_usage(sub ? stdout : stderr);
		return sub ? CTL_AUDIT_OK : CTL_AUDIT_USAGE;
	}
	if (ctl_parse(argc, argv, 2, &o) != 0)
		return CTL_AUDIT_USAGE;
	if (sodium_init() < 0) {
		fprintf(stderr, "posternctl audit: cannot initialise libsodium\n");
		return CTL_AUDIT_UNREADABLE;
	}
	if (strcmp(sub, "keygen") == 0)
		r = ctl_keygen(&o);
	else if (strcmp(sub, "ls") == 0)
		r = ctl_ls(&o);
	else if (strcmp(sub, "show") == 0)
		r = ctl_show(&o);
	else if (strcmp(sub, "verify") == 0)
		r = ctl_verify(&o);
	else if (strcmp(sub, "replay") == 0)
		r = ctl_replay(&o);
	else if (strcmp(sub, "export") == 0)
		r = ctl_export(&o);
	else if (strcmp(sub, "search") == 0)
		r = ctl_search(&o);
	else {
		fprintf(stderr, "posternctl audit: unknown command %s\n\nusage: posternctl audit COMMAND [ARGS]\n\n", sub);
		ctl_audit_usage(stderr);
		r = CTL_AUDIT_USAGE;
	}
	sodium_memzero(&o.key, sizeof(o.key));
	return r;
}
