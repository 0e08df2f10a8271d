/*
 * Unit tests of the recording format: the writer thread writes a recording, the reader checks
 * it, and every way of changing the file (a flipped byte, a cut, a dropped or swapped chunk,
 * a changed header, a removed signature, another node's key) is reported as tampered, while a
 * cut exactly after a signature (what a crash leaves) is reported as incomplete.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/format.h"
#include "audit/reader.h"
#include "audit/stream.h"
#include "audit/writer.h"
#include "check.h"
#include "relay/config.h"

static char dir[256];
static struct audit_node_key node;
static struct audit_auditor_key auditor, auditor_pub, stranger;

struct rec_pos {
	size_t off, len;	/* a record: its offset and total length (header, payload) */
	uint8_t type;
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
	uint8_t *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	*len = fread(buf, 1, (size_t)n, f);
	fclose(f);
	return buf;
}

static void
spit(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	fwrite(buf, 1, len, f);
	fclose(f);
}

/* The records of BUF, after the header. */
static size_t
records(const uint8_t *buf, size_t len, struct rec_pos *out, size_t max)
{
	size_t off = AUDIT_PREAMBLE_LEN + audit_get32(buf + AUDIT_MAGIC_LEN), n = 0;

	while (off + AUDIT_RECORD_HDR_LEN <= len && n < max) {
		size_t total = AUDIT_RECORD_HDR_LEN + audit_get32(buf + off + 1);

		out[n++] = (struct rec_pos){ off, total, buf[off] };
		off += total;
	}
	return n;
}

struct seen {
	int events, statements;
	char last_text[256];
	uint8_t types[64];
};

static void
collect(const struct audit_event *ev, void *arg)
{
	struct seen *s = arg;

	if (s->events < 64)
		s->types[s->events] = ev->type;
	s->events++;
	if (ev->type == AUDIT_EV_STATEMENT) {
		s->statements++;
		snprintf(s->last_text, sizeof(s->last_text), "%.*s", (int)ev->len, (const char *)ev->data);
	}
}

/* Check PATH with the node key and KEY (or none); the verdict, -1 when it cannot be read. */
static int
verdict(const char *path, const struct audit_auditor_key *key, const uint8_t *node_pk, struct seen *seen,
    struct audit_check *out)
{
	struct audit_file f;
	struct audit_check c;
	char err[512];
	int r;

	r = audit_file_open(path, &f, err, sizeof(err));
	if (r == -2) {
		audit_file_close(&f);
		return AUDIT_VERDICT_TAMPERED;
	}
	if (r != 0)
		return -1;
	r = audit_file_check(&f, node_pk, key, seen ? collect : NULL, seen, &c, err, sizeof(err));
	audit_file_close(&f);
	if (out != NULL)
		*out = c;
	if (r != 0) {
		printf("# %s\n", err);
		return -1;
	}
	return (int)c.verdict;
}

static void
wait_written(uint64_t chunks)
{
	struct audit_writer_stats st;

	for (int i = 0; i < 500; i++) {
		audit_writer_get_stats(&st);
		if (st.chunks >= chunks)
			return;
		sleep_ms(10);
	}
}

/*
 * A recording with a start event, a statement, and enough data for several chunks over three
 * batches (so a cut after a middle signature is possible). Returns its path (static).
 */
static struct audit_rec *left_open;	/* the recording write_recording left open */

static const char *
write_recording(const char *session, bool close)
{
	static char path[512];
	struct audit_rec_info info = {
		.session = session, .user = "alice", .target = "pg", .login = "app", .protocol = "postgres",
		.client = "127.0.0.1:5000", .node = "test", .start_us = audit_now_us(),
	};
	struct audit_writer_stats st;
	char err[256], start[256];
	uint8_t data[3000];
	struct audit_rec *rec;

	audit_writer_get_stats(&st);
	rec = audit_rec_open(dir, &info, &auditor_pub, 1, 4096, err, sizeof(err));
	if (rec == NULL) {
		printf("# %s\n", err);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s", audit_rec_path(rec));
	snprintf(start, sizeof(start), "{\"session\":\"%s\",\"user\":\"alice\",\"target\":\"pg\",\"protocol\":\"postgres\"}", session);
	audit_rec_event(rec, AUDIT_EV_START, audit_now_us(), start, strlen(start));
	audit_rec_event(rec, AUDIT_EV_STATEMENT, audit_now_us(), "{\"seq\":1,\"text\":\"select 1\"}", 27);
	memset(data, 'x', sizeof(data));
	for (int batch = 0; batch < 3; batch++) {
		for (int i = 0; i < 3; i++)
			audit_rec_event(rec, AUDIT_EV_DOWN, audit_now_us(), data, sizeof(data));
		(void)audit_rec_flush(rec);
		wait_written(st.chunks + 3 * (uint64_t)(batch + 1));
	}
	audit_rec_event(rec, AUDIT_EV_STATEMENT, audit_now_us(), "{\"seq\":2,\"text\":\"select 2\"}", 27);
	if (!close)
		left_open = rec;
	if (close) {
		audit_rec_close(rec);
		wait_written(st.chunks + 10);
		for (int i = 0; i < 200 && verdict(path, NULL, node.pk, NULL, NULL) != AUDIT_VERDICT_INTACT; i++)
			sleep_ms(10);
	}
	return path;
}

static int
copy_and_check(const char *src, const char *name, void (*mutate)(uint8_t *buf, size_t *len, struct rec_pos *r, size_t n),
    const struct audit_auditor_key *key, struct audit_check *out)
{
	char path[512];
	struct rec_pos r[256];
	size_t len, n;
	uint8_t *buf = slurp(src, &len);
	int v;

	n = records(buf, len, r, 256);
	mutate(buf, &len, r, n);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	spit(path, buf, len);
	free(buf);
	v = verdict(path, key, node.pk, NULL, out);
	unlink(path);
	return v;
}

static const char *intact_path;

static void
test_a_closed_recording_is_intact_and_its_events_decrypt_in_order(void)
{
	struct seen seen = { 0 };
	struct audit_check c;

	CHECK(intact_path != NULL);
	CHECK(verdict(intact_path, &auditor, node.pk, &seen, &c) == AUDIT_VERDICT_INTACT);
	CHECK(c.final && c.ended && c.trusted_key && c.decrypted);
	CHECK(seen.events == 12);
	CHECK(seen.types[0] == AUDIT_EV_START && seen.types[1] == AUDIT_EV_STATEMENT && seen.types[11] == AUDIT_EV_STATEMENT);
	CHECK_CONTAINS(seen.last_text, "select 2");
}

static void
test_without_a_key_signatures_alone_say_intact(void)
{
	struct audit_check c;

	CHECK(verdict(intact_path, NULL, node.pk, NULL, &c) == AUDIT_VERDICT_INTACT);
	CHECK(!c.decrypted && c.signatures >= 4);
}

static void
test_the_file_is_private_and_holds_no_plaintext(void)
{
	struct stat st;
	size_t len;
	uint8_t *buf = slurp(intact_path, &len);

	CHECK(stat(intact_path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(memmem(buf, len, "select 1", 8) == NULL);
	CHECK(memmem(buf, len, "xxxxxxxx", 8) == NULL);
	CHECK(memmem(buf, len, "\"user\":\"alice\"", 14) != NULL);	/* the header is plaintext */
	free(buf);
}

static void
flip_chunk_byte(uint8_t *buf, size_t *len, struct rec_pos *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].type == AUDIT_REC_CHUNK && i > 2) {
			buf[r[i].off + AUDIT_RECORD_HDR_LEN + 100] ^= 0x01;
			return;
		}
}

static void
test_one_flipped_byte_is_tampered(void)
{
	struct audit_check c;

	CHECK(copy_and_check(intact_path, "flip.prec", flip_chunk_byte, NULL, &c) == AUDIT_VERDICT_TAMPERED);
	CHECK_CONTAINS(c.what, "signature");
	CHECK(copy_and_check(intact_path, "flip.prec", flip_chunk_byte, &auditor, &c) == AUDIT_VERDICT_TAMPERED);
	CHECK_CONTAINS(c.what, "does not decrypt");
}

static void
cut_inside_a_record(uint8_t *buf, size_t *len, struct rec_pos *r, size_t n)
{
	*len = r[n - 1].off + 10;
}

static void
cut_after_a_middle_signature(uint8_t *buf, size_t *len, struct rec_pos *r, size_t n)
{
	for (size_t i = 0, sigs = 0; i < n; i++)
		if (r[i].type == AUDIT_REC_SIG && ++sigs == 2) {
			*len = r[i].off + r[i].len;
			return;
		}
}

static void
test_a_cut_inside_a_record_is_tampered(void)
{
	struct audit_check c;

	CHECK(copy_and_check(intact_path, "cut.prec", cut_inside_a_record, NULL, &c) == AUDIT_VERDICT_TAMPERED);
	CHECK_CONTAINS(c.what, "cut");
}

static void
test_a_cut_after_a_signature_is_incomplete_with_the_last_time(void)
{
	struct audit_check c;

	CHECK(copy_and_check(intact_path, "crash.prec", cut_after_a_middle_signature, &auditor, &c) == AUDIT_VERDICT_INCOMPLETE);
	CHECK(c.last_ts > 0 && !c.ended);
	CHECK_CONTAINS(c.what, "stopped");
}

static void
drop_a_chunk(uint8_t *buf, size_t *len, struct rec_pos *r, size_t n)
{
	for (size_t i = 0, chunks = 0; i < n; i++)
		if (r[i].type == AUDIT_REC_CHUNK && ++chunks == 2) {
			memmove(buf + r[i].off, buf + r[i].off + r[i].len, *len - r[i].off - r[i].len);
			*len -= r[i].len;
			return;
		}
}

/* Swap the first two chunks of the same length (the data chunks), wherever they are. */
static void
swap_two_chunks(uint8_t *buf, size_t *len, struct rec_pos *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n && r[i].type == AUDIT_REC_CHUNK; j++)
			if (r[j].type == AUDIT_REC_CHUNK && r[i].len == r[j].len) {
				uint8_t tmp[8192];

				memcpy(tmp, buf + r[i].off, r[i].len);
				memcpy(buf + r[i].off, buf + r[j].off, r[i].len);
				memcpy(buf + r[j].off, tmp, r[i].len);
				return;
			}
}

static void
test_a_dropped_chunk_is_tampered(void)
{
	struct audit_check c;

	CHECK(copy_and_check(intact_path, "drop.prec", drop_a_chunk, NULL, &c) == AUDIT_VERDICT_TAMPERED);
	CHECK(copy_and_check(intact_path, "drop.prec", drop_a_chunk, &auditor, &c) == AUDIT_VERDICT_TAMPERED);
	CHECK_CONTAINS(c.what, "does not decrypt");
}

static void
test_swapped_chunks_are_tampered(void)
{
	struct audit_check c;

	CHECK(copy_and_check(intact_path, "swap.prec", swap_two_chunks, NULL, &c) == AUDIT_VERDICT_TAMPERED);
	CHECK(copy_and_check(intact_path, "swap.prec", swap_two_chunks, &auditor, &c) == AUDIT_VERDICT_TAMPERED);
}

static void
replace_user(uint8_t *buf, size_t *len, struct rec_pos *r, size_t n)
{
	uint8_t *p = memmem(buf, *len, "\"user\":\"alice\"", 14);

	if (p != NULL)
		memcpy(p + 8, "alicf", 5);
}

static void
test_a_changed_header_user_is_tampered(void)
{
	struct audit_check c;

	CHECK(copy_and_check(intact_path, "user.prec", replace_user, NULL, &c) == AUDIT_VERDICT_TAMPERED);
	CHECK_CONTAINS(c.what, "signature");
}

static void
remove_last_signature(uint8_t *buf, size_t *len, struct rec_pos *r, size_t n)
{
	if (r[n - 1].type == AUDIT_REC_SIG)
		*len = r[n - 1].off;
}

static void
test_a_removed_signature_is_tampered(void)
{
	struct audit_check c;

	CHECK(copy_and_check(intact_path, "nosig.prec", remove_last_signature, NULL, &c) == AUDIT_VERDICT_TAMPERED);
	CHECK_CONTAINS(c.what, "not signed");
}

static void
append_garbage(uint8_t *buf, size_t *len, struct rec_pos *r, size_t n)
{
	memcpy(buf + *len - 13, "\x47\x00\x00\x00\x40", 5);
}

static void
test_changed_bytes_in_the_last_signature_are_tampered(void)
{
	CHECK(copy_and_check(intact_path, "sig.prec", append_garbage, NULL, NULL) == AUDIT_VERDICT_TAMPERED);
}

static void
test_another_node_key_is_tampered(void)
{
	uint8_t other_pk[crypto_sign_PUBLICKEYBYTES], other_sk[crypto_sign_SECRETKEYBYTES];
	struct audit_check c;

	crypto_sign_keypair(other_pk, other_sk);
	CHECK(verdict(intact_path, NULL, other_pk, NULL, &c) == AUDIT_VERDICT_TAMPERED);
	CHECK_CONTAINS(c.what, "not the trusted one");
}

static void
test_a_key_it_was_not_sealed_to_cannot_read_it(void)
{
	CHECK(verdict(intact_path, &stranger, node.pk, NULL, NULL) == -1);
}

static void
test_an_unclosed_recording_verifies_as_incomplete_and_being_written(void)
{
	struct audit_check c;
	const char *path = write_recording("00000000000000b2", false);

	CHECK(path != NULL);
	CHECK(verdict(path, &auditor, node.pk, NULL, &c) == AUDIT_VERDICT_INCOMPLETE);
	CHECK(c.writing);
	CHECK_CONTAINS(c.what, "being written");
	audit_rec_close(left_open);
	for (int i = 0; i < 200 && verdict(path, &auditor, node.pk, NULL, &c) != AUDIT_VERDICT_INTACT; i++)
		sleep_ms(10);
	CHECK(c.verdict == AUDIT_VERDICT_INTACT && !c.writing);
}

static char failed_session[17], failed_why[512];
static bool failed_healthy = true;

/* The writer's failure hook: what it saw, for the test thread once failed_session is set. */
static void
on_failure(const char *session, const char *reason)
{
	failed_healthy = audit_writer_healthy(failed_why, sizeof(failed_why));
	__atomic_store_n(&failed_session[0], 0, __ATOMIC_RELEASE);
	snprintf(failed_session + 1, sizeof(failed_session) - 1, "%s", session + 1);
	__atomic_store_n(&failed_session[0], session[0], __ATOMIC_RELEASE);
}

static void
test_a_recording_that_cannot_be_written_makes_recording_unavailable_until_a_probe_passes(void)
{
	struct audit_rec_info info = { .session = "00000000000000d4", .start_us = audit_now_us() };
	struct audit_rec *rec;
	char err[256], why[512] = "";

	audit_writer_on_failure(on_failure);
	rec = audit_rec_open(dir, &info, &auditor_pub, 1, 4096, err, sizeof(err));
	CHECK(rec != NULL);
	/* Something already sits where the file goes: the writer cannot create it. */
	CHECK(symlink("/dev/full", audit_rec_path(rec)) == 0);
	audit_rec_event(rec, AUDIT_EV_UP, audit_now_us(), "x", 1);
	audit_rec_close(rec);
	for (int i = 0; i < 300 && __atomic_load_n(&failed_session[0], __ATOMIC_ACQUIRE) == 0; i++)
		sleep_ms(10);
	CHECK_STR(failed_session, "00000000000000d4");
	CHECK(!failed_healthy);
	CHECK_CONTAINS(failed_why, "cannot create");
	audit_writer_check_now();	/* the directory itself is fine: a test write passes */
	CHECK(audit_writer_healthy(why, sizeof(why)));
	audit_writer_on_failure(NULL);
}

static void
test_a_full_queue_drops_and_counts_instead_of_blocking(void)
{
	struct audit_writer_settings set = { .dir = dir, .queue_limit = 1 };
	struct audit_rec_info info = { .session = "00000000000000c3", .start_us = audit_now_us() };
	struct audit_rec *rec;
	char err[256];
	uint8_t data[100] = { 0 };

	audit_writer_configure(&set);
	rec = audit_rec_open(dir, &info, &auditor_pub, 1, 4096, err, sizeof(err));
	CHECK(rec != NULL);
	audit_rec_event(rec, AUDIT_EV_UP, audit_now_us(), data, sizeof(data));
	CHECK(audit_rec_flush(rec) == -1);
	CHECK(audit_rec_dropped(rec) == AUDIT_EVENT_HDR_LEN + sizeof(data));
	audit_rec_close(rec);
	set.queue_limit = 64u << 20;
	audit_writer_configure(&set);
}

static void
test_key_files_round_trip_and_refuse_the_wrong_kind(void)
{
	struct audit_auditor_key k;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	char path[512], err[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/aud.key", dir);
	CHECK(audit_key_read(path, &k, err, sizeof(err)) == 0 && k.has_secret);
	CHECK(memcmp(k.pk, auditor.pk, sizeof(k.pk)) == 0 && strcmp(k.id, auditor.id) == 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(audit_key_generate(path, NULL, &k, err, sizeof(err)) != 0);	/* never overwrites */
	CHECK(audit_node_key_read_public(path, pk, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "not a relay node key file");
	snprintf(path, sizeof(path), "%s/audit_node.pub", dir);
	CHECK(audit_node_key_read_public(path, pk, err, sizeof(err)) == 0 && memcmp(pk, node.pk, sizeof(pk)) == 0);
}

static void
test_the_openssl_stream_writes_exactly_what_libsodium_writes(void)
{
	static const size_t lens[] = { 0, 1, 15, 16, 17, 63, 64, 65, 100, 4096, 65536 + 13, 200000, 7 };
	uint8_t key[AUDIT_STREAM_KEYBYTES], h1[AUDIT_STREAM_HEADERBYTES], h2[AUDIT_STREAM_HEADERBYTES];
	uint8_t ad[AUDIT_RECORD_HDR_LEN] = { 'C', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	size_t max = 200000 + AUDIT_STREAM_ABYTES;
	uint8_t *m = malloc(max), *a = malloc(max), *b = malloc(max), *back = malloc(max);
	crypto_secretstream_xchacha20poly1305_state pull;
	struct audit_stream fast, ref;
	size_t n = sizeof(lens) / sizeof(lens[0]);

	randombytes_buf(key, sizeof(key));
	randombytes_buf(m, max);
	audit_stream_init(&fast, h1, key);
	CHECK(fast.cipher != NULL && fast.mac != NULL);
	audit_stream_init(&ref, h2, key);
	audit_stream_use_libsodium(&ref);
	memcpy(ref.st.nonce, fast.st.nonce, sizeof(ref.st.nonce));	/* the same random header for both */
	memcpy(ref.st.k, fast.st.k, sizeof(ref.st.k));
	CHECK(crypto_secretstream_xchacha20poly1305_init_pull(&pull, h1, key) == 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t tag = i == n - 1 ? crypto_secretstream_xchacha20poly1305_TAG_FINAL :
		    i == 5 ? crypto_secretstream_xchacha20poly1305_TAG_REKEY : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
		unsigned long long blen = 0;
		unsigned char got = 0xff;

		audit_stream_push(&fast, a, m, lens[i], ad, i % 2 ? sizeof(ad) : 0, tag);
		audit_stream_push(&ref, b, m, lens[i], ad, i % 2 ? sizeof(ad) : 0, tag);
		CHECK(memcmp(a, b, lens[i] + AUDIT_STREAM_ABYTES) == 0);
		CHECK(memcmp(&fast.st, &ref.st, sizeof(fast.st)) == 0);
		CHECK(crypto_secretstream_xchacha20poly1305_pull(&pull, back, &blen, &got, a, lens[i] + AUDIT_STREAM_ABYTES, ad,
		    i % 2 ? sizeof(ad) : 0) == 0);
		CHECK(blen == lens[i] && got == tag && memcmp(back, m, lens[i]) == 0);
	}
	audit_stream_free(&fast);
	audit_stream_free(&ref);
	free(m);
	free(a);
	free(b);
	free(back);
}

/* Load a config of TEXT (state_dir added); the config, or NULL with *ERRORS. */
static struct config *
load_config(const char *text, char **errors)
{
	struct config *cfg = NULL;
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/posternd.lua", dir);
	f = fopen(path, "w");
	fprintf(f, "state_dir = \"%s\"\n%s", dir, text);
	fclose(f);
	*errors = NULL;
	if (config_load(path, &cfg, errors) != 0)
		return NULL;
	return cfg;
}

static void
test_config_reads_auditor_public_keys_and_audit_settings(void)
{
	char text[1024], *errors;
	struct config *cfg;

	snprintf(text, sizeof(text), "auditor_keys = { \"%s/aud.key.pub\" }\naudit_chunk_size = \"128K\"\n"
	    "audit_retention_bytes = \"2G\"\naudit_min_free = 1048576\naudit_flush_interval = 0.5\n"
	    "audit_on_failure = \"allow\"\naudit_retention_days = 30\n", dir);
	cfg = load_config(text, &errors);
	CHECK(cfg != NULL);
	if (cfg == NULL) {
		printf("# %s\n", errors);
		free(errors);
		return;
	}
	CHECK(cfg->nauditor_keys == 1 && strcmp(cfg->auditor_keys[0].id, auditor.id) == 0);
	CHECK(cfg->audit_chunk_size == 128u << 10 && cfg->audit_retention_bytes == 2ull << 30);
	CHECK(cfg->audit_min_free == 1048576 && cfg->audit_flush_interval == 0.5 && !cfg->audit_refuse);
	CHECK(cfg->audit_retention_days == 30);
	CHECK_CONTAINS(cfg->audit_dir, "/audit");
	config_unref(cfg);
}

static void
test_config_refuses_a_secret_auditor_key_and_bad_audit_values(void)
{
	char text[1024], *errors;

	snprintf(text, sizeof(text), "auditor_keys = { \"%s/aud.key\" }\n", dir);
	CHECK(load_config(text, &errors) == NULL);
	CHECK_CONTAINS(errors, "is an auditor's secret key");
	free(errors);
	CHECK(load_config("audit_on_failure = \"maybe\"\n", &errors) == NULL);
	CHECK_CONTAINS(errors, "audit_on_failure \"maybe\" is not one of refuse");
	free(errors);
	CHECK(load_config("audit_chunk_size = \"12Q\"\n", &errors) == NULL);
	CHECK_CONTAINS(errors, "posternd.lua:2: audit_chunk_size must be a size");
	free(errors);
	CHECK(load_config("auditor_keys = { \"/nonexistent.pub\" }\n", &errors) == NULL);
	CHECK_CONTAINS(errors, "cannot read key file /nonexistent.pub");
	free(errors);
}

static void
test_the_node_key_survives_a_restart(void)
{
	struct audit_node_key again;
	char err[256];

	CHECK(audit_node_key_load(dir, "test", &again, err, sizeof(err)) == 0);
	CHECK(memcmp(again.pk, node.pk, sizeof(node.pk)) == 0);
}

int
main(void)
{
	struct audit_writer_settings set = { .queue_limit = 64u << 20 };
	char path[512], err[512];
	int r;

	if (sodium_init() < 0)
		return 1;
	snprintf(dir, sizeof(dir), "/tmp/postern-test-audit-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	set.dir = dir;
	if (audit_node_key_load(dir, "test", &node, err, sizeof(err)) != 0) {
		printf("# %s\n", err);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/aud.key", dir);
	if (audit_key_generate(path, "test auditor", &auditor, err, sizeof(err)) != 0)
		return 1;
	snprintf(path, sizeof(path), "%s/aud.key.pub", dir);
	if (audit_key_read(path, &auditor_pub, err, sizeof(err)) != 0 || auditor_pub.has_secret)
		return 1;
	snprintf(path, sizeof(path), "%s/stranger.key", dir);
	if (audit_key_generate(path, NULL, &stranger, err, sizeof(err)) != 0)
		return 1;
	if (audit_writer_start(&node, &set, err, sizeof(err)) != 0) {
		printf("# %s\n", err);
		return 1;
	}
	intact_path = write_recording("00000000000000a1", true);

	TEST(test_a_closed_recording_is_intact_and_its_events_decrypt_in_order);
	TEST(test_without_a_key_signatures_alone_say_intact);
	TEST(test_the_file_is_private_and_holds_no_plaintext);
	TEST(test_one_flipped_byte_is_tampered);
	TEST(test_a_cut_inside_a_record_is_tampered);
	TEST(test_a_cut_after_a_signature_is_incomplete_with_the_last_time);
	TEST(test_a_dropped_chunk_is_tampered);
	TEST(test_swapped_chunks_are_tampered);
	TEST(test_a_changed_header_user_is_tampered);
	TEST(test_a_removed_signature_is_tampered);
	TEST(test_changed_bytes_in_the_last_signature_are_tampered);
	TEST(test_another_node_key_is_tampered);
	TEST(test_a_key_it_was_not_sealed_to_cannot_read_it);
	TEST(test_an_unclosed_recording_verifies_as_incomplete_and_being_written);
	TEST(test_a_recording_that_cannot_be_written_makes_recording_unavailable_until_a_probe_passes);
	TEST(test_a_full_queue_drops_and_counts_instead_of_blocking);
	TEST(test_key_files_round_trip_and_refuse_the_wrong_kind);
	TEST(test_the_node_key_survives_a_restart);
	TEST(test_the_openssl_stream_writes_exactly_what_libsodium_writes);
	TEST(test_config_reads_auditor_public_keys_and_audit_settings);
	TEST(test_config_refuses_a_secret_auditor_key_and_bad_audit_values);
	audit_writer_stop();
	r = CHECK_DONE();
	if (r == 0) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
	return r;
}
