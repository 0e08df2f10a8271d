/*
 * Writes the seed corpus of fuzz_audit: a few small recordings made by the real writer
 * (audit/writer.c) with the harness's fixed node and auditor keys, so the harness's checks
 * find them intact (or incomplete) and decrypt them, and beside each its plain form
 * (fuzz_audit_keys.h: the same records with the chunks decrypted), which the harness seals
 * again. Built with -Dfuzz=true only; see README.md:
 *
 *   build-fuzz/tests/fuzz/fuzz_audit_seeds tests/fuzz/corpus/audit
 *
 * The writer draws a new stream key for each recording, so every run writes other bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/reader.h"
#include "audit/writer.h"
#include "fuzz_audit_keys.h"
#include "relay/util.h"

#define SEEDS_SESSION_START_US	1717243200000000ull	/* 2024-06-01T12:00:00Z: seeds differ only by their keys */
#define SEEDS_WAIT_MS		5000

static struct audit_node_key node;
static struct audit_auditor_key auditor, other;
static char tmpdir[256];

/* One event of a seed, or (payload NULL) a flush: the events before it go to the writer. */
struct seed_event {
	uint8_t type;
	const char *payload;
	size_t len;
};

#define EV(t, s)	{ (t), (s), sizeof(s) - 1 }	/* raw payloads hold NULs: the literal's own length */
#define FLUSH		{ 0, NULL, 0 }
#define START(s, p)	EV(AUDIT_EV_START, "{\"session\":\"" s "\",\"user\":\"alice\",\"target\":\"pg\",\"protocol\":\"" p \
			    "\",\"login\":\"app\"}")

static const struct seed_event ev_postgres[] = {
	START("00000000000000f1", "postgres"),
	EV(AUDIT_EV_ACCESS, "{\"decision\":\"allow\",\"identity\":\"alice\",\"role\":\"dba\",\"login\":\"app\"}"),
	EV(AUDIT_EV_STATEMENT, "{\"seq\":1,\"kind\":\"query\",\"decision\":\"allow\",\"text\":\"select 1\",\"len\":8}"),
	EV(AUDIT_EV_OUTCOME, "{\"seq\":1,\"kind\":\"query\",\"tag\":\"SELECT 1\",\"rows\":1,\"duration_us\":412}"),
	FLUSH,
	EV(AUDIT_EV_STATEMENT, "{\"seq\":2,\"kind\":\"query\",\"decision\":\"allow\",\"text\":\"ALTER ROLE app PASSWORD '***'\","
	    "\"len\":30,\"redacted\":true}"),
	EV(AUDIT_EV_OUTCOME, "{\"seq\":2,\"kind\":\"query\",\"sqlstate\":\"42501\",\"duration_us\":90}"),
	EV(AUDIT_EV_BYTES, "{\"up\":120,\"down\":340}"),
	EV(AUDIT_EV_END, "{\"reason\":\"client quit\",\"cause\":\"client_quit\",\"bytes_up\":120,\"bytes_down\":340,"
	    "\"statements\":2,\"denied\":0,\"duration_us\":15000}"),
};

static const struct seed_event ev_batches[] = {
	START("00000000000000f2", "postgres"),
	EV(AUDIT_EV_UP, "Q\x00\x00\x00\x0d" "select 1\x00"),
	FLUSH,
	EV(AUDIT_EV_DOWN, "T\x00\x00\x00\x21\x00\x01" "?column?\x00"),
	EV(AUDIT_EV_ERROR, "{\"error\":\"recorder dropped events\",\"bytes\":4096}"),
	FLUSH,
	EV(AUDIT_EV_STATEMENT, "{\"seq\":1,\"kind\":\"execute\",\"decision\":\"deny\",\"reason\":\"policy\",\"text\":\"\",\"len\":0}"),
};

static const struct seed_event ev_terminal[] = {
	START("00000000000000f3", "ssh"),
	EV(AUDIT_EV_WINDOW, "{\"cols\":80,\"rows\":24}"),
	EV(AUDIT_EV_OUTPUT, "$ "),
	EV(AUDIT_EV_INPUT, "ls\r"),
	EV(AUDIT_EV_OUTPUT, "\x1b[0mREADME\r\n$ "),
	FLUSH,
	EV(AUDIT_EV_WINDOW, "{\"cols\":132,\"rows\":50}"),
	EV(AUDIT_EV_END, "{\"reason\":\"target gone\",\"cause\":\"target_gone\"}"),
};

/* One recording to write: its events, and whether the writer closes it. */
struct seed {
	const char *name;		/* file name in the corpus */
	const char *session;
	const char *protocol;
	bool both_auditors;		/* sealed to the second auditor as well, listed first */
	bool close;			/* closed by the writer: intact; else incomplete */
	const struct seed_event *events;
	size_t nevents;
};

#define EVENTS(a)	(a), sizeof(a) / sizeof((a)[0])

static const struct seed seeds[] = {
	{ "intact", "00000000000000f1", "postgres", false, true, EVENTS(ev_postgres) },
	{ "incomplete", "00000000000000f2", "postgres", false, false, EVENTS(ev_batches) },
	{ "two_auditors", "00000000000000f3", "ssh", true, true, EVENTS(ev_terminal) },
	{ "empty", "00000000000000f4", "tcp", false, true, NULL, 0 },
};

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL)
		*len = fread(buf, 1, (size_t)n, f);
	fclose(f);
	return buf;
}

static int
spit(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int r = -1;

	if (f == NULL)
		return -1;
	if (fwrite(buf, 1, len, f) == len)
		r = 0;
	if (fclose(f) != 0)
		r = -1;
	return r;
}

/* The verdict of PATH with the fixed keys, -1 when it cannot be read. */
static int
seed_verdict(const char *path)
{
	struct audit_file f;
	struct audit_check c;
	char err[512];
	int r;

	if (audit_file_open(path, &f, err, sizeof(err)) != 0) {
		audit_file_close(&f);
		return -1;
	}
	r = audit_file_check(&f, node.pk, &auditor, NULL, NULL, &c, err, sizeof(err));
	audit_file_close(&f);
	return r == 0 ? (int)c.verdict : -1;
}

/* Hand REC's events to the writer and wait until it wrote them: one signed batch each. */
static void
seed_flush(struct audit_rec *rec)
{
	struct audit_writer_stats st;
	uint64_t before;

	if (!audit_rec_pending(rec))
		return;
	audit_writer_get_stats(&st);
	before = st.signatures;
	(void)audit_rec_flush(rec);
	for (int i = 0; i < SEEDS_WAIT_MS / 10; i++) {
		audit_writer_get_stats(&st);
		if (st.signatures > before)
			return;
		sleep_ms(10);
	}
}

/* Write SEED with the writer; its path (static), or NULL. */
static const char *
seed_write(const struct seed *seed)
{
	static char path[512];
	struct audit_auditor_key keys[2];
	struct audit_rec_info info = {
		.session = seed->session, .user = "alice", .target = "pg", .login = "app", .protocol = seed->protocol,
		.database = "app", .client = "192.0.2.7:50412", .node = "fuzz", .role = "dba",
		.start_us = SEEDS_SESSION_START_US,
	};
	uint64_t ts = SEEDS_SESSION_START_US;
	struct audit_rec *rec;
	char err[256];
	size_t n = 0;
	int want = seed->close ? AUDIT_VERDICT_INTACT : AUDIT_VERDICT_INCOMPLETE;

	if (seed->both_auditors)
		keys[n++] = other;
	keys[n++] = auditor;
	rec = audit_rec_open(tmpdir, &info, keys, n, 1024, err, sizeof(err));
	if (rec == NULL) {
		fprintf(stderr, "fuzz_audit_seeds: %s\n", err);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s", audit_rec_path(rec));
	for (size_t i = 0; i < seed->nevents; i++) {
		const struct seed_event *e = &seed->events[i];

		if (e->payload == NULL) {
			seed_flush(rec);
			continue;
		}
		ts += 1000;
		audit_rec_event(rec, e->type, ts, e->payload, e->len);
	}
	seed_flush(rec);
	if (seed->close)
		audit_rec_close(rec);
	/* The writer works on its own thread: wait for the verdict the seed is meant to have. */
	for (int i = 0; i < SEEDS_WAIT_MS / 10; i++) {
		if (seed_verdict(path) == want)
			return path;
		sleep_ms(10);
	}
	fprintf(stderr, "fuzz_audit_seeds: %s did not become %s\n", path, audit_verdict_name((enum audit_verdict)want));
	return NULL;
}

/* The plain form of the recording BUF: chunks decrypted, signatures to be made again. */
static uint8_t *
seed_plain(const uint8_t *buf, size_t len, size_t *plain_len)
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t sealed[AUDIT_SEALED_LEN], skey[AUDIT_STREAM_KEYBYTES], sh[AUDIT_STREAM_HEADERBYTES];
	size_t hlen = audit_get32(buf + AUDIT_MAGIC_LEN), off, o;
	uint8_t *out = malloc(len);
	json_t *hdr, *a;
	const char *sealed_b64 = NULL;
	size_t i;

	if (out == NULL || (hdr = json_loadb((const char *)buf + AUDIT_PREAMBLE_LEN, hlen, 0, NULL)) == NULL) {
		free(out);
		return NULL;
	}
	json_array_foreach(json_object_get(hdr, "auditors"), i, a) {
		const char *id = json_string_value(json_object_get(a, "key_id"));

		if (id != NULL && strcmp(id, auditor.id) == 0)
			sealed_b64 = json_string_value(json_object_get(a, "sealed"));
	}
	if (sealed_b64 == NULL || util_b64_decode_exact(sealed_b64, sealed, sizeof(sealed)) != 0 ||
	    crypto_box_seal_open(skey, sealed, sizeof(sealed), auditor.pk, auditor.sk) != 0 ||
	    util_b64_decode_exact(json_string_value(json_object_get(hdr, "stream_header")), sh, sizeof(sh)) != 0 ||
	    crypto_secretstream_xchacha20poly1305_init_pull(&st, sh, skey) != 0) {
		json_decref(hdr);
		free(out);
		return NULL;
	}
	json_decref(hdr);
	memcpy(out, FUZZ_AUDIT_PLAIN_MAGIC, AUDIT_MAGIC_LEN);
	memcpy(out + AUDIT_MAGIC_LEN, buf + AUDIT_MAGIC_LEN, 4 + hlen);
	off = o = AUDIT_PREAMBLE_LEN + hlen;
	while (off + AUDIT_RECORD_HDR_LEN <= len) {
		uint32_t rlen = audit_get32(buf + off + 1);
		unsigned long long mlen = 0;
		unsigned char tag = 0;

		memcpy(out + o, buf + off, AUDIT_RECORD_HDR_LEN);
		if (buf[off] == AUDIT_REC_CHUNK) {
			if (crypto_secretstream_xchacha20poly1305_pull(&st, out + o + AUDIT_RECORD_HDR_LEN, &mlen, &tag,
			    buf + off + AUDIT_RECORD_HDR_LEN, rlen, buf + off, AUDIT_RECORD_HDR_LEN) != 0) {
				free(out);
				return NULL;
			}
			out[o] = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL ? FUZZ_PLAIN_FINAL : FUZZ_PLAIN_CHUNK;
			audit_put32(out + o + 1, (uint32_t)mlen);
		} else if (buf[off] == AUDIT_REC_SIG) {
			out[o] = FUZZ_PLAIN_SIGN;
			audit_put32(out + o + 1, 0);	/* the harness signs */
		} else {
			memcpy(out + o + AUDIT_RECORD_HDR_LEN, buf + off + AUDIT_RECORD_HDR_LEN, rlen);
			mlen = rlen;
		}
		o += AUDIT_RECORD_HDR_LEN + (size_t)mlen;
		off += AUDIT_RECORD_HDR_LEN + rlen;
	}
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(skey, sizeof(skey));
	*plain_len = o;
	return out;
}

/*
 * Two plain forms no writer makes, from PLAIN: a chunk right after the FINAL one
 * ("after_final"), and a chunk and a signature after the last signature ("appended").
 */
static uint8_t *
seed_plain_variant(const uint8_t *plain, size_t len, bool appended, size_t *out_len)
{
	static const char ev[] = "{\"seq\":3,\"kind\":\"query\",\"text\":\"select 3\"}";
	uint8_t extra[2 * AUDIT_RECORD_HDR_LEN + AUDIT_EVENT_HDR_LEN + sizeof(ev)], *out;
	size_t elen = sizeof(ev) - 1, xlen, at = len, off;

	/* A chunk of one statement event, and (appended) a signature to make. */
	extra[0] = FUZZ_PLAIN_CHUNK;
	audit_put32(extra + 1, (uint32_t)(AUDIT_EVENT_HDR_LEN + elen));
	audit_put64(extra + 5, SEEDS_SESSION_START_US + 999000);
	extra[AUDIT_RECORD_HDR_LEN] = AUDIT_EV_STATEMENT;
	audit_put64(extra + AUDIT_RECORD_HDR_LEN + 1, SEEDS_SESSION_START_US + 999000);
	audit_put32(extra + AUDIT_RECORD_HDR_LEN + 9, (uint32_t)elen);
	memcpy(extra + AUDIT_RECORD_HDR_LEN + AUDIT_EVENT_HDR_LEN, ev, elen);
	xlen = AUDIT_RECORD_HDR_LEN + AUDIT_EVENT_HDR_LEN + elen;
	if (appended) {
		extra[xlen] = FUZZ_PLAIN_SIGN;
		audit_put32(extra + xlen + 1, 0);
		audit_put64(extra + xlen + 5, SEEDS_SESSION_START_US + 999000);
		xlen += AUDIT_RECORD_HDR_LEN;
	} else {
		/* Right after the FINAL chunk. */
		for (off = AUDIT_PREAMBLE_LEN + audit_get32(plain + AUDIT_MAGIC_LEN); off + AUDIT_RECORD_HDR_LEN <= len;) {
			size_t rec = AUDIT_RECORD_HDR_LEN + audit_get32(plain + off + 1);

			if (plain[off] == FUZZ_PLAIN_FINAL) {
				at = off + rec;
				break;
			}
			off += rec;
		}
	}
	if ((out = malloc(len + xlen)) == NULL)
		return NULL;
	memcpy(out, plain, at);
	memcpy(out + at, extra, xlen);
	memcpy(out + at + xlen, plain + at, len - at);
	*out_len = len + xlen;
	return out;
}

static int
seed_one(const char *outdir, const struct seed *seed)
{
	char path[1024];
	uint8_t *buf, *plain;
	size_t len = 0, plen = 0;
	const char *rec = seed_write(seed);
	int r = -1;

	if (rec == NULL || (buf = slurp(rec, &len)) == NULL)
		return -1;
	plain = seed_plain(buf, len, &plen);
	snprintf(path, sizeof(path), "%s/%s.prec", outdir, seed->name);
	if (plain != NULL && spit(path, buf, len) == 0) {
		printf("%s: %zu bytes, %s\n", path, len, audit_verdict_name((enum audit_verdict)seed_verdict(rec)));
		snprintf(path, sizeof(path), "%s/%s.plain", outdir, seed->name);
		if (spit(path, plain, plen) == 0) {
			printf("%s: %zu bytes\n", path, plen);
			r = 0;
		}
		/* Beside the first recording, the plain forms that only an attacker writes. */
		for (int v = 0; r == 0 && seed == &seeds[0] && v < 2; v++) {
			size_t vlen = 0;
			uint8_t *var = seed_plain_variant(plain, plen, v == 1, &vlen);

			snprintf(path, sizeof(path), "%s/%s.plain", outdir, v == 1 ? "appended" : "after_final");
			if (var == NULL || spit(path, var, vlen) != 0)
				r = -1;
			else
				printf("%s: %zu bytes\n", path, vlen);
			free(var);
		}
	}
	if (r != 0)
		fprintf(stderr, "fuzz_audit_seeds: cannot write the seeds of %s in %s\n", seed->name, outdir);
	unlink(rec);
	free(buf);
	free(plain);
	return r;
}

static void
remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[1024];

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(tmpdir);
}

int
main(int argc, char **argv)
{
	struct audit_writer_settings set = { .queue_limit = 16u << 20 };
	char err[512];
	int r = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_audit_seeds DIR (tests/fuzz/corpus/audit): writes the seed recordings there\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	fuzz_audit_node_key(&node);
	fuzz_audit_auditor_key(FUZZ_AUDIT_AUDITOR_LABEL, &auditor);
	fuzz_audit_auditor_key(FUZZ_AUDIT_OTHER_LABEL, &other);
	if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "fuzz_audit_seeds: cannot create %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fuzz_audit_seeds-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		fprintf(stderr, "fuzz_audit_seeds: cannot create a directory in /tmp: %s\n", strerror(errno));
		return 1;
	}
	set.dir = tmpdir;
	if (audit_writer_start(&node, &set, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_audit_seeds: %s\n", err);
		remove_tmpdir();
		return 1;
	}
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		if (seed_one(argv[1], &seeds[i]) != 0)
			r = 1;
	audit_writer_stop();
	remove_tmpdir();
	return r;
}
