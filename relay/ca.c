/*
 * The relay's certificate authorities (see ca.h). Files in the state directory:
 *
 *   ssh_user_ca	  0600, one line "postern-ssh-ed25519-seed-v1 <base64 of the 32-byte Ed25519
 *			  seed>\n": the seed is all crypto_sign_seed_keypair() needs, and one
 *			  versioned line is trivial to parse with a bound, unlike OpenSSH's format
 *   ssh_user_ca.pub	  that CA as an OpenSSH line, for the targets' TrustedUserCAKeys
 *   ca.key, ca.crt	  the X.509 CA: PKCS#8 PEM key (0600) and self-signed PEM certificate
 *   server.key, server.crt  the listeners' key (0600) and certificate, signed by the X.509 CA
 *
 * Every file is written to a temporary name, synced and renamed, so a crash never leaves half
 * a key. OpenSSH certificates follow PROTOCOL.certkeys; they are built with a bounded writer
 * and read with a bounded reader in the manner of OpenSSH's sshbuf: every getter checks what
 * is left and fails, and a certificate must end where its signature ends.
 */
#include "relay/ca.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "relay/util.h"

#define CA_SSH_KEY_FILE		"ssh_user_ca"
#define CA_SSH_PUB_FILE		"ssh_user_ca.pub"
#define CA_X509_KEY_FILE	"ca.key"
#define CA_X509_CERT_FILE	"ca.crt"
#define CA_SERVER_KEY_FILE	"server.key"
#define CA_SERVER_CERT_FILE	"server.crt"
#define CA_NAME_MAX		32		/* longest state file name, with the temporary suffix */
#define CA_MODE_SECRET		0600
#define CA_MODE_PUBLIC		0644
#define CA_FILE_MAX		(64 << 10)	/* no key or certificate file is bigger */
#define CA_PEM_MAX		(16 << 10)	/* a client's public key PEM */
#define CA_NODE_MAX		50		/* "Postern relay " + node fits X.509's 64-character CN */
#define CA_DNS_NAME_MAX		253
#define CA_DAY			86400
#define CA_X509_CA_DAYS		3650
#define CA_SERVER_DAYS		365
#define CA_SERVER_RENEW_DAYS	30		/* the server certificate is renewed this close to its end */
#define CA_BACKDATE		3600		/* seconds: peers whose clocks lag still accept our certs */
#define CA_USER_CHARS		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@"
#define CA_SSH_SEED_TAG		"postern-ssh-ed25519-seed-v1"
#define CA_SSH_CA_COMMENT	"postern-user-ca"
#define CA_SSH_CERT_COMMENT	"postern"	/* cert lines end "<user>@postern" */

/* OpenSSH wire names and values: PROTOCOL.certkeys, RFC 5656 (ECDSA), RFC 8709 (Ed25519). */
#define SSH_KEY_ED25519		"ssh-ed25519"
#define SSH_KEY_ECDSA_P256	"ecdsa-sha2-nistp256"
#define SSH_CERT_ED25519	"ssh-ed25519-cert-v01@openssh.com"
#define SSH_CERT_ECDSA_P256	"ecdsa-sha2-nistp256-cert-v01@openssh.com"
#define SSH_CURVE_P256		"nistp256"
#define SSH_P256_COORD_LEN	32
#define SSH_P256_POINT_LEN	(1 + 2 * SSH_P256_COORD_LEN)
#define SSH_EC_POINT_UNCOMPRESSED 0x04
#define SSH_CERT_TYPE_USER	1
#define SSH_CERT_NONCE_LEN	32
#define SSH_CERT_MAX		8192		/* ours are well under 1 KiB */
#define SSH_FIELD_MAX		256		/* a nested field: key, principals, extensions, signature */
#define SSH_KEY_ID_MAX		128

struct ca {
	unsigned char *ssh_sk;		/* sodium_malloc'd Ed25519 secret key (guarded, wiped on free) */
	unsigned char ssh_pk[crypto_sign_PUBLICKEYBYTES];
	char *ssh_public;		/* "ssh-ed25519 AAAA… postern-user-ca" */
	EVP_PKEY *x509_key;		/* the X.509 CA's private key */
	X509 *x509_cert;
	char *x509_pem;
	EVP_PKEY *server_key;		/* the listeners' key and certificate */
	X509 *server_cert;
	STACK_OF(X509) *server_chain;	/* intermediates after an operator's certificate, or NULL */
};

static const char *const ca_server_default_names[] = { "localhost", "127.0.0.1", "::1" };

#define CA_NDEFAULT_NAMES (sizeof(ca_server_default_names) / sizeof(ca_server_default_names[0]))

/* Write a message and OpenSSL's reason for the last failure, and clear the thread's queue. */
__attribute__((format(printf, 3, 4)))
static void
ca_ossl_error(char *err, size_t errlen, const char *fmt, ...)
{
	const char *reason = ERR_reason_error_string(ERR_peek_last_error());
	size_t n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = strlen(err);
	if (reason != NULL && n < errlen)
		snprintf(err + n, errlen - n, " (%s)", reason);
	ERR_clear_error();
}

static void
ca_wipe_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

/* DIR/NAME into BUF; ca_open() checked that every state path fits. */
static const char *
ca_path(char buf[PATH_MAX], const char *dir, const char *name)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, name);
	return buf;
}

/*
 * Read PATH into a malloc'd, NUL-terminated *DATA of *LEN bytes. A SECRET file must not be
 * open to group or others. Returns -ENOENT when PATH does not exist (ERR says so too).
 */
static int
ca_file_read(const char *path, bool secret, char **data, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0, size = 0;
	ssize_t got;
	int fd, r = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = errno == ENOENT ? -ENOENT : -1;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		goto out;
	}
	if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(err, errlen, "%s holds a private key but is open to group or others (mode %04o); run chmod 600 %s",
		    path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size > CA_FILE_MAX) {
		snprintf(err, errlen, "%s is too large (%lld bytes) for a key or certificate", path, (long long)st.st_size);
		goto out;
	}
	size = (size_t)st.st_size + 1;
	if ((buf = malloc(size)) == NULL) {
		snprintf(err, errlen, "out of memory reading %s", path);
		goto out;
	}
	while (n < size - 1) {
		got = read(fd, buf + n, size - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	*data = buf;
	buf = NULL;	/* transferred */
	*len = n;
	r = 0;
out:
	ca_wipe_free(buf, size);
	close(fd);
	return r;
}

/* Write DIR/NAME with MODE, whatever the umask, through a synced temporary file and a rename. */
static int
ca_file_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode, char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	size_t done = 0;
	ssize_t w;
	int fd = -1, dfd = -1, r = -1;

	ca_path(path, dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	if (unlink(tmp) != 0 && errno != ENOENT)
		goto fail;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 || fchmod(fd, mode) != 0)
		goto fail;
	while (done < len) {
		w = write(fd, (const char *)data + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto fail;
		done += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	r = close(fd);
	fd = -1;
	if (r != 0 || rename(tmp, path) != 0)
		goto fail;
	/* The rename is durable only once the directory is synced too. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0)
		goto fail;
	r = 0;
	goto out;
fail:
	snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	unlink(tmp);
	r = -1;
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return r;
}

/* 1-63 characters, all from CA_USER_CHARS: safe in a CN, a principal, a key id and a comment. */
static bool
ca_user_valid(const char *user, size_t len)
{
	if (len == 0 || len >= CA_USER_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (user[i] == '\0' || strchr(CA_USER_CHARS, user[i]) == NULL)
			return false;
	return true;
}

static int
ca_grant_check(const struct ca_grant *g, char *err, size_t errlen)
{
	if (!ca_user_valid(g->user, strnlen(g->user, sizeof(g->user)))) {
		snprintf(err, errlen, "user name \"%.*s\" must be 1-%d letters, digits, '.', '_', '-' or '@'",
		    (int)sizeof(g->user), g->user, CA_USER_MAX - 1);
		return -1;
	}
	if (g->serial == 0) {
		snprintf(err, errlen, "certificate serial must not be 0");
		return -1;
	}
	if (g->not_before < 0 || g->not_after <= g->not_before) {
		snprintf(err, errlen, "certificate validity window is empty (not_after must follow not_before)");
		return -1;
	}
	return 0;
}

/* --- OpenSSH wire format ------------------------------------------------------------------- */

struct ssh_wbuf {			/* a bounded writer: once over its capacity it stays failed */
	unsigned char *data;
	size_t cap, len;
	bool overflow;
};

#define SSH_WBUF(array) { (array), sizeof(array), 0, false }

struct ssh_rbuf {			/* a bounded reader over bytes it does not own */
	const unsigned char *p;
	size_t left;
};

static void
ssh_put(struct ssh_wbuf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
ssh_put_u32(struct ssh_wbuf *b, uint32_t v)
{
	unsigned char x[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
	    (unsigned char)v };

	ssh_put(b, x, sizeof(x));
}

static void
ssh_put_u64(struct ssh_wbuf *b, uint64_t v)
{
	ssh_put_u32(b, (uint32_t)(v >> 32));
	ssh_put_u32(b, (uint32_t)v);
}

static void
ssh_put_string(struct ssh_wbuf *b, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		b->overflow = true;
		return;
	}
	ssh_put_u32(b, (uint32_t)n);
	ssh_put(b, p, n);
}

static void
ssh_put_cstring(struct ssh_wbuf *b, const char *s)
{
	ssh_put_string(b, s, strlen(s));
}

/* INNER as one string field of B. */
static void
ssh_put_wbuf(struct ssh_wbuf *b, const struct ssh_wbuf *inner)
{
	b->overflow |= inner->overflow;
	ssh_put_string(b, inner->data, inner->len);
}

static int __attribute__((warn_unused_result))
ssh_get_u32(struct ssh_rbuf *b, uint32_t *v)
{
	if (b->left < 4)
		return -1;
	*v = (uint32_t)b->p[0] << 24 | (uint32_t)b->p[1] << 16 | (uint32_t)b->p[2] << 8 | b->p[3];
	b->p += 4;
	b->left -= 4;
	return 0;
}

static int __attribute__((warn_unused_result))
ssh_get_u64(struct ssh_rbuf *b, uint64_t *v)
{
	uint32_t hi, lo;

	if (ssh_get_u32(b, &hi) != 0 || ssh_get_u32(b, &lo) != 0)
		return -1;
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

static int __attribute__((warn_unused_result))
ssh_get_string(struct ssh_rbuf *b, struct slice *s)
{
	uint32_t n;

	if (ssh_get_u32(b, &n) != 0 || n > b->left)
		return -1;
	s->ptr = b->p;
	s->len = n;
	b->p += n;
	b->left -= n;
	return 0;
}

/* A string used as text: no NUL inside, copied NUL-terminated into OUT of SIZE bytes. */
static int __attribute__((warn_unused_result))
ssh_get_cstring(struct ssh_rbuf *b, char *out, size_t size)
{
	struct slice s;

	if (ssh_get_string(b, &s) != 0 || s.len >= size || memchr(s.ptr, '\0', s.len) != NULL)
		return -1;
	memcpy(out, s.ptr, s.len);
	out[s.len] = '\0';
	return 0;
}

static bool
slice_is(struct slice s, const char *text)
{
	return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

/* The fields of the Ed25519 public key blob PK: string "ssh-ed25519", string key. */
static void
ssh_put_ed25519(struct ssh_wbuf *b, const unsigned char pk[crypto_sign_PUBLICKEYBYTES])
{
	ssh_put_cstring(b, SSH_KEY_ED25519);
	ssh_put_string(b, pk, crypto_sign_PUBLICKEYBYTES);
}

/* The public key fields of K that follow its type name, in a key blob and in a certificate. */
static int
ssh_put_key_fields(struct ssh_wbuf *b, EVP_PKEY *k)
{
	unsigned char raw[SSH_P256_POINT_LEN];
	size_t len = sizeof(raw);
	BIGNUM *x = NULL, *y = NULL;
	int r = -1;

	if (EVP_PKEY_is_a(k, "ED25519")) {
		if (EVP_PKEY_get_raw_public_key(k, raw, &len) != 1 || len != crypto_sign_PUBLICKEYBYTES)
			goto out;
		ssh_put_string(b, raw, len);
	} else {
		/* From X and Y, so the point is uncompressed whatever form the PEM carried. */
		raw[0] = SSH_EC_POINT_UNCOMPRESSED;
		if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
		    EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
		    BN_bn2binpad(x, raw + 1, SSH_P256_COORD_LEN) != SSH_P256_COORD_LEN ||
		    BN_bn2binpad(y, raw + 1 + SSH_P256_COORD_LEN, SSH_P256_COORD_LEN) != SSH_P256_COORD_LEN)
			goto out;
		ssh_put_cstring(b, SSH_CURVE_P256);
		ssh_put_string(b, raw, sizeof(raw));
	}
	r = 0;
out:
	BN_free(x);
	BN_free(y);
	return r;
}

/* "TYPE BASE64(BLOB)[ COMMENT]", malloc'd. */
static char *
ssh_line(const char *type, const unsigned char *blob, size_t len, const char *comment)
{
	size_t b64len = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = malloc(b64len), *line = NULL;

	if (b64 == NULL)
		return NULL;
	sodium_bin2base64(b64, b64len, blob, len, sodium_base64_VARIANT_ORIGINAL);
	if (asprintf(&line, "%s %s%s%s", type, b64, comment ? " " : "", comment ? comment : "") < 0)
		line = NULL;
	free(b64);
	return line;
}

/* --- X.509 building blocks ----------------------------------------------------------------- */

struct ca_ext {				/* an extension as OpenSSL's config syntax writes it */
	int nid;
	const char *value;
};

static int
ca_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return -1;	/* never prompt on a terminal: encrypted keys are refused instead */
}

static int
ca_key_read(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
	char *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	int r;

	if ((r = ca_file_read(path, true, &data, &len, err, errlen)) != 0)
		goto out;
	r = -1;
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (*key = PEM_read_bio_PrivateKey(bio, NULL, ca_no_passphrase, NULL)) == NULL) {
		ca_ossl_error(err, errlen, "%s is not an unencrypted PEM private key; restore it from a backup", path);
		goto out;
	}
	r = 0;
out:
	BIO_free(bio);
	ca_wipe_free(data, len);
	return r;
}

/* The first certificate in PATH into *LEAF and, when CHAIN is not NULL, the others into *CHAIN. */
static int
ca_cert_read(const char *path, X509 **leaf, STACK_OF(X509) **chain, char *err, size_t errlen)
{
	char *data = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	X509 *x;
	int r;

	if ((r = ca_file_read(path, false, &data, &len, err, errlen)) != 0)
		goto out;
	r = -1;
	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (*leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL) {
		ca_ossl_error(err, errlen, "%s is not a PEM certificate", path);
		goto out;
	}
	if (chain != NULL && (*chain = sk_X509_new_null()) == NULL)
		goto oom;
	while (chain != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(*chain, x) <= 0) {
			X509_free(x);
			goto oom;
		}
	ERR_clear_error();	/* the read that found no further certificate */
	r = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory reading %s", path);
out:
	BIO_free(bio);
	free(data);
	return r;
}

static int
ca_key_write(const char *dir, const char *name, EVP_PKEY *key, char *err, size_t errlen)
{
	BIO *bio = BIO_new(BIO_s_secmem());	/* wiped when freed */
	char *data;
	long n;
	int r = -1;

	if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0) {
		ca_ossl_error(err, errlen, "cannot encode the key for %s/%s", dir, name);
		goto out;
	}
	r = ca_file_write(dir, name, data, (size_t)n, CA_MODE_SECRET, err, errlen);
out:
	BIO_free(bio);
	return r;
}

/* X as PEM, malloc'd. */
static char *
ca_cert_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *pem = NULL;
	long n;

	if (bio != NULL && PEM_write_bio_X509(bio, x) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0 &&
	    (pem = malloc((size_t)n + 1)) != NULL) {
		memcpy(pem, data, (size_t)n);
		pem[n] = '\0';
	}
	BIO_free(bio);
	return pem;
}

static int
ca_cert_write(const char *dir, const char *name, X509 *x, char *err, size_t errlen)
{
	char *pem = ca_cert_pem(x);
	int r;

	if (pem == NULL) {
		ca_ossl_error(err, errlen, "cannot encode the certificate for %s/%s", dir, name);
		return -1;
	}
	r = ca_file_write(dir, name, pem, strlen(pem), CA_MODE_PUBLIC, err, errlen);
	free(pem);
	return r;
}

/* A random positive serial: RFC 5280 wants it unique per CA, and unpredictable is better. */
static uint64_t
ca_serial_random(void)
{
	uint64_t s;

	randombytes_buf(&s, sizeof(s));
	return (s >> 1) | 1;
}

/*
 * An unsigned v3 certificate for KEY named CN, valid NOT_BEFORE..NOT_AFTER, issued by ISSUER
 * (NULL: by itself), with EXTS. NULL when OpenSSL fails.
 */
static X509 *
ca_cert_new(EVP_PKEY *key, const char *cn, uint64_t serial, time_t not_before, time_t not_after, X509 *issuer,
    const struct ca_ext *exts, size_t nexts)
{
	X509 *x = X509_new();
	X509V3_CTX v3;

	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL ||
	    X509_set_pubkey(x, key) != 1 ||
	    X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, MBSTRING_UTF8,
		(const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)) != 1)
		goto fail;
	X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	for (size_t i = 0; i < nexts; i++) {
		X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &v3, exts[i].nid, exts[i].value);
		int ok = e != NULL && X509_add_ext(x, e, -1) == 1;

		X509_EXTENSION_free(e);
		if (!ok)
			goto fail;
	}
	return x;
fail:
	X509_free(x);
	return NULL;
}

static int
ca_asn1_time(const ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

/* --- the SSH user CA ------------------------------------------------------------------------- */

static int
ca_ssh_load_or_create(struct ca *ca, const char *dir, char *err, size_t errlen)
{
	static const char tag[] = CA_SSH_SEED_TAG " ";
	unsigned char seed[crypto_sign_SEEDBYTES], blobbuf[SSH_FIELD_MAX];
	char path[PATH_MAX], b64[sodium_base64_ENCODED_LEN(crypto_sign_SEEDBYTES, sodium_base64_VARIANT_ORIGINAL)];
	char line[sizeof(tag) + sizeof(b64) + 1], *data = NULL, *pub = NULL;
	struct ssh_wbuf blob = SSH_WBUF(blobbuf);
	size_t len = 0, seedlen = 0, publen = 0;
	const char *end = NULL;
	int r, n;

	r = ca_file_read(ca_path(path, dir, CA_SSH_KEY_FILE), true, &data, &len, err, errlen);
	if (r == -ENOENT) {
		randombytes_buf(seed, sizeof(seed));
		sodium_bin2base64(b64, sizeof(b64), seed, sizeof(seed), sodium_base64_VARIANT_ORIGINAL);
		n = snprintf(line, sizeof(line), "%s%s\n", tag, b64);
		r = ca_file_write(dir, CA_SSH_KEY_FILE, line, (size_t)n, CA_MODE_SECRET, err, errlen);
	} else if (r == 0 && (len <= sizeof(tag) - 1 || memcmp(data, tag, sizeof(tag) - 1) != 0 ||
	    sodium_base642bin(seed, sizeof(seed), data + sizeof(tag) - 1, len - (sizeof(tag) - 1), NULL, &seedlen,
		&end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    seedlen != sizeof(seed) || end != data + len - 1 || *end != '\n')) {
		snprintf(err, errlen, "%s is not a Postern SSH CA key (one line \"%s<base64 seed>\"); restore it from a backup",
		    path, tag);
		r = -1;
	}
	if (r != 0)
		goto out;
	r = -1;
	if ((ca->ssh_sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL) {
		snprintf(err, errlen, "out of memory for the SSH CA key");
		goto out;
	}
	crypto_sign_seed_keypair(ca->ssh_pk, ca->ssh_sk, seed);
	ssh_put_ed25519(&blob, ca->ssh_pk);
	if ((ca->ssh_public = ssh_line(SSH_KEY_ED25519, blob.data, blob.len, CA_SSH_CA_COMMENT)) == NULL) {
		snprintf(err, errlen, "out of memory for the SSH CA key");
		goto out;
	}
	/* Rewritten when it differs, so the file handed to targets always matches the key. */
	if (ca_file_read(ca_path(path, dir, CA_SSH_PUB_FILE), false, &pub, &publen, err, errlen) != 0 ||
	    publen != strlen(ca->ssh_public) + 1 || memcmp(pub, ca->ssh_public, publen - 1) != 0 || pub[publen - 1] != '\n') {
		free(pub);
		if (asprintf(&pub, "%s\n", ca->ssh_public) < 0) {
			pub = NULL;
			snprintf(err, errlen, "out of memory for the SSH CA key");
			goto out;
		}
		if (ca_file_write(dir, CA_SSH_PUB_FILE, pub, strlen(pub), CA_MODE_PUBLIC, err, errlen) != 0)
			goto out;
	}
	r = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(b64, sizeof(b64));
	sodium_memzero(line, sizeof(line));
	ca_wipe_free(data, len);
	free(pub);
	return r;
}

/* --- the X.509 CA ---------------------------------------------------------------------------- */

static int
ca_x509_load_or_create(struct ca *ca, const char *dir, const char *node, time_t now, char *err, size_t errlen)
{
	static const struct ca_ext exts[] = {
		/* pathlen:0: this CA signs leaves only, never another CA */
		{ NID_basic_constraints, "critical,CA:TRUE,pathlen:0" },
		{ NID_key_usage, "critical,keyCertSign,cRLSign" },
		{ NID_subject_key_identifier, "hash" },
	};
	char path[PATH_MAX], cn[64];
	int r;

	r = ca_key_read(ca_path(path, dir, CA_X509_KEY_FILE), &ca->x509_key, err, errlen);
	if (r == -ENOENT) {
		if (access(ca_path(path, dir, CA_X509_CERT_FILE), F_OK) == 0) {
			snprintf(err, errlen, "%s exists but %s/%s is missing; restore the key from a backup, or remove "
			    "%s to start a new CA (every certificate issued so far then stops working)",
			    path, dir, CA_X509_KEY_FILE, path);
			return -1;
		}
		if ((ca->x509_key = EVP_EC_gen(SN_X9_62_prime256v1)) == NULL) {
			ca_ossl_error(err, errlen, "cannot generate the X.509 CA key");
			return -1;
		}
		r = ca_key_write(dir, CA_X509_KEY_FILE, ca->x509_key, err, errlen);
	}
	if (r != 0)
		return -1;
	r = ca_cert_read(ca_path(path, dir, CA_X509_CERT_FILE), &ca->x509_cert, NULL, err, errlen);
	if (r == -ENOENT) {
		snprintf(cn, sizeof(cn), "Postern CA %s", node);
		ca->x509_cert = ca_cert_new(ca->x509_key, cn, ca_serial_random(), now - CA_BACKDATE,
		    now + (time_t)CA_X509_CA_DAYS * CA_DAY, NULL, exts, sizeof(exts) / sizeof(exts[0]));
		if (ca->x509_cert == NULL || X509_sign(ca->x509_cert, ca->x509_key, EVP_sha256()) <= 0) {
			ca_ossl_error(err, errlen, "cannot create the X.509 CA certificate");
			return -1;
		}
		r = ca_cert_write(dir, CA_X509_CERT_FILE, ca->x509_cert, err, errlen);
	} else if (r == 0 && X509_check_private_key(ca->x509_cert, ca->x509_key) != 1) {
		ca_ossl_error(err, errlen, "%s does not belong to %s/%s; restore both from the same backup",
		    path, dir, CA_X509_KEY_FILE);
		r = -1;
	}
	if (r != 0)
		return -1;
	if ((ca->x509_pem = ca_cert_pem(ca->x509_cert)) == NULL) {
		ca_ossl_error(err, errlen, "cannot encode the X.509 CA certificate");
		return -1;
	}
	return 0;
}

/* --- the listeners' certificate -------------------------------------------------------------- */

static const char *
ca_server_name(const char *const *names, size_t n, size_t i)
{
	return i < n ? names[i] : ca_server_default_names[i - n];
}

/* An IP literal, or a DNS name of letters, digits, '-' and '.' (no wildcards: these are ours). */
static bool
ca_server_name_valid(const char *name)
{
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
	size_t len = strlen(name);

	if (ip != NULL) {
		ASN1_OCTET_STRING_free(ip);
		return true;
	}
	ERR_clear_error();
	return len > 0 && len <= CA_DNS_NAME_MAX && name[0] != '.' && name[0] != '-' &&
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == len;
}

static bool
ca_cert_names(X509 *x, const char *name)
{
	int r = X509_check_ip_asc(x, name, 0);

	if (r == -2)	/* not an IP literal */
		r = X509_check_host(x, name, 0, 0, NULL);
	return r == 1;
}

/* Whether the server certificate on disk still serves: ours, its key's, not near its end, naming every name. */
static bool
ca_server_fits(const struct ca *ca, EVP_PKEY *key, X509 *cert, const char *const *names, size_t n, time_t now)
{
	time_t renew = now + (time_t)CA_SERVER_RENEW_DAYS * CA_DAY;
	bool fits = X509_check_private_key(cert, key) == 1 && X509_verify(cert, ca->x509_key) == 1 &&
	    X509_cmp_time(X509_get0_notAfter(cert), &renew) > 0;

	for (size_t i = 0; fits && i < n + CA_NDEFAULT_NAMES; i++)
		fits = ca_cert_names(cert, ca_server_name(names, n, i));
	ERR_clear_error();
	return fits;
}

static int
ca_server_create(struct ca *ca, const char *dir, const char *node, const char *const *names, size_t n, time_t now,
    char *err, size_t errlen)
{
	static const struct ca_ext exts[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature" },
		{ NID_ext_key_usage, "serverAuth" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
	};
	GENERAL_NAMES *san = sk_GENERAL_NAME_new_null();
	char cn[64];
	int r = -1;

	if (san == NULL || (ca->server_key = EVP_EC_gen(SN_X9_62_prime256v1)) == NULL)
		goto fail;
	for (size_t i = 0; i < n + CA_NDEFAULT_NAMES; i++) {
		const char *name = ca_server_name(names, n, i);
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *dns = NULL;

		ERR_clear_error();	/* a2i_IPADDRESS of a DNS name */
		if (gn == NULL || (ip == NULL && ((dns = ASN1_IA5STRING_new()) == NULL ||
		    ASN1_STRING_set(dns, name, -1) != 1))) {
			GENERAL_NAME_free(gn);
			ASN1_OCTET_STRING_free(ip);
			ASN1_IA5STRING_free(dns);
			goto fail;
		}
		GENERAL_NAME_set0_value(gn, ip != NULL ? GEN_IPADD : GEN_DNS, ip != NULL ? (void *)ip : (void *)dns);
		if (sk_GENERAL_NAME_push(san, gn) <= 0) {
			GENERAL_NAME_free(gn);
			goto fail;
		}
	}
	snprintf(cn, sizeof(cn), "Postern relay %s", node);
	ca->server_cert = ca_cert_new(ca->server_key, cn, ca_serial_random(), now - CA_BACKDATE,
	    now + (time_t)CA_SERVER_DAYS * CA_DAY, ca->x509_cert, exts, sizeof(exts) / sizeof(exts[0]));
	if (ca->server_cert == NULL || X509_add1_ext_i2d(ca->server_cert, NID_subject_alt_name, san, 0, 0) != 1 ||
	    X509_sign(ca->server_cert, ca->x509_key, EVP_sha256()) <= 0)
		goto fail;
	/* Key first: a crash between the two leaves a pair that does not match, renewed next start. */
	if (ca_key_write(dir, CA_SERVER_KEY_FILE, ca->server_key, err, errlen) != 0 ||
	    ca_cert_write(dir, CA_SERVER_CERT_FILE, ca->server_cert, err, errlen) != 0)
		goto out;
	r = 0;
	goto out;
fail:
	ca_ossl_error(err, errlen, "cannot create the server certificate");
out:
	GENERAL_NAMES_free(san);
	return r;
}

static int
ca_server_load_or_create(struct ca *ca, const char *dir, const char *node, const char *const *names, size_t n,
    time_t now, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int r;

	r = ca_key_read(ca_path(path, dir, CA_SERVER_KEY_FILE), &ca->server_key, err, errlen);
	if (r == 0)
		r = ca_cert_read(ca_path(path, dir, CA_SERVER_CERT_FILE), &ca->server_cert, NULL, err, errlen);
	if (r != 0 && r != -ENOENT)
		return -1;
	if (r == 0 && ca_server_fits(ca, ca->server_key, ca->server_cert, names, n, now))
		return 0;
	EVP_PKEY_free(ca->server_key);
	X509_free(ca->server_cert);
	ca->server_key = NULL;
	ca->server_cert = NULL;
	return ca_server_create(ca, dir, node, names, n, now, err, errlen);
}

static int
ca_server_load(struct ca *ca, const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	if (ca_key_read(key_file, &ca->server_key, err, errlen) != 0 ||
	    ca_cert_read(cert_file, &ca->server_cert, &ca->server_chain, err, errlen) != 0)
		return -1;
	if (X509_check_private_key(ca->server_cert, ca->server_key) != 1) {
		ca_ossl_error(err, errlen, "the certificate in %s does not belong to the key in %s; configure a matching pair",
		    cert_file, key_file);
		return -1;
	}
	return 0;
}

/* --- opening, the TLS context ---------------------------------------------------------------- */

int
ca_open(const char *state_dir, const char *node, const char *const *server_names, size_t nnames,
    const char *tls_cert_file, const char *tls_key_file, struct ca **out, char *err, size_t errlen)
{
	struct ca *ca = NULL;
	time_t now = time(NULL);
	int r = -1;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium cannot initialise (no random source?)");
		goto out;
	}
	if (strlen(node) > CA_NODE_MAX) {
		snprintf(err, errlen, "node name \"%s\" is too long for a certificate (at most %d characters)",
		    node, CA_NODE_MAX);
		goto out;
	}
	if (strlen(state_dir) + 1 + CA_NAME_MAX >= PATH_MAX) {
		snprintf(err, errlen, "state directory path \"%.64s…\" is too long", state_dir);
		goto out;
	}
	for (size_t i = 0; i < nnames; i++)
		if (!ca_server_name_valid(server_names[i])) {
			snprintf(err, errlen, "server name \"%s\" is neither an IP address nor a DNS name "
			    "(letters, digits, '-' and '.')", server_names[i]);
			goto out;
		}
	if ((tls_cert_file == NULL) != (tls_key_file == NULL)) {
		snprintf(err, errlen, "a TLS certificate file needs its key file and a key file its certificate; "
		    "configure both or neither");
		goto out;
	}
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create the state directory %s: %s", state_dir, strerror(errno));
		goto out;
	}
	if ((ca = calloc(1, sizeof(*ca))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (ca_ssh_load_or_create(ca, state_dir, err, errlen) != 0 ||
	    ca_x509_load_or_create(ca, state_dir, node, now, err, errlen) != 0)
		goto out;
	if (tls_cert_file != NULL) {
		if (ca_server_load(ca, tls_cert_file, tls_key_file, err, errlen) != 0)
			goto out;
	} else if (ca_server_load_or_create(ca, state_dir, node, server_names, nnames, now, err, errlen) != 0) {
		goto out;
	}
	*out = ca;
	ca = NULL;	/* transferred */
	r = 0;
out:
	ca_free(ca);
	return r;
}

void
ca_free(struct ca *ca)
{
	if (ca == NULL)
		return;
	sodium_free(ca->ssh_sk);
	free(ca->ssh_public);
	EVP_PKEY_free(ca->x509_key);
	X509_free(ca->x509_cert);
	free(ca->x509_pem);
	EVP_PKEY_free(ca->server_key);
	X509_free(ca->server_cert);
	sk_X509_pop_free(ca->server_chain, X509_free);
	free(ca);
}

const char *
ca_x509_pem(const struct ca *ca)
{
	return ca->x509_pem;
}

const char *
ca_ssh_public(const struct ca *ca)
{
	return ca->ssh_public;
}

SSL_CTX *
ca_server_ctx(const struct ca *ca, bool require_client_cert, char *err, size_t errlen)
{
	/* Resumed sessions keep their verified client certificate only under a session id context. */
	static const unsigned char sid_ctx[] = "posternd";
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate(ctx, ca->server_cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, ca->server_key) != 1 ||
	    (ca->server_chain != NULL && SSL_CTX_set1_chain(ctx, ca->server_chain) != 1) ||
	    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca->x509_cert) != 1 ||
	    SSL_CTX_add_client_CA(ctx, ca->x509_cert) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
		ca_ossl_error(err, errlen, "cannot set up TLS for the listeners");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
	return ctx;
}

/* --- issuing --------------------------------------------------------------------------------- */

/* A client's "BEGIN PUBLIC KEY" PEM, which must hold a P-256 or an Ed25519 key. */
static int
ca_pubkey_parse(const char *pem, EVP_PKEY **out, char *err, size_t errlen)
{
	size_t len = strnlen(pem, CA_PEM_MAX + 1);
	char group[32];
	BIO *bio = NULL;
	EVP_PKEY *k = NULL;
	int r = -1;

	if (len > CA_PEM_MAX) {
		snprintf(err, errlen, "public key is larger than %d bytes; send a P-256 or Ed25519 key", CA_PEM_MAX);
		goto out;
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL || (k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL) {
		ca_ossl_error(err, errlen, "cannot read the public key; send a PEM \"BEGIN PUBLIC KEY\" block");
		goto out;
	}
	if (!EVP_PKEY_is_a(k, "ED25519") && !(EVP_PKEY_is_a(k, "EC") &&
	    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) == 1 &&
	    strcmp(group, SN_X9_62_prime256v1) == 0)) {
		ERR_clear_error();
		snprintf(err, errlen, "public key type %s is not supported; use a P-256 (ECDSA) or Ed25519 key",
		    EVP_PKEY_get0_type_name(k));
		goto out;
	}
	*out = k;
	k = NULL;	/* transferred */
	r = 0;
out:
	EVP_PKEY_free(k);
	BIO_free(bio);
	return r;
}

int
ca_issue_x509(const struct ca *ca, const struct ca_grant *g, const char *pubkey_pem, char **cert_pem,
    char *err, size_t errlen)
{
	static const struct ca_ext exts[] = {
		{ NID_basic_constraints, "critical,CA:FALSE" },
		{ NID_key_usage, "critical,digitalSignature" },
		{ NID_ext_key_usage, "clientAuth" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
	};
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	int r = -1;

	if (ca_grant_check(g, err, errlen) != 0 || ca_pubkey_parse(pubkey_pem, &k, err, errlen) != 0)
		goto out;
	x = ca_cert_new(k, g->user, g->serial, g->not_before, g->not_after, ca->x509_cert, exts,
	    sizeof(exts) / sizeof(exts[0]));
	if (x == NULL || X509_sign(x, ca->x509_key, EVP_sha256()) <= 0 || (*cert_pem = ca_cert_pem(x)) == NULL) {
		ca_ossl_error(err, errlen, "cannot issue the client certificate");
		goto out;
	}
	r = 0;
out:
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

int
ca_issue_ssh(const struct ca *ca, const struct ca_grant *g, const char *pubkey_pem, char **cert_line,
    char *err, size_t errlen)
{
	static const char *const extensions[] = {	/* sorted by name, as OpenSSH requires */
		"permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty",
		"permit-user-rc",
	};
	unsigned char certbuf[SSH_CERT_MAX], princbuf[SSH_FIELD_MAX], extbuf[SSH_FIELD_MAX], cakeybuf[SSH_FIELD_MAX];
	unsigned char sigbuf[SSH_FIELD_MAX], nonce[SSH_CERT_NONCE_LEN], sig[crypto_sign_BYTES];
	struct ssh_wbuf cert = SSH_WBUF(certbuf), princ = SSH_WBUF(princbuf), ext = SSH_WBUF(extbuf);
	struct ssh_wbuf cakey = SSH_WBUF(cakeybuf), sigblob = SSH_WBUF(sigbuf);
	char key_id[SSH_KEY_ID_MAX], comment[CA_USER_MAX + sizeof("@" CA_SSH_CERT_COMMENT)];
	const char *type;
	EVP_PKEY *k = NULL;
	int r = -1;

	if (ca_grant_check(g, err, errlen) != 0 || ca_pubkey_parse(pubkey_pem, &k, err, errlen) != 0)
		goto out;
	type = EVP_PKEY_is_a(k, "ED25519") ? SSH_CERT_ED25519 : SSH_CERT_ECDSA_P256;
	randombytes_buf(nonce, sizeof(nonce));
	snprintf(key_id, sizeof(key_id), "user=%s serial=%" PRIu64, g->user, g->serial);
	ssh_put_cstring(&princ, g->user);
	for (size_t i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++) {
		ssh_put_cstring(&ext, extensions[i]);
		ssh_put_string(&ext, NULL, 0);	/* flags carry no data */
	}
	ssh_put_ed25519(&cakey, ca->ssh_pk);

	ssh_put_cstring(&cert, type);
	ssh_put_string(&cert, nonce, sizeof(nonce));
	if (ssh_put_key_fields(&cert, k) != 0) {
		ca_ossl_error(err, errlen, "cannot read the public key's parameters");
		goto out;
	}
	ssh_put_u64(&cert, g->serial);
	ssh_put_u32(&cert, SSH_CERT_TYPE_USER);
	ssh_put_cstring(&cert, key_id);
	ssh_put_wbuf(&cert, &princ);
	ssh_put_u64(&cert, (uint64_t)g->not_before);
	ssh_put_u64(&cert, (uint64_t)g->not_after);
	ssh_put_string(&cert, NULL, 0);		/* critical options: none */
	ssh_put_wbuf(&cert, &ext);
	ssh_put_string(&cert, NULL, 0);		/* reserved */
	ssh_put_wbuf(&cert, &cakey);
	if (cert.overflow) {
		snprintf(err, errlen, "OpenSSH certificate does not fit in %d bytes", SSH_CERT_MAX);
		goto out;
	}
	crypto_sign_detached(sig, NULL, cert.data, cert.len, ca->ssh_sk);
	ssh_put_cstring(&sigblob, SSH_KEY_ED25519);
	ssh_put_string(&sigblob, sig, sizeof(sig));
	ssh_put_wbuf(&cert, &sigblob);
	snprintf(comment, sizeof(comment), "%s@%s", g->user, CA_SSH_CERT_COMMENT);
	if (cert.overflow || (*cert_line = ssh_line(type, cert.data, cert.len, comment)) == NULL) {
		snprintf(err, errlen, "out of memory for the OpenSSH certificate");
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_free(k);
	return r;
}

int
ca_ssh_pubkey_line(const char *pubkey_pem, char **line, char *err, size_t errlen)
{
	unsigned char blobbuf[SSH_FIELD_MAX];
	struct ssh_wbuf blob = SSH_WBUF(blobbuf);
	const char *type;
	EVP_PKEY *k = NULL;
	int r = -1;

	if (ca_pubkey_parse(pubkey_pem, &k, err, errlen) != 0)
		goto out;
	type = EVP_PKEY_is_a(k, "ED25519") ? SSH_KEY_ED25519 : SSH_KEY_ECDSA_P256;
	ssh_put_cstring(&blob, type);
	if (ssh_put_key_fields(&blob, k) != 0 || blob.overflow) {
		ca_ossl_error(err, errlen, "cannot read the public key's parameters");
		goto out;
	}
	if ((*line = ssh_line(type, blob.data, blob.len, NULL)) == NULL) {
		snprintf(err, errlen, "out of memory for the OpenSSH public key");
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_free(k);
	return r;
}

/* --- verifying ------------------------------------------------------------------------------- */

/* Whether NOT_BEFORE..NOT_AFTER holds NOW give or take SKEW; ERR says which end was missed. */
static bool
ca_window_holds(time_t not_before, time_t not_after, time_t now, int skew, char *err, size_t errlen)
{
	char when[32];

	if (now + skew < not_before) {
		snprintf(err, errlen, "certificate is not valid until %s; check this machine's clock",
		    util_time_format((double)not_before, when, sizeof(when)));
		return false;
	}
	if (now - skew >= not_after) {
		snprintf(err, errlen, "certificate expired at %s; run postern login",
		    util_time_format((double)not_after, when, sizeof(when)));
		return false;
	}
	return true;
}

int
ca_verify_x509(const struct ca *ca, X509 *cert, time_t now, int skew, struct ca_grant *out, char *err, size_t errlen)
{
	const X509_NAME *subject = X509_get_subject_name(cert);
	unsigned char *cn = NULL;
	time_t not_before, not_after;
	uint64_t serial;
	int idx, cnlen = -1, r = -1;

	if (X509_check_issued(ca->x509_cert, cert) != X509_V_OK || X509_verify(cert, ca->x509_key) != 1) {
		snprintf(err, errlen, "certificate was not issued by this relay's CA; run postern login");
		goto out;
	}
	if (ca_asn1_time(X509_get0_notBefore(cert), &not_before) != 0 ||
	    ca_asn1_time(X509_get0_notAfter(cert), &not_after) != 0) {
		snprintf(err, errlen, "certificate has an unreadable validity period; run postern login");
		goto out;
	}
	if (!ca_window_holds(not_before, not_after, now, skew, err, errlen))
		goto out;
	if ((X509_get_extension_flags(cert) & (EXFLAG_INVALID | EXFLAG_XKUSAGE)) != EXFLAG_XKUSAGE ||
	    (X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT) == 0 || X509_check_ca(cert) != 0) {
		snprintf(err, errlen, "certificate is not a client certificate; use the one postern login wrote");
		goto out;
	}
	idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	if (idx >= 0 && X509_NAME_get_index_by_NID(subject, NID_commonName, idx) < 0)
		cnlen = ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
	if (cnlen < 0 || !ca_user_valid((const char *)cn, (size_t)cnlen) ||
	    ASN1_INTEGER_get_uint64(&serial, X509_get0_serialNumber(cert)) != 1 || serial == 0) {
		snprintf(err, errlen, "certificate does not name one valid user and serial; run postern login");
		goto out;
	}
	memcpy(out->user, cn, (size_t)cnlen);
	out->user[cnlen] = '\0';
	out->serial = serial;
	out->not_before = not_before;
	out->not_after = not_after;
	r = 0;
out:
	OPENSSL_free(cn);
	ERR_clear_error();
	return r;
}

struct ssh_cert {			/* the fields of an OpenSSH certificate that posternd checks */
	uint64_t serial;
	uint32_t type;			/* SSH_CERT_TYPE_USER or a host certificate */
	char key_id[SSH_KEY_ID_MAX];
	struct slice principals;	/* packed strings */
	uint64_t valid_after, valid_before;
	struct slice critical;		/* critical options, packed */
	struct slice signature_key;	/* the signer's public key blob */
	struct slice signature;
	size_t signed_len;		/* bytes from the start that the signature covers */
};

/* Split BLOB into C's fields (PROTOCOL.certkeys), refusing anything short, long or foreign. */
static int
ssh_cert_parse(const unsigned char *blob, size_t len, struct ssh_cert *c, char *err, size_t errlen)
{
	struct ssh_rbuf b = { blob, len };
	struct slice type, s, curve;
	bool key_ok;

	if (ssh_get_string(&b, &type) != 0 || ssh_get_string(&b, &s) != 0)	/* type, nonce */
		goto bad;
	if (slice_is(type, SSH_CERT_ED25519)) {
		key_ok = ssh_get_string(&b, &s) == 0 && s.len == crypto_sign_PUBLICKEYBYTES;
	} else if (slice_is(type, SSH_CERT_ECDSA_P256)) {
		key_ok = ssh_get_string(&b, &curve) == 0 && slice_is(curve, SSH_CURVE_P256) &&
		    ssh_get_string(&b, &s) == 0 && s.len == SSH_P256_POINT_LEN && s.ptr[0] == SSH_EC_POINT_UNCOMPRESSED;
	} else {
		snprintf(err, errlen, "not an OpenSSH certificate of a supported type (%s or %s)",
		    SSH_CERT_ED25519, SSH_CERT_ECDSA_P256);
		return -1;
	}
	if (!key_ok || ssh_get_u64(&b, &c->serial) != 0 || ssh_get_u32(&b, &c->type) != 0 ||
	    ssh_get_cstring(&b, c->key_id, sizeof(c->key_id)) != 0 || ssh_get_string(&b, &c->principals) != 0 ||
	    ssh_get_u64(&b, &c->valid_after) != 0 || ssh_get_u64(&b, &c->valid_before) != 0 ||
	    ssh_get_string(&b, &c->critical) != 0 || ssh_get_string(&b, &s) != 0 ||	/* extensions */
	    ssh_get_string(&b, &s) != 0 || ssh_get_string(&b, &c->signature_key) != 0)	/* reserved */
		goto bad;
	c->signed_len = len - b.left;
	if (ssh_get_string(&b, &c->signature) != 0)
		goto bad;
	if (b.left != 0) {
		snprintf(err, errlen, "OpenSSH certificate has trailing data after its signature (%zu bytes)", b.left);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "OpenSSH certificate is truncated or malformed; run postern login");
	return -1;
}

/* Whether C carries the SSH CA's Ed25519 signature over its first signed_len bytes of BLOB. */
static bool
ssh_cert_signed_by(const struct ca *ca, const struct ssh_cert *c, const unsigned char *blob)
{
	unsigned char keybuf[SSH_FIELD_MAX];
	struct ssh_wbuf key = SSH_WBUF(keybuf);
	struct ssh_rbuf b = { c->signature.ptr, c->signature.len };
	struct slice algo, sig;

	ssh_put_ed25519(&key, ca->ssh_pk);
	return c->signature_key.len == key.len && memcmp(c->signature_key.ptr, key.data, key.len) == 0 &&
	    ssh_get_string(&b, &algo) == 0 && slice_is(algo, SSH_KEY_ED25519) &&
	    ssh_get_string(&b, &sig) == 0 && sig.len == crypto_sign_BYTES && b.left == 0 &&
	    crypto_sign_verify_detached(sig.ptr, blob, c->signed_len, ca->ssh_pk) == 0;
}

/* The user and serial of a key id "user=<user> serial=<serial>". */
static int
ssh_key_id_parse(const char *key_id, char user[CA_USER_MAX], uint64_t *serial)
{
	static const char user_tag[] = "user=", serial_tag[] = " serial=";
	const char *name, *sp, *digits;
	char *end;

	if (strncmp(key_id, user_tag, sizeof(user_tag) - 1) != 0)
		return -1;
	name = key_id + sizeof(user_tag) - 1;
	if ((sp = strchr(name, ' ')) == NULL || !ca_user_valid(name, (size_t)(sp - name)) ||
	    strncmp(sp, serial_tag, sizeof(serial_tag) - 1) != 0)
		return -1;
	digits = sp + sizeof(serial_tag) - 1;
	if (*digits < '0' || *digits > '9')
		return -1;
	errno = 0;
	*serial = strtoull(digits, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	memcpy(user, name, (size_t)(sp - name));
	user[sp - name] = '\0';
	return 0;
}

static bool
ssh_principals_contain(struct slice principals, const char *user)
{
	struct ssh_rbuf b = { principals.ptr, principals.len };
	struct slice s;

	while (b.left > 0) {
		if (ssh_get_string(&b, &s) != 0)
			return false;
		if (slice_is(s, user))
			return true;
	}
	return false;
}

/* An SSH time (unsigned, "forever" is UINT64_MAX) as a time_t. */
static time_t
ssh_time(uint64_t t)
{
	return t > (uint64_t)INT64_MAX ? (time_t)INT64_MAX : (time_t)t;
}

int
ca_verify_ssh(const struct ca *ca, const unsigned char *blob, size_t len, time_t now, int skew,
    struct ca_grant *out, char *err, size_t errlen)
{
	struct ssh_cert c;
	char user[CA_USER_MAX];
	uint64_t id_serial;

	_Static_assert(sizeof(time_t) == sizeof(int64_t), "time_t must be 64 bits");
	if (len > SSH_CERT_MAX) {
		snprintf(err, errlen, "OpenSSH certificate is larger than %d bytes", SSH_CERT_MAX);
		return -1;
	}
	if (ssh_cert_parse(blob, len, &c, err, errlen) != 0)
		return -1;
	if (!ssh_cert_signed_by(ca, &c, blob)) {
		snprintf(err, errlen, "OpenSSH certificate was not signed by this relay's SSH CA; run postern login");
		return -1;
	}
	if (c.type != SSH_CERT_TYPE_USER) {
		snprintf(err, errlen, "OpenSSH certificate is a host certificate, not a user certificate");
		return -1;
	}
	if (!ca_window_holds(ssh_time(c.valid_after), ssh_time(c.valid_before), now, skew, err, errlen))
		return -1;
	if (c.critical.len != 0) {
		snprintf(err, errlen, "OpenSSH certificate has critical options, which posternd does not support");
		return -1;
	}
	if (ssh_key_id_parse(c.key_id, user, &id_serial) != 0 || id_serial != c.serial || c.serial == 0 ||
	    !ssh_principals_contain(c.principals, user)) {
		snprintf(err, errlen, "OpenSSH certificate's key id and principals do not name one user; run postern login");
		return -1;
	}
	memcpy(out->user, user, sizeof(out->user));
	out->serial = c.serial;
	out->not_before = ssh_time(c.valid_after);
	out->not_after = ssh_time(c.valid_before);
	return 0;
}
