/*
 * Pieces of the recording format both sides need: the running SHA-256 (OpenSSL, so the CPU's
 * SHA extensions carry it), the signed message, and the key files. Key files are one line of
 * text each, `TAG BASE64 [comment]`, so an operator can tell them apart and paste them.
 */
#include "audit/format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "relay/util.h"

#define AUDIT_TAG_AUDITOR_PUB	"postern-audit-x25519"
#define AUDIT_TAG_AUDITOR_SEC	"postern-audit-x25519-secret"
#define AUDIT_TAG_NODE_PUB	"postern-node-ed25519"
#define AUDIT_TAG_NODE_SEC	"postern-node-ed25519-secret"
#define AUDIT_KEY_LINE_MAX	512
#define AUDIT_NODE_KEY_FILE	"audit_node.key"
#define AUDIT_NODE_PUB_FILE	"audit_node.pub"

uint64_t
audit_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
audit_hash_init(struct audit_hash *h)
{
	if ((h->ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
		return -1;
	}
	return 0;
}

void
audit_hash_update(struct audit_hash *h, const void *data, size_t len)
{
	(void)EVP_DigestUpdate(h->ctx, data, len);
}

int
audit_hash_peek(const struct audit_hash *h, uint8_t out[AUDIT_HASH_LEN])
{
	EVP_MD_CTX *copy = EVP_MD_CTX_new();
	unsigned int n = 0;
	int r = -1;

	if (copy != NULL && EVP_MD_CTX_copy_ex(copy, h->ctx) == 1 && EVP_DigestFinal_ex(copy, out, &n) == 1 &&
	    n == AUDIT_HASH_LEN)
		r = 0;
	EVP_MD_CTX_free(copy);
	return r;
}

void
audit_hash_free(struct audit_hash *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

void
audit_sig_message(const uint8_t hash[AUDIT_HASH_LEN], uint8_t out[AUDIT_SIG_CONTEXT_LEN + AUDIT_HASH_LEN])
{
	memcpy(out, AUDIT_SIG_CONTEXT, AUDIT_SIG_CONTEXT_LEN);
	memcpy(out + AUDIT_SIG_CONTEXT_LEN, hash, AUDIT_HASH_LEN);
}

void
audit_key_id(const uint8_t pk[crypto_box_PUBLICKEYBYTES], char id[AUDIT_KEY_ID_LEN + 1])
{
	uint8_t h[crypto_generichash_BYTES_MIN];

	crypto_generichash(h, sizeof(h), pk, crypto_box_PUBLICKEYBYTES, NULL, 0);
	sodium_bin2hex(id, AUDIT_KEY_ID_LEN + 1, h, AUDIT_KEY_ID_LEN / 2);
}

/* Write TEXT to PATH, created with MODE; EXCL refuses an existing file, else it is replaced. */
static int
audit_write_file(const char *path, const char *text, mode_t mode, bool excl, char *err, size_t errlen)
{
	char tmp[4096];
	size_t len = strlen(text);
	int fd, r = -1;

	if (excl) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd < 0) {
			snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
			return -1;
		}
		if (write(fd, text, len) == (ssize_t)len && fsync(fd) == 0)
			r = 0;
		else
			snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		return r;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, errlen, "path %s is too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 && rename(tmp, path) == 0)
		r = 0;
	else
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	close(fd);
	if (r != 0)
		unlink(tmp);
	return r;
}

/* Read the one line of key file PATH: TAG, then base64 of exactly LEN bytes into OUT. */
static int
audit_read_key_line(const char *path, const char *tag, uint8_t *out, size_t len, char *err, size_t errlen)
{
	char line[AUDIT_KEY_LINE_MAX], *save = NULL, *t, *b64;
	FILE *f = fopen(path, "re");
	int r = -1;

	if (f == NULL) {
		snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), f) == NULL) {
		snprintf(err, errlen, "key file %s is empty", path);
		goto out;
	}
	t = strtok_r(line, " \t\r\n", &save);
	b64 = strtok_r(NULL, " \t\r\n", &save);
	if (t == NULL || strcmp(t, tag) != 0) {
		snprintf(err, errlen, "%s is not a %s key file (its first word should be \"%s\")", path,
		    strstr(tag, "node") ? "relay node" : "Postern auditor", tag);
		goto out;
	}
	if (b64 == NULL || util_b64_decode_exact(b64, out, len) != 0) {
		snprintf(err, errlen, "key file %s: the key is not base64 of %zu bytes", path, len);
		goto out;
	}
	r = 0;
out:
	sodium_memzero(line, sizeof(line));
	fclose(f);
	return r;
}

int
audit_key_generate(const char *path, const char *comment, struct audit_auditor_key *out, char *err, size_t errlen)
{
	char b64[128], text[AUDIT_KEY_LINE_MAX], pub[4096];
	int r = -1;

	memset(out, 0, sizeof(*out));
	crypto_box_keypair(out->pk, out->sk);
	out->has_secret = true;
	audit_key_id(out->pk, out->id);
	if ((size_t)snprintf(pub, sizeof(pub), "%s.pub", path) >= sizeof(pub)) {
		snprintf(err, errlen, "path %s is too long", path);
		goto out;
	}
	if (util_b64_encode(out->sk, sizeof(out->sk), b64, sizeof(b64)) != 0)
		goto out;
	snprintf(text, sizeof(text), "%s %s\n", AUDIT_TAG_AUDITOR_SEC, b64);
	if (audit_write_file(path, text, 0600, true, err, errlen) != 0)
		goto out;
	if (util_b64_encode(out->pk, sizeof(out->pk), b64, sizeof(b64)) != 0)
		goto out;
	snprintf(text, sizeof(text), "%s %s %s\n", AUDIT_TAG_AUDITOR_PUB, b64, comment ? comment : out->id);
	if (audit_write_file(pub, text, 0644, true, err, errlen) != 0) {
		unlink(path);
		goto out;
	}
	r = 0;
out:
	sodium_memzero(text, sizeof(text));
	sodium_memzero(b64, sizeof(b64));
	return r;
}

int
audit_key_read(const char *path, struct audit_auditor_key *out, char *err, size_t errlen)
{
	char first[64] = "";
	FILE *f;

	memset(out, 0, sizeof(*out));
	if ((f = fopen(path, "re")) == NULL) {
		snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fscanf(f, "%63s", first) != 1)
		first[0] = '\0';
	fclose(f);
	if (strcmp(first, AUDIT_TAG_AUDITOR_SEC) == 0) {
		if (audit_read_key_line(path, AUDIT_TAG_AUDITOR_SEC, out->sk, sizeof(out->sk), err, errlen) != 0)
			return -1;
		crypto_scalarmult_base(out->pk, out->sk);
		out->has_secret = true;
	} else if (audit_read_key_line(path, AUDIT_TAG_AUDITOR_PUB, out->pk, sizeof(out->pk), err, errlen) != 0) {
		return -1;
	}
	audit_key_id(out->pk, out->id);
	return 0;
}

const char *
audit_node_pub_name(const char *node, char *buf, size_t size)
{
	size_t o = (size_t)snprintf(buf, size, "node-");

	for (const char *c = node; *c != '\0' && o + 5 < size; c++)
		buf[o++] = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		    *c == '.' || *c == '-' || *c == '_' ? *c : '_';
	snprintf(buf + o, size - o, ".pub");
	return buf;
}

int
audit_node_key_write_public(const char *path, const char *node, const struct audit_node_key *key, char *err,
    size_t errlen)
{
	char b64[64], text[AUDIT_KEY_LINE_MAX];

	if (util_b64_encode(key->pk, sizeof(key->pk), b64, sizeof(b64)) != 0)
		return -1;
	snprintf(text, sizeof(text), "%s %s %s\n", AUDIT_TAG_NODE_PUB, b64, node);
	return audit_write_file(path, text, 0644, false, err, errlen);
}

int
audit_node_key_read_public(const char *path, uint8_t pk[crypto_sign_PUBLICKEYBYTES], char *err, size_t errlen)
{
	return audit_read_key_line(path, AUDIT_TAG_NODE_PUB, pk, crypto_sign_PUBLICKEYBYTES, err, errlen);
}

int
audit_node_key_load(const char *dir, const char *node, struct audit_node_key *out, char *err, size_t errlen)
{
	char path[4096], pub[4096], b64[64], text[AUDIT_KEY_LINE_MAX];
	uint8_t seed[crypto_sign_SEEDBYTES];
	struct stat st;
	int r = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, AUDIT_NODE_KEY_FILE);
	snprintf(pub, sizeof(pub), "%s/%s", dir, AUDIT_NODE_PUB_FILE);
	if (stat(path, &st) == 0) {
		if ((st.st_mode & 077) != 0) {
			snprintf(err, errlen, "%s is readable by others (mode %o); chmod 600 it", path, st.st_mode & 0777);
			return -1;
		}
		if (audit_read_key_line(path, AUDIT_TAG_NODE_SEC, seed, sizeof(seed), err, errlen) != 0)
			return -1;
		crypto_sign_seed_keypair(out->pk, out->sk, seed);
	} else if (errno == ENOENT) {
		randombytes_buf(seed, sizeof(seed));
		crypto_sign_seed_keypair(out->pk, out->sk, seed);
		if (util_b64_encode(seed, sizeof(seed), b64, sizeof(b64)) != 0)
			goto out;
		snprintf(text, sizeof(text), "%s %s\n", AUDIT_TAG_NODE_SEC, b64);
		if (audit_write_file(path, text, 0600, true, err, errlen) != 0)
			goto out;
	} else {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	/* The public half beside it, rewritten each start: it is derived, never trusted from disk. */
	if (audit_node_key_write_public(pub, node, out, err, errlen) != 0)
		goto out;
	r = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(b64, sizeof(b64));
	sodium_memzero(text, sizeof(text));
	return r;
}
