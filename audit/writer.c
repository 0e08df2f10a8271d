/*
 * The writer thread and the worker side of a recording. See writer.h for the split.
 *
 * A recording's file is written in batches: every chunk the thread takes from the queue in
 * one pass becomes a record (secretstream ciphertext, AD = the record header), and each
 * recording touched in the pass gets one signature record at the end of its batch and one
 * write(2). A crash therefore leaves a file that ends just after a signature (what the node
 * signed) and loses at most what was still queued or buffered: about one flush interval.
 * Signing per batch rather than per chunk keeps Ed25519 off the per-byte cost.
 */
#include "audit/writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/stream.h"
#include "relay/log.h"
#include "relay/util.h"

#define AUDIT_BATCH_MAX		(4u << 20)	/* bytes of records per write(2) */
#define AUDIT_CHUNK_MIN_CAP	1024	/* a new or quiet recording's chunk: its start event fits */
#define AUDIT_OUT_MIN_CAP	4096	/* first size of a recording's batch buffer */
#define AUDIT_HEALTH_SEC	1
#define AUDIT_RETENTION_SEC	60
#define AUDIT_PROBE_FILE	".probe"
#define AUDIT_PROBE_LEN		4096

struct audit_chunk {
	struct audit_chunk *next;	/* queue */
	struct audit_rec *rec;
	size_t len, cap;		/* bytes of events in data; allocated */
	uint64_t last_ts;		/* time of the last event */
	bool final;			/* the recording's last chunk */
	uint8_t data[];
};

struct audit_rec {
	/* Set at open, read-only after. */
	char *path;
	char session[17];
	size_t chunk_size;
	json_t *facts;			/* header fields from audit_rec_info */
	struct audit_auditor_key *auditors;	/* public keys only */
	size_t nauditors;

	/* Worker side. */
	struct audit_chunk *cur;	/* being filled; NULL when nothing is pending */
	size_t hint;			/* size of the last chunk: the next one starts this big */
	uint64_t dropped;		/* event bytes dropped because the queue was full */

	/* Writer side. */
	int fd;
	bool opened, failed, closing, dirty;
	struct audit_rec *dirty_next;
	struct audit_stream st;
	struct audit_hash hash;
	uint8_t *out;			/* records of the current batch */
	size_t olen, ocap;
	uint64_t good;			/* file bytes up to the last signature written */
	uint64_t last_ts;
};

static struct {
	pthread_mutex_t mu;		/* protects everything below but the writer-only fields */
	pthread_cond_t cv;
	struct audit_chunk *head, *tail;
	size_t queued;			/* bytes of chunks in the queue and in the current pass */
	bool running, stop;
	pthread_t thread;
	struct audit_node_key key;	/* writer thread reads it; set before the thread starts */
	char *dir;
	uint64_t min_free, retention_bytes;
	long retention_days;
	size_t queue_limit;
	bool healthy;
	bool write_failed;		/* a write failed since the last good probe */
	char reason[512];
	void (*on_failure)(const char *session, const char *reason);
	struct audit_writer_stats stats;	/* a copy of wstats, taken after each pass */
} aw = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static struct audit_writer_stats wstats;	/* writer thread only */

/*
 * A recording's batch buffer lives only while a pass writes it: once written it goes back here
 * (one spare, writer thread only), so an idle recording holds no buffer (64 KiB each before).
 */
static uint8_t *wspare;
static size_t wspare_cap;

/* ---- worker side ---- */

struct audit_rec *
audit_rec_open(const char *dir, const struct audit_rec_info *info, const struct audit_auditor_key *auditors,
    size_t nauditors, size_t chunk_size, char *err, size_t errlen)
{
	struct audit_rec *rec = NULL;
	json_t *roles = NULL;
	char day[16], start[64];
	time_t t = (time_t)(info->start_us / 1000000u);
	struct tm tm;
	bool running;

	pthread_mutex_lock(&aw.mu);
	running = aw.running && !aw.stop;
	pthread_mutex_unlock(&aw.mu);
	if (!running) {
		snprintf(err, errlen, "the recording writer is not running");
		return NULL;
	}
	if (nauditors == 0) {
		snprintf(err, errlen, "no auditor keys to seal the recording to");
		return NULL;
	}
	if ((rec = calloc(1, sizeof(*rec))) == NULL)
		goto oom;
	rec->fd = -1;
	rec->chunk_size = chunk_size;
	snprintf(rec->session, sizeof(rec->session), "%s", info->session ? info->session : "");
	gmtime_r(&t, &tm);
	strftime(day, sizeof(day), "%Y%m%d", &tm);
	snprintf(start, sizeof(start), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(info->start_us % 1000000u));
	if (asprintf(&rec->path, "%s/%s-%s%s", dir, day, rec->session, AUDIT_FILE_SUFFIX) < 0) {
		rec->path = NULL;
		goto oom;
	}
	if ((roles = json_array()) == NULL)
		goto oom;
	for (size_t i = 0; i < info->nroles; i++)
		json_array_append_new(roles, json_string(info->roles[i]));
	rec->facts = json_pack("{s:i, s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I}",
	    "format", AUDIT_FORMAT_VERSION, "session", rec->session, "user", info->user ? info->user : "",
	    "roles", roles, "role", info->role ? info->role : "", "target", info->target ? info->target : "",
	    "login", info->login ? info->login : "", "protocol", info->protocol ? info->protocol : "",
	    "database", info->database ? info->database : "", "client", info->client ? info->client : "",
	    "node", info->node ? info->node : "", "serial", (json_int_t)info->serial, "start", start,
	    "start_us", (json_int_t)info->start_us);
	roles = NULL;	/* transferred (json_pack "o" steals it, even on failure) */
	if (rec->facts == NULL)
		goto oom;
	if ((rec->auditors = calloc(nauditors, sizeof(*rec->auditors))) == NULL)
		goto oom;
	for (size_t i = 0; i < nauditors; i++) {
		memcpy(rec->auditors[i].pk, auditors[i].pk, sizeof(auditors[i].pk));
		memcpy(rec->auditors[i].id, auditors[i].id, sizeof(auditors[i].id));
	}
	rec->nauditors = nauditors;
	return rec;
oom:
	snprintf(err, errlen, "out of memory");
	json_decref(roles);
	if (rec != NULL) {
		json_decref(rec->facts);
		free(rec->auditors);
		free(rec->path);
		free(rec);
	}
	return NULL;
}

const char *
audit_rec_path(const struct audit_rec *rec)
{
	return rec->path;
}

uint64_t
audit_rec_dropped(const struct audit_rec *rec)
{
	return rec->dropped;
}

bool
audit_rec_pending(const struct audit_rec *rec)
{
	return rec->cur != NULL && rec->cur->len > 0;
}

/* Queue CHUNK for the writer. Over the limit (and not FINAL) the chunk is refused: -1. */
static int
audit_submit(struct audit_chunk *chunk)
{
	pthread_mutex_lock(&aw.mu);
	if (!chunk->final && (aw.stop || aw.queued + chunk->len > aw.queue_limit)) {
		pthread_mutex_unlock(&aw.mu);
		return -1;
	}
	chunk->next = NULL;
	if (aw.tail != NULL)
		aw.tail->next = chunk;
	else
		aw.head = chunk;
	aw.tail = chunk;
	aw.queued += chunk->len;
	pthread_cond_signal(&aw.cv);
	pthread_mutex_unlock(&aw.mu);
	return 0;
}

int
audit_rec_flush(struct audit_rec *rec)
{
	struct audit_chunk *chunk = rec->cur;

	if (chunk == NULL || chunk->len == 0)
		return 0;
	rec->cur = NULL;
	rec->hint = chunk->len;
	if (audit_submit(chunk) != 0) {
		rec->dropped += chunk->len;
		free(chunk);
		return -1;
	}
	return 0;
}

uint8_t *
audit_rec_reserve(struct audit_rec *rec, size_t max)
{
	struct audit_chunk *c = rec->cur;
	size_t need = AUDIT_EVENT_HDR_LEN + max;

	if (c != NULL && c->len > 0 && c->len + need > rec->chunk_size)
		(void)audit_rec_flush(rec);	/* a refusal is counted in dropped */
	c = rec->cur;
	if (c == NULL) {
		size_t cap = rec->hint < rec->chunk_size ? rec->hint : rec->chunk_size;

		if (cap < AUDIT_CHUNK_MIN_CAP)
			cap = AUDIT_CHUNK_MIN_CAP;
		if (cap < need)
			cap = need;
		if ((c = malloc(sizeof(*c) + cap)) == NULL)
			return NULL;
		c->rec = rec;
		c->len = 0;
		c->cap = cap;
		c->last_ts = 0;
		c->final = false;
		rec->cur = c;
	} else if (c->cap - c->len < need) {
		size_t cap = c->cap * 2 > c->len + need ? c->cap * 2 : c->len + need;
		struct audit_chunk *grown = realloc(c, sizeof(*c) + cap);

		if (grown == NULL)
			return NULL;
		grown->cap = cap;
		rec->cur = c = grown;
	}
	return c->data + c->len + AUDIT_EVENT_HDR_LEN;
}

void
audit_rec_commit(struct audit_rec *rec, uint8_t type, uint64_t ts_us, size_t len)
{
	struct audit_chunk *c = rec->cur;
	uint8_t *p = c->data + c->len;

	p[0] = type;
	audit_put64(p + 1, ts_us);
	audit_put32(p + 9, (uint32_t)len);
	c->len += AUDIT_EVENT_HDR_LEN + len;
	c->last_ts = ts_us;
	if (c->len >= rec->chunk_size)
		(void)audit_rec_flush(rec);
}

void
audit_rec_event(struct audit_rec *rec, uint8_t type, uint64_t ts_us, const void *payload, size_t len)
{
	uint8_t *p;

	if (len > AUDIT_EVENT_MAX)
		len = AUDIT_EVENT_MAX;
	if ((p = audit_rec_reserve(rec, len)) == NULL) {
		rec->dropped += len;
		return;
	}
	memcpy(p, payload, len);
	audit_rec_commit(rec, type, ts_us, len);
}

void
audit_rec_close(struct audit_rec *rec)
{
	struct audit_chunk *c = rec->cur;

	rec->cur = NULL;
	if (c == NULL && (c = malloc(sizeof(*c))) != NULL) {
		c->rec = rec;
		c->len = c->cap = 0;
		c->last_ts = audit_now_us();
	}
	if (c == NULL) {
		/* Out of memory for even an empty chunk: leave the file unfinished (incomplete). */
		log_error("recording left unfinished", "sid=%s reason=\"out of memory\"", rec->session);
		return;
	}
	c->final = true;
	(void)audit_submit(c);	/* FINAL chunks are always taken */
}

/* ---- writer side ---- */

static void
audit_set_unhealthy(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
audit_set_unhealthy(const char *fmt, ...)
{
	char buf[sizeof(aw.reason)];
	va_list ap;
	bool was;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&aw.mu);
	was = aw.healthy || strcmp(aw.reason, buf) != 0;
	aw.healthy = false;
	memcpy(aw.reason, buf, sizeof(buf));
	pthread_mutex_unlock(&aw.mu);
	if (was) {
		char q[sizeof(buf) + 16];

		log_error("recording unavailable", "reason=%s", log_quote(q, sizeof(q), buf));
	}
}

static bool
audit_out_reserve(struct audit_rec *rec, size_t n)
{
	if (rec->ocap - rec->olen >= n)
		return true;
	if (rec->out == NULL && wspare != NULL) {
		rec->out = wspare;
		rec->ocap = wspare_cap;
		wspare = NULL;
		wspare_cap = 0;
		if (rec->ocap >= n)
			return true;
	}
	/* Sized to the batch, not to a fixed 64 KiB: every recording with events in a pass holds
	 * its buffer until the pass signs and writes, so a pass over many quiet sessions (their
	 * first events, a tick of byte counters) would otherwise hold 64 KiB for each. */
	size_t cap = rec->ocap ? rec->ocap : AUDIT_OUT_MIN_CAP;
	uint8_t *grown;

	while (cap - rec->olen < n)
		cap *= 2;
	if ((grown = realloc(rec->out, cap)) == NULL)
		return false;
	rec->out = grown;
	rec->ocap = cap;
	return true;
}

/* Append bytes to the batch, into the running hash too. */
static void
audit_out_put(struct audit_rec *rec, const void *data, size_t len)
{
	memcpy(rec->out + rec->olen, data, len);
	audit_hash_update(&rec->hash, data, len);
	rec->olen += len;
}

static void
audit_rec_fail(struct audit_rec *rec, const char *what, int err)
{
	static const char reason[] = "recording failed: posternd could not write the session's recording";

	void (*hook)(const char *session, const char *reason);

	rec->failed = true;
	rec->olen = 0;
	if (rec->fd >= 0 && rec->opened && ftruncate(rec->fd, (off_t)rec->good) != 0)	/* back to the last signature */
		log_warn("cannot cut a failed recording back to its last signature", "file=%s", rec->path);
	pthread_mutex_lock(&aw.mu);
	aw.write_failed = true;
	hook = aw.on_failure;
	pthread_mutex_unlock(&aw.mu);
	audit_set_unhealthy("cannot %s %s: %s", what, rec->path, strerror(err));
	if (hook != NULL)
		hook(rec->session, reason);
}

/* The header's fields and the auditor keys are needed once, for the header: a live recording
 * does not keep them (about 2 KiB of JSON objects a session). */
static void
audit_rec_drop_facts(struct audit_rec *rec)
{
	json_decref(rec->facts);
	rec->facts = NULL;
	free(rec->auditors);
	rec->auditors = NULL;
	rec->nauditors = 0;
}

/* Create the file and put the header in the batch. */
static void
audit_rec_begin(struct audit_rec *rec)
{
	uint8_t key[AUDIT_STREAM_KEYBYTES], sh[AUDIT_STREAM_HEADERBYTES], sealed[AUDIT_SEALED_LEN], pre[AUDIT_PREAMBLE_LEN];
	char b64[256];
	json_t *aud = NULL, *hdr = rec->facts;
	char *text = NULL;
	size_t tlen;
	int e;

	rec->opened = true;
	rec->fd = open(rec->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (rec->fd < 0 && errno == ENOENT) {
		char *slash = strrchr(rec->path, '/');

		if (slash != NULL) {
			*slash = '\0';
			(void)mkdir(rec->path, 0700);
			*slash = '/';
		}
		rec->fd = open(rec->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (rec->fd < 0) {
		e = errno;
		audit_rec_fail(rec, "create", e);
		return;
	}
	/* Held while the file is written: verify reports "being written", retention skips it. */
	(void)flock(rec->fd, LOCK_EX | LOCK_NB);
	if (audit_hash_init(&rec->hash) != 0) {
		audit_rec_fail(rec, "hash", ENOMEM);
		return;
	}
	crypto_secretstream_xchacha20poly1305_keygen(key);
	audit_stream_init(&rec->st, sh, key);
	if ((aud = json_array()) == NULL)
		goto oom;
	for (size_t i = 0; i < rec->nauditors; i++) {
		if (crypto_box_seal(sealed, key, sizeof(key), rec->auditors[i].pk) != 0 ||
		    util_b64_encode(sealed, sizeof(sealed), b64, sizeof(b64)) != 0)
			goto oom;
		json_array_append_new(aud, json_pack("{s:s, s:s}", "key_id", rec->auditors[i].id, "sealed", b64));
	}
	sodium_memzero(key, sizeof(key));
	if (util_b64_encode(aw.key.pk, sizeof(aw.key.pk), b64, sizeof(b64)) != 0)
		goto oom;
	json_object_set_new(hdr, "node_key", json_string(b64));
	json_object_set_new(hdr, "auditors", aud);
	aud = NULL;
	if (util_b64_encode(sh, sizeof(sh), b64, sizeof(b64)) != 0)
		goto oom;
	json_object_set_new(hdr, "stream_header", json_string(b64));
	if ((text = json_dumps(hdr, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto oom;
	tlen = strlen(text);
	if (tlen > AUDIT_HEADER_MAX || !audit_out_reserve(rec, AUDIT_PREAMBLE_LEN + tlen))
		goto oom;
	memcpy(pre, AUDIT_MAGIC, AUDIT_MAGIC_LEN);
	audit_put32(pre + AUDIT_MAGIC_LEN, (uint32_t)tlen);
	audit_out_put(rec, pre, sizeof(pre));
	audit_out_put(rec, text, tlen);
	free(text);
	audit_rec_drop_facts(rec);
	return;
oom:
	sodium_memzero(key, sizeof(key));
	json_decref(aud);
	free(text);
	audit_rec_drop_facts(rec);
	audit_rec_fail(rec, "build the header of", ENOMEM);
}

static void
audit_put_record_header(uint8_t *h, uint8_t type, uint32_t len, uint64_t ts)
{
	h[0] = type;
	audit_put32(h + 1, len);
	audit_put64(h + 5, ts);
}

/* Encrypt CHUNK into the batch as one record (the last one FINAL, then the end record). */
static void
audit_rec_encrypt(struct audit_rec *rec, const struct audit_chunk *chunk)
{
	uint8_t h[AUDIT_RECORD_HDR_LEN];
	size_t clen = chunk->len + AUDIT_STREAM_ABYTES;
	uint64_t ts = chunk->last_ts ? chunk->last_ts : audit_now_us();

	if (!audit_out_reserve(rec, 2 * AUDIT_RECORD_HDR_LEN + clen)) {
		audit_rec_fail(rec, "buffer a chunk of", ENOMEM);
		return;
	}
	audit_put_record_header(h, AUDIT_REC_CHUNK, (uint32_t)clen, ts);
	audit_out_put(rec, h, sizeof(h));
	audit_stream_push(&rec->st, rec->out + rec->olen, chunk->data, chunk->len, h, sizeof(h),
	    chunk->final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
	audit_hash_update(&rec->hash, rec->out + rec->olen, clen);
	rec->olen += clen;
	rec->last_ts = ts;
	wstats.bytes_in += chunk->len;
	wstats.chunks++;
	if (chunk->final) {
		audit_put_record_header(h, AUDIT_REC_END, 0, ts);
		audit_out_put(rec, h, sizeof(h));
	}
}

/* Sign everything so far and write the batch with one write(2). */
static void
audit_rec_sign_write(struct audit_rec *rec)
{
	uint8_t digest[AUDIT_HASH_LEN], msg[AUDIT_SIG_CONTEXT_LEN + AUDIT_HASH_LEN], sig[AUDIT_RECORD_HDR_LEN + AUDIT_SIG_LEN];
	size_t off = 0;

	if (rec->failed || rec->olen == 0)
		return;
	if (!audit_out_reserve(rec, sizeof(sig)) || audit_hash_peek(&rec->hash, digest) != 0) {
		audit_rec_fail(rec, "sign", ENOMEM);
		return;
	}
	audit_sig_message(digest, msg);
	audit_put_record_header(sig, AUDIT_REC_SIG, AUDIT_SIG_LEN, rec->last_ts ? rec->last_ts : audit_now_us());
	crypto_sign_detached(sig + AUDIT_RECORD_HDR_LEN, NULL, msg, sizeof(msg), aw.key.sk);
	audit_out_put(rec, sig, sizeof(sig));
	wstats.signatures++;
	while (off < rec->olen) {
		ssize_t n = write(rec->fd, rec->out + off, rec->olen - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			audit_rec_fail(rec, "write", n < 0 ? errno : ENOSPC);
			return;
		}
		off += (size_t)n;
	}
	rec->good += rec->olen;
	wstats.bytes_out += rec->olen;
	rec->olen = 0;
	if (wspare == NULL && rec->ocap <= AUDIT_BATCH_MAX) {
		wspare = rec->out;
		wspare_cap = rec->ocap;
	} else {
		free(rec->out);
	}
	rec->out = NULL;
	rec->ocap = 0;
}

static void
audit_rec_free(struct audit_rec *rec)
{
	if (rec->fd >= 0)
		close(rec->fd);	/* releases the lock */
	if (rec->opened && rec->hash.ctx != NULL)
		audit_hash_free(&rec->hash);
	if (rec->opened)
		audit_stream_free(&rec->st);
	json_decref(rec->facts);
	free(rec->auditors);
	free(rec->out);
	free(rec->path);
	free(rec);
}

/* One pass over the chunks taken from the queue. */
static void
audit_process(struct audit_chunk *list)
{
	struct audit_rec *dirty = NULL;

	while (list != NULL) {
		struct audit_chunk *c = list;
		struct audit_rec *rec = c->rec;

		list = c->next;
		if (!rec->opened) {
			audit_rec_begin(rec);
			wstats.recordings++;
		}
		if (!rec->failed)
			audit_rec_encrypt(rec, c);
		if (c->final)
			rec->closing = true;
		if (!rec->dirty) {
			rec->dirty = true;
			rec->dirty_next = dirty;
			dirty = rec;
		}
		if (rec->olen >= AUDIT_BATCH_MAX)
			audit_rec_sign_write(rec);
		free(c);
	}
	while (dirty != NULL) {
		struct audit_rec *rec = dirty;

		dirty = rec->dirty_next;
		rec->dirty = false;
		audit_rec_sign_write(rec);
		if (rec->closing)
			audit_rec_free(rec);
	}
}

/* ---- free space and retention ---- */

static void
audit_health_check(const char *dir, uint64_t min_free, bool probe)
{
	struct statvfs vfs;
	uint64_t avail;
	char path[4096];
	uint8_t block[AUDIT_PROBE_LEN] = { 0 };
	int fd;

	if (dir == NULL)
		return;
	if (statvfs(dir, &vfs) != 0) {
		if (errno == ENOENT && mkdir(dir, 0700) == 0)
			return;
		audit_set_unhealthy("cannot use the audit directory %s: %s", dir, strerror(errno));
		return;
	}
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail < min_free) {
		audit_set_unhealthy("the audit directory %s has %llu MiB free, under audit_min_free (%llu MiB); "
		    "free space or lower audit_retention_bytes", dir, (unsigned long long)(avail >> 20),
		    (unsigned long long)(min_free >> 20));
		return;
	}
	if (probe) {
		/* After a failed write, space alone is not proof: write a block and take it back. */
		snprintf(path, sizeof(path), "%s/%s", dir, AUDIT_PROBE_FILE);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, block, sizeof(block)) != (ssize_t)sizeof(block)) {
			audit_set_unhealthy("cannot write in the audit directory %s: %s", dir, strerror(errno));
			if (fd >= 0)
				close(fd);
			unlink(path);
			return;
		}
		close(fd);
		unlink(path);
	}
	pthread_mutex_lock(&aw.mu);
	if (!aw.healthy)
		log_info("recording available again", "dir=%s", dir);
	aw.healthy = true;
	aw.write_failed = false;
	aw.reason[0] = '\0';
	pthread_mutex_unlock(&aw.mu);
}

struct audit_old {
	char name[256];
	time_t mtime;
	uint64_t size;
};

static int
audit_old_cmp(const void *a, const void *b)
{
	const struct audit_old *x = a, *y = b;

	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime ? 1 : strcmp(x->name, y->name);
}

static void
audit_delete(const char *dir, const struct audit_old *o, const char *why)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, o->name);
	if (unlink(path) == 0)
		log_info("recording deleted by retention", "file=%s bytes=%llu reason=%s", o->name,
		    (unsigned long long)o->size, why);
	else if (errno != ENOENT)
		log_warn("retention cannot delete a recording", "file=%s error=\"%s\"", o->name, strerror(errno));
}

/* Delete recordings past the age or beyond the total size, oldest first; never an open one. */
static void
audit_retention(const char *dir, long days, uint64_t max_bytes)
{
	struct audit_old *list = NULL;
	size_t n = 0, cap = 0, sfx = strlen(AUDIT_FILE_SUFFIX);
	uint64_t total = 0;
	time_t cutoff = time(NULL) - (time_t)days * 86400;
	struct dirent *de;
	DIR *d;

	if (dir == NULL || (days <= 0 && max_bytes == 0) || (d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		struct stat st;
		int fd;

		if (len <= sfx || len >= sizeof(list->name) || strcmp(de->d_name + len - sfx, AUDIT_FILE_SUFFIX) != 0)
			continue;
		if ((fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
			continue;
		/* A file some writer holds is being written: never delete it. */
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || flock(fd, LOCK_SH | LOCK_NB) != 0) {
			close(fd);
			continue;
		}
		close(fd);
		if (n == cap) {
			struct audit_old *grown = realloc(list, (cap = cap ? cap * 2 : 256) * sizeof(*list));

			if (grown == NULL)
				break;
			list = grown;
		}
		memcpy(list[n].name, de->d_name, len + 1);
		list[n].mtime = st.st_mtime;
		list[n].size = (uint64_t)st.st_size;
		total += list[n].size;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(list, n, sizeof(*list), audit_old_cmp);
	for (size_t i = 0; i < n; i++) {
		if (days > 0 && list[i].mtime < cutoff) {
			audit_delete(dir, &list[i], "age");
		} else if (max_bytes > 0 && total > max_bytes) {
			audit_delete(dir, &list[i], "size");
		} else {
			continue;
		}
		total -= list[i].size;
	}
	free(list);
}

/* ---- the thread ---- */

static uint64_t
audit_thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *
audit_writer_main(void *arg)
{
	double next_health = 0, next_retention = util_now_mono() + 5;

	(void)pthread_setname_np(pthread_self(), "pst-audit");
	pthread_mutex_lock(&aw.mu);
	for (;;) {
		struct audit_chunk *list;
		size_t taken;
		double now = util_now_mono();

		if (aw.head == NULL && now >= next_health) {
			char *dir = aw.dir ? strdup(aw.dir) : NULL;
			uint64_t min_free = aw.min_free, rbytes = aw.retention_bytes;
			long rdays = aw.retention_days;
			bool probe = aw.write_failed;
			bool retention = now >= next_retention;

			pthread_mutex_unlock(&aw.mu);
			audit_health_check(dir, min_free, probe);
			if (retention) {
				audit_retention(dir, rdays, rbytes);
				next_retention = now + AUDIT_RETENTION_SEC;
			}
			free(dir);
			next_health = now + AUDIT_HEALTH_SEC;
			pthread_mutex_lock(&aw.mu);
			continue;
		}
		if (aw.head == NULL) {
			struct timespec until;

			if (aw.stop)
				break;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += AUDIT_HEALTH_SEC;
			pthread_cond_timedwait(&aw.cv, &aw.mu, &until);
			continue;
		}
		list = aw.head;
		aw.head = aw.tail = NULL;
		taken = 0;
		for (struct audit_chunk *c = list; c != NULL; c = c->next)
			taken += c->len;
		pthread_mutex_unlock(&aw.mu);
		{
			uint64_t c0 = audit_thread_cpu_ns();

			audit_process(list);
			wstats.cpu_ns += audit_thread_cpu_ns() - c0;
		}
		pthread_mutex_lock(&aw.mu);
		aw.queued -= taken;
		aw.stats = wstats;
	}
	pthread_mutex_unlock(&aw.mu);
	free(wspare);
	wspare = NULL;
	wspare_cap = 0;
	return NULL;
}

void
audit_writer_configure(const struct audit_writer_settings *set)
{
	char *dir = set->dir ? strdup(set->dir) : NULL;

	pthread_mutex_lock(&aw.mu);
	free(aw.dir);
	aw.dir = dir;
	aw.min_free = set->min_free;
	aw.retention_days = set->retention_days;
	aw.retention_bytes = set->retention_bytes;
	aw.queue_limit = set->queue_limit;
	pthread_mutex_unlock(&aw.mu);
}

int
audit_writer_start(const struct audit_node_key *key, const struct audit_writer_settings *set, char *err, size_t errlen)
{
	pthread_mutex_lock(&aw.mu);
	if (aw.running) {
		pthread_mutex_unlock(&aw.mu);
		snprintf(err, errlen, "the recording writer is already running");
		return -1;
	}
	aw.key = *key;
	aw.stop = false;
	aw.healthy = true;
	aw.write_failed = false;
	aw.reason[0] = '\0';
	memset(&aw.stats, 0, sizeof(aw.stats));
	memset(&wstats, 0, sizeof(wstats));
	pthread_mutex_unlock(&aw.mu);
	audit_writer_configure(set);
	audit_writer_check_now();
	if (pthread_create(&aw.thread, NULL, audit_writer_main, NULL) != 0) {
		snprintf(err, errlen, "cannot start the recording writer thread");
		return -1;
	}
	pthread_mutex_lock(&aw.mu);
	aw.running = true;
	pthread_mutex_unlock(&aw.mu);
	return 0;
}

void
audit_writer_stop(void)
{
	pthread_mutex_lock(&aw.mu);
	if (!aw.running) {
		pthread_mutex_unlock(&aw.mu);
		return;
	}
	aw.stop = true;
	pthread_cond_signal(&aw.cv);
	pthread_mutex_unlock(&aw.mu);
	pthread_join(aw.thread, NULL);
	pthread_mutex_lock(&aw.mu);
	aw.running = false;
	free(aw.dir);
	aw.dir = NULL;
	sodium_memzero(&aw.key, sizeof(aw.key));
	pthread_mutex_unlock(&aw.mu);
}

void
audit_writer_check_now(void)
{
	char *dir;
	uint64_t min_free;
	bool probe;

	pthread_mutex_lock(&aw.mu);
	dir = aw.dir ? strdup(aw.dir) : NULL;
	min_free = aw.min_free;
	probe = aw.write_failed;
	pthread_mutex_unlock(&aw.mu);
	audit_health_check(dir, min_free, probe);
	free(dir);
}

bool
audit_writer_healthy(char *reason, size_t rlen)
{
	bool ok;

	pthread_mutex_lock(&aw.mu);
	ok = aw.running && !aw.stop && aw.healthy;
	if (!ok && reason != NULL)
		snprintf(reason, rlen, "%s", !aw.running || aw.stop ? "the recording writer is not running" : aw.reason);
	pthread_mutex_unlock(&aw.mu);
	return ok;
}

void
audit_writer_on_failure(void (*fn)(const char *session, const char *reason))
{
	pthread_mutex_lock(&aw.mu);
	aw.on_failure = fn;
	pthread_mutex_unlock(&aw.mu);
}

void
audit_writer_get_stats(struct audit_writer_stats *out)
{
	pthread_mutex_lock(&aw.mu);
	*out = aw.stats;
	pthread_mutex_unlock(&aw.mu);
}
