/*
 * libFuzzer harness for the recording reader (audit/reader.c). Each input is a recording file:
 * written to a memfd, opened with audit_file_open and checked with audit_file_check three
 * ways: against the harness's fixed node key without an auditor key, with the fixed auditor
 * key (decrypting every chunk), and against the file's own node key while the harness holds
 * the lock a writer holds. An input in the
 * harness's plain form (fuzz_audit_keys.h) is first sealed and signed with the fixed keys, so
 * mutations of the events inside the encryption still reach the event parser and the verdict
 * logic behind the signatures: what root on a relay, who holds the node key, can write.
 *
 * Besides the sanitizers' findings, a broken invariant aborts: a verdict that does not match
 * its facts (intact without the end record or with unsigned bytes, events without a key), an
 * auditor key making a verdict milder than the signatures alone, the file's own key giving
 * another answer than the same key pinned, or, for a sealed input, events that are not
 * exactly, in order, the ones that were sealed.
 *
 * The reader's mmap is replaced (meson.build compiles the reader with -Dmmap=fuzz_audit_mmap)
 * by a heap copy of the file, so ASan sees a read past the file's end: in a real mapping the
 * rest of the last page reads as zeros and nobody notices.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/reader.h"
#include "fuzz_audit_keys.h"
#include "relay/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void *fuzz_audit_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int fuzz_audit_munmap(void *addr, size_t len);

#define REQUIRE(cond) do { if (!(cond)) abort(); } while (0)

#define FUZZ_SIG_RECORD_LEN	(AUDIT_RECORD_HDR_LEN + AUDIT_SIG_LEN)
/* A plain record grows at most from a bare header to a signature record when sealed. */
#define FUZZ_SEAL_GROWTH	(FUZZ_SIG_RECORD_LEN / AUDIT_RECORD_HDR_LEN + 1)

static struct audit_node_key node;
static struct audit_auditor_key auditor;
static int file_fd = -1;
static char file_path[64];
static bool verbose;		/* FUZZ_AUDIT_VERBOSE=1: each check's answer on stderr */

/* What the event callback compares against: the sealed plaintext, or nothing (raw input). */
struct fuzz_events {
	const uint8_t *want;		/* the chunks' plaintext, in order; NULL: not known */
	size_t want_len;
	size_t off;			/* how much of WANT the events so far matched */
	uint64_t n;			/* events seen */
	uint32_t sum;			/* of every payload byte, so ASan checks each one */
};

/* One check of the file: its result and what the callback saw. */
struct fuzz_run {
	int r;				/* audit_file_check's result */
	struct audit_check c;
	struct fuzz_events ev;
};

void *
fuzz_audit_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	uint8_t *copy;

	(void)addr;
	(void)flags;
	REQUIRE(prot == PROT_READ);	/* the reader only reads its map */
	if (len == 0 || (copy = malloc(len)) == NULL) {
		errno = len == 0 ? EINVAL : ENOMEM;
		return MAP_FAILED;
	}
	if (pread(fd, copy, len, off) != (ssize_t)len) {
		free(copy);
		errno = EIO;
		return MAP_FAILED;
	}
	return copy;
}

int
fuzz_audit_munmap(void *addr, size_t len)
{
	(void)len;
	free(addr);
	return 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *v = getenv("FUZZ_AUDIT_VERBOSE");

	(void)argc;
	(void)argv;
	verbose = v != NULL && strcmp(v, "1") == 0;
	if (sodium_init() < 0)
		abort();
	fuzz_audit_node_key(&node);
	fuzz_audit_auditor_key(FUZZ_AUDIT_AUDITOR_LABEL, &auditor);
	file_fd = memfd_create("fuzz_audit", MFD_CLOEXEC);
	if (file_fd >= 0) {
		snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
		if (access(file_path, R_OK) != 0) {
			close(file_fd);
			file_fd = -1;
		}
	}
	if (file_fd < 0) {
		/* No memfd or no /proc: a file of this process's own, gone when it exits. */
		snprintf(file_path, sizeof(file_path), "/tmp/fuzz_audit.%ld.prec", (long)getpid());
		if ((file_fd = open(file_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
			abort();
		unlink(file_path);
		snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
	}
	return 0;
}

static void
fuzz_write_file(const uint8_t *data, size_t size)
{
	size_t off = 0;

	REQUIRE(ftruncate(file_fd, 0) == 0);
	while (off < size) {
		ssize_t n = pwrite(file_fd, data + off, size - off, (off_t)off);

		REQUIRE(n > 0);
		off += (size_t)n;
	}
}

static void
fuzz_on_event(const struct audit_event *ev, void *arg)
{
	struct fuzz_events *fe = arg;
	uint8_t hdr[AUDIT_EVENT_HDR_LEN];

	REQUIRE(ev->data != NULL && ev->len <= AUDIT_RECORD_MAX);
	for (size_t i = 0; i < ev->len; i++)
		fe->sum += ev->data[i];
	fe->n++;
	if (fe->want == NULL)
		return;
	hdr[0] = ev->type;
	audit_put64(hdr + 1, ev->ts_us);
	audit_put32(hdr + 9, (uint32_t)ev->len);
	REQUIRE(fe->want_len - fe->off >= sizeof(hdr) + ev->len);
	REQUIRE(memcmp(fe->want + fe->off, hdr, sizeof(hdr)) == 0);
	REQUIRE(memcmp(fe->want + fe->off + sizeof(hdr), ev->data, ev->len) == 0);
	fe->off += sizeof(hdr) + ev->len;
}

/* What every verdict must agree with, whatever the input. */
static void
fuzz_require_sane(const struct fuzz_run *run, const struct audit_auditor_key *key, size_t size, bool locked)
{
	const struct audit_check *c = &run->c;

	REQUIRE(c->verdict == AUDIT_VERDICT_INTACT || c->verdict == AUDIT_VERDICT_INCOMPLETE ||
	    c->verdict == AUDIT_VERDICT_TAMPERED);
	REQUIRE(memchr(c->what, 0, sizeof(c->what)) != NULL);
	REQUIRE(c->verdict != AUDIT_VERDICT_TAMPERED || c->what[0] != '\0');
	REQUIRE(strcmp(audit_verdict_name(c->verdict), "unknown") != 0);
	REQUIRE(c->writing == locked);	/* the harness plays the writer for one check */
	REQUIRE(c->signed_bytes <= size);
	REQUIRE(c->chunks + c->signatures + (c->ended ? 1 : 0) <= c->records);
	REQUIRE(c->events == run->ev.n);
	REQUIRE(!c->final || c->decrypted);
	if (key == NULL)
		REQUIRE(!c->decrypted && c->events == 0);
	if (c->verdict == AUDIT_VERDICT_INTACT) {
		REQUIRE(c->ended && c->signatures > 0 && c->signed_bytes == size);
		REQUIRE(key == NULL || (c->decrypted && c->final));
	}
	if (c->verdict == AUDIT_VERDICT_INCOMPLETE)
		REQUIRE(!c->ended && c->signatures > 0 && c->signed_bytes == size);
}

/*
 * Open and check the file once. -1 or -2 when it does not open (then the other ways would
 * not open it either); 0 with RUN otherwise. HDR_PK_IS_NODE: its header names the fixed node.
 */
static int
fuzz_check(const uint8_t *pk, const struct audit_auditor_key *key, const uint8_t *want, size_t want_len, size_t size,
    bool locked, struct fuzz_run *run, bool *hdr_pk_is_node)
{
	uint8_t hdr_pk[crypto_sign_PUBLICKEYBYTES];
	struct audit_file f;
	char err[512];
	int r;

	memset(run, 0, sizeof(*run));
	run->ev.want = want;
	run->ev.want_len = want_len;
	err[0] = '\0';
	r = audit_file_open(file_path, &f, err, sizeof(err));
	REQUIRE(r == 0 || r == -1 || r == -2);
	if (r != 0) {
		if (verbose)
			fprintf(stderr, "open: %d: %s\n", r, err);
		REQUIRE(err[0] != '\0' && memchr(err, 0, sizeof(err)) != NULL);
		REQUIRE(f.header == NULL && f.fd < 0 && f.map == NULL);
		audit_file_close(&f);
		return r;
	}
	REQUIRE(json_is_object(f.header) && f.body >= AUDIT_PREAMBLE_LEN + 1 && f.body <= size && f.size == size);
	(void)audit_file_str(&f, "user");
	(void)audit_file_start_us(&f);
	*hdr_pk_is_node = util_b64_decode_exact(audit_file_str(&f, "node_key"), hdr_pk, sizeof(hdr_pk)) == 0 &&
	    memcmp(hdr_pk, node.pk, sizeof(hdr_pk)) == 0;
	err[0] = '\0';
	run->r = audit_file_check(&f, pk, key, fuzz_on_event, &run->ev, &run->c, err, sizeof(err));
	REQUIRE(run->r == 0 || run->r == -1);
	if (verbose)
		fprintf(stderr, "check, %s node key, %s: %s: %s (records %llu, chunks %llu, signatures %llu, events %llu)\n",
		    pk ? "pinned" : "own", key ? "auditor key" : "no key",
		    run->r ? "cannot read" : audit_verdict_name(run->c.verdict), run->r ? err : run->c.what,
		    (unsigned long long)run->c.records, (unsigned long long)run->c.chunks,
		    (unsigned long long)run->c.signatures, (unsigned long long)run->c.events);
	if (run->r != 0) {
		/* Only an auditor key the file is not sealed to, or out of memory, stops a check. */
		REQUIRE(key != NULL && err[0] != '\0' && memchr(err, 0, sizeof(err)) != NULL);
		REQUIRE(run->ev.n == 0);
	} else {
		fuzz_require_sane(run, key, size, locked);
		REQUIRE(run->c.trusted_key == (pk != NULL) || run->c.verdict == AUDIT_VERDICT_TAMPERED);
	}
	audit_file_close(&f);
	return 0;
}

/* Check the file three ways and hold the answers against each other. */
static void
fuzz_check_all(const uint8_t *want, size_t want_len, size_t size)
{
	static struct fuzz_run pinned, keyed, own;
	bool is_node = false;

	if (fuzz_check(node.pk, NULL, NULL, 0, size, false, &pinned, &is_node) != 0)
		return;
	REQUIRE(pinned.r == 0);
	(void)fuzz_check(node.pk, &auditor, want, want_len, size, false, &keyed, &is_node);
	/* The last check while the harness holds the writer's lock: "being written now". */
	REQUIRE(flock(file_fd, LOCK_EX | LOCK_NB) == 0);
	(void)fuzz_check(NULL, NULL, NULL, 0, size, true, &own, &is_node);
	REQUIRE(flock(file_fd, LOCK_UN) == 0);
	REQUIRE(own.r == 0);

	/* The file's own key, when it is the pinned one, gives the pinned answer. */
	if (is_node) {
		REQUIRE(own.c.verdict == pinned.c.verdict && own.c.records == pinned.c.records);
		REQUIRE(own.c.signatures == pinned.c.signatures && own.c.signed_bytes == pinned.c.signed_bytes);
		if (own.c.verdict == AUDIT_VERDICT_INCOMPLETE)
			REQUIRE(strcmp(own.c.what, "being written now") == 0);
		else
			REQUIRE(strcmp(own.c.what, pinned.c.what) == 0);
	} else {
		REQUIRE(pinned.c.verdict == AUDIT_VERDICT_TAMPERED);
	}
	if (keyed.r != 0)
		return;
	/* A key only adds checks: never a milder verdict than the signatures alone. */
	if (pinned.c.verdict == AUDIT_VERDICT_TAMPERED)
		REQUIRE(keyed.c.verdict == AUDIT_VERDICT_TAMPERED);
	if (keyed.c.verdict != AUDIT_VERDICT_TAMPERED)
		REQUIRE(keyed.c.verdict == pinned.c.verdict);
	/* A sealed input that verifies gave back every event that was sealed, and no other. */
	if (want != NULL && keyed.c.verdict != AUDIT_VERDICT_TAMPERED)
		REQUIRE(keyed.ev.off == want_len);
}

/* The stream key and header the reader will find in HDR for the fixed auditor, into ST. */
static bool
fuzz_stream_of_header(const uint8_t *hdr, size_t hlen, crypto_secretstream_xchacha20poly1305_state *st)
{
	uint8_t sealed[AUDIT_SEALED_LEN], skey[AUDIT_STREAM_KEYBYTES], sh[AUDIT_STREAM_HEADERBYTES];
	json_t *j = json_loadb((const char *)hdr, hlen, JSON_REJECT_DUPLICATES, NULL), *a;
	const char *sealed_b64 = NULL, *sh_b64;
	bool ok = false;
	size_t i;

	/* The reader's choice: the last entry that names the key. */
	json_array_foreach(json_object_get(j, "auditors"), i, a) {
		const char *id = json_string_value(json_object_get(a, "key_id"));

		if (id != NULL && strcmp(id, auditor.id) == 0)
			sealed_b64 = json_string_value(json_object_get(a, "sealed"));
	}
	sh_b64 = json_string_value(json_object_get(j, "stream_header"));
	if (sealed_b64 != NULL && util_b64_decode_exact(sealed_b64, sealed, sizeof(sealed)) == 0 &&
	    crypto_box_seal_open(skey, sealed, sizeof(sealed), auditor.pk, auditor.sk) == 0 &&
	    util_b64_decode_exact(sh_b64 ? sh_b64 : "", sh, sizeof(sh)) == 0)
		ok = crypto_secretstream_xchacha20poly1305_init_pull(st, sh, skey) == 0;
	if (!ok) {
		/* The reader will not open it either; seal with something. */
		memset(skey, 0, sizeof(skey));
		memset(sh, 0, sizeof(sh));
		(void)crypto_secretstream_xchacha20poly1305_init_pull(st, sh, skey);
	}
	json_decref(j);
	return ok;
}

static void
fuzz_put_record_header(uint8_t *h, uint8_t type, uint32_t len, uint64_t ts)
{
	h[0] = type;
	audit_put32(h + 1, len);
	audit_put64(h + 5, ts);
}

/*
 * Seal the plain form IN into a recording in OUT (room for FUZZ_SEAL_GROWTH times IN, plus a
 * preamble): chunks encrypted in order with the stream of the header, signatures made with the
 * node key over the running hash, the rest copied. The chunks' plaintext, in order, into
 * PLAIN (room for SIZE). Returns the recording's length.
 */
static size_t
fuzz_seal(const uint8_t *in, size_t size, uint8_t *out, uint8_t *plain, size_t *plain_len)
{
	/* A pull state is the push state of the same key and header: libsodium derives both alike. */
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t digest[AUDIT_HASH_LEN], msg[AUDIT_SIG_CONTEXT_LEN + AUDIT_HASH_LEN];
	struct audit_hash hash;
	size_t off, o, hlen;

	*plain_len = 0;
	memcpy(out, AUDIT_MAGIC, AUDIT_MAGIC_LEN);
	memcpy(out + AUDIT_MAGIC_LEN, in + AUDIT_MAGIC_LEN, size - AUDIT_MAGIC_LEN);
	hlen = audit_get32(in + AUDIT_MAGIC_LEN);
	if (hlen > size - AUDIT_PREAMBLE_LEN)
		return size;	/* the reader refuses the header: nothing to seal */
	off = o = AUDIT_PREAMBLE_LEN + hlen;
	(void)fuzz_stream_of_header(in + AUDIT_PREAMBLE_LEN, hlen, &st);
	REQUIRE(audit_hash_init(&hash) == 0);
	audit_hash_update(&hash, out, o);
	while (off < size) {
		const uint8_t *h = in + off;
		uint8_t *w = out + o;
		uint32_t len;
		uint64_t ts;
		size_t rec;

		if (size - off < AUDIT_RECORD_HDR_LEN || audit_get32(h + 1) > size - off - AUDIT_RECORD_HDR_LEN ||
		    audit_get32(h + 1) > AUDIT_RECORD_MAX - AUDIT_STREAM_ABYTES) {
			memcpy(w, h, size - off);	/* a cut record: the reader must say so */
			o += size - off;
			break;
		}
		len = audit_get32(h + 1);
		ts = audit_get64(h + 5);
		rec = AUDIT_RECORD_HDR_LEN + len;
		switch (h[0]) {
		case FUZZ_PLAIN_CHUNK:
		case FUZZ_PLAIN_FINAL:
		case FUZZ_PLAIN_REKEY:
			fuzz_put_record_header(w, AUDIT_REC_CHUNK, len + AUDIT_STREAM_ABYTES, ts);
			crypto_secretstream_xchacha20poly1305_push(&st, w + AUDIT_RECORD_HDR_LEN, NULL, h + AUDIT_RECORD_HDR_LEN,
			    len, w, AUDIT_RECORD_HDR_LEN, h[0] == FUZZ_PLAIN_FINAL ? crypto_secretstream_xchacha20poly1305_TAG_FINAL :
			    h[0] == FUZZ_PLAIN_REKEY ? crypto_secretstream_xchacha20poly1305_TAG_REKEY :
			    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
			memcpy(plain + *plain_len, h + AUDIT_RECORD_HDR_LEN, len);
			*plain_len += len;
			o += rec + AUDIT_STREAM_ABYTES;
			break;
		case FUZZ_PLAIN_SIGN:
			REQUIRE(audit_hash_peek(&hash, digest) == 0);
			audit_sig_message(digest, msg);
			fuzz_put_record_header(w, AUDIT_REC_SIG, AUDIT_SIG_LEN, ts);
			crypto_sign_detached(w + AUDIT_RECORD_HDR_LEN, NULL, msg, sizeof(msg), node.sk);
			o += FUZZ_SIG_RECORD_LEN;
			break;
		case FUZZ_PLAIN_RAW_SIG:
			memcpy(w, h, rec);
			w[0] = AUDIT_REC_SIG;
			o += rec;
			break;
		default:
			memcpy(w, h, rec);
			o += rec;
			break;
		}
		audit_hash_update(&hash, w, (size_t)(out + o - w));
		off += rec;
	}
	audit_hash_free(&hash);
	sodium_memzero(&st, sizeof(st));
	return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *sealed, *plain;
	size_t n, plain_len;

	if (size < AUDIT_PREAMBLE_LEN || memcmp(data, FUZZ_AUDIT_PLAIN_MAGIC, AUDIT_MAGIC_LEN) != 0) {
		fuzz_write_file(data, size);
		fuzz_check_all(NULL, 0, size);
		return 0;
	}
	sealed = malloc(size * FUZZ_SEAL_GROWTH + AUDIT_PREAMBLE_LEN);
	plain = malloc(size);
	REQUIRE(sealed != NULL && plain != NULL);
	n = fuzz_seal(data, size, sealed, plain, &plain_len);
	fuzz_write_file(sealed, n);
	fuzz_check_all(plain, plain_len, n);
	free(sealed);
	free(plain);
	return 0;
}
