/*
 * Unit tests of the relay's CAs: the state files and their modes, reloading, refusal of exposed
 * or broken keys, X.509 and OpenSSH certificates checked by the openssl and ssh-keygen tools
 * and by our own verifiers, and the listeners' TLS context in a real handshake.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "relay/ca.h"
#include "tests/unit/check.h"

#define HOUR 3600

static char root[] = "/tmp/postern-test-ca-XXXXXX";
static const char *const names[] = { "relay.example.com", "192.0.2.7" };
static time_t now;
static char dir_a[512], dir_other[512];	/* two CAs shared by most tests */
static struct ca *ca_a, *ca_other;

/* ROOT/NAME into BUF. */
__attribute__((format(printf, 2, 3)))
static const char *
pathf(char buf[512], const char *fmt, ...)
{
	char name[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	snprintf(buf, 512, "%s/%s", root, name);
	return buf;
}

static struct ca *
open_ca(const char *dir, const char *const *server_names, size_t n)
{
	struct ca *ca = NULL;
	char err[512];

	if (ca_open(dir, "test", server_names, n, NULL, NULL, &ca, err, sizeof(err)) != 0)
		printf("# ca_open(%s): %s\n", dir, err);
	return ca;
}

/* Whether ca_open(DIR) fails, with ERR holding why. */
static bool
open_fails(const char *dir, char *err, size_t errlen)
{
	struct ca *ca = NULL;

	if (ca_open(dir, "test", names, 2, NULL, NULL, &ca, err, errlen) == 0) {
		ca_free(ca);
		return false;
	}
	return true;
}

/* The output (stdout and stderr) of the shell command CMD, malloc'd; NULL if it failed. */
__attribute__((format(printf, 1, 2)))
static char *
run(const char *fmt, ...)
{
	char cmd[2048], *out = NULL;
	size_t len = 0, n;
	FILE *p, *mem;
	char buf[4096];
	va_list ap;
	int status;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd) - 8, fmt, ap);
	va_end(ap);
	strcat(cmd, " 2>&1");
	if ((p = popen(cmd, "r")) == NULL || (mem = open_memstream(&out, &len)) == NULL)
		return NULL;
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		fwrite(buf, 1, n, mem);
	fclose(mem);
	status = pclose(p);
	if (status != 0) {
		printf("# %s: exit status %d: %s\n", cmd, status, out);
		free(out);
		return NULL;
	}
	return out;
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;

	if (f == NULL || getdelim(&text, &len, '\0', f) < 0) {
		free(text);
		text = NULL;
	}
	if (f != NULL)
		fclose(f);
	return text;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

static unsigned
file_mode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0xffff;
}

/* A new key of TYPE ("P-256" or "ED25519") into *KEY; its public half as PEM, malloc'd. */
static char *
key_new(const char *type, EVP_PKEY **key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *pem = NULL;
	long n;

	*key = strcmp(type, "ED25519") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") : EVP_EC_gen("P-256");
	if (*key != NULL && PEM_write_bio_PUBKEY(bio, *key) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0)
		pem = strndup(data, (size_t)n);
	BIO_free(bio);
	return pem;
}

static struct ca_grant
grant(const char *user, uint64_t serial, time_t not_before, time_t not_after)
{
	struct ca_grant g = { .serial = serial, .not_before = not_before, .not_after = not_after };

	snprintf(g.user, sizeof(g.user), "%s", user);
	return g;
}

static X509 *
x509_parse(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	return x;
}

static char *
x509_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *pem = NULL;
	long n;

	if (PEM_write_bio_X509(bio, x) == 1 && (n = BIO_get_mem_data(bio, &data)) > 0)
		pem = strndup(data, (size_t)n);
	BIO_free(bio);
	return pem;
}

/* An X.509 client certificate from CA for G and a new key of TYPE; the key into *KEY if wanted. */
static X509 *
issue_x509(const struct ca *ca, const struct ca_grant *g, const char *type, EVP_PKEY **key)
{
	EVP_PKEY *k = NULL;
	char *pub = key_new(type, &k), *pem = NULL, err[512];
	X509 *x = NULL;

	if (ca_issue_x509(ca, g, pub, &pem, err, sizeof(err)) != 0)
		printf("# ca_issue_x509: %s\n", err);
	else
		x = x509_parse(pem);
	if (key != NULL)
		*key = k;
	else
		EVP_PKEY_free(k);
	free(pub);
	free(pem);
	return x;
}

/* An OpenSSH certificate line from CA for G and a new key of TYPE, malloc'd; its key's PEM into *PUB. */
static char *
issue_ssh(const struct ca *ca, const struct ca_grant *g, const char *type, char **pub)
{
	EVP_PKEY *k = NULL;
	char *pem = key_new(type, &k), *line = NULL, err[512];

	if (ca_issue_ssh(ca, g, pem, &line, err, sizeof(err)) != 0)
		printf("# ca_issue_ssh: %s\n", err);
	EVP_PKEY_free(k);
	if (pub != NULL)
		*pub = pem;
	else
		free(pem);
	return line;
}

/* The certificate blob of a line "<type> <base64> <comment>", malloc'd. */
static unsigned char *
ssh_blob(const char *line, size_t *len)
{
	const char *b64 = strchr(line, ' ') + 1, *end = strchr(b64, ' ');
	unsigned char *blob = malloc((size_t)(end - b64));

	if (sodium_base642bin(blob, (size_t)(end - b64), b64, (size_t)(end - b64), NULL, len, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0) {
		free(blob);
		return NULL;
	}
	return blob;
}

/* T as ssh-keygen -L (in UTC) and our error messages print it, into BUF. */
static const char *
iso_time(time_t t, char buf[64])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 64, "%Y-%m-%dT%H:%M:%S", &tm);
	return buf;
}

/* T as openssl x509 -dates prints it, into BUF. */
static const char *
openssl_time(time_t t, char buf[64])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, 64, "%b %e %H:%M:%S %Y GMT", &tm);
	return buf;
}

/* Whether the certificate in PATH ends after DAYS - 1 days from now and within DAYS + 1. */
static bool
cert_lasts_days(const char *path, long days)
{
	char cmd[1024];
	int early, late;

	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -checkend %ld >/dev/null", path, (days - 1) * 86400);
	early = system(cmd);
	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -checkend %ld >/dev/null", path, (days + 1) * 86400);
	late = system(cmd);
	return early == 0 && late != 0;
}

/* --- the state directory --------------------------------------------------------------------- */

static void
open_creates_state_files_with_private_key_modes(void)
{
	char p[512];
	char *pub;

	CHECK(file_mode(pathf(p, "a/ssh_user_ca")) == 0600);
	CHECK(file_mode(pathf(p, "a/ca.key")) == 0600);
	CHECK(file_mode(pathf(p, "a/server.key")) == 0600);
	CHECK(file_mode(pathf(p, "a/ca.crt")) == 0644);
	CHECK(file_mode(pathf(p, "a/server.crt")) == 0644);
	CHECK(file_mode(pathf(p, "a/ssh_user_ca.pub")) == 0644);

	CHECK(strncmp(ca_ssh_public(ca_a), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37) == 0);
	CHECK_CONTAINS(ca_ssh_public(ca_a), " postern-user-ca");
	pub = read_file(pathf(p, "a/ssh_user_ca.pub"));
	CHECK(pub != NULL && strncmp(pub, ca_ssh_public(ca_a), strlen(ca_ssh_public(ca_a))) == 0);
	CHECK(pub != NULL && strcmp(pub + strlen(ca_ssh_public(ca_a)), "\n") == 0);
	free(pub);
	pub = read_file(pathf(p, "a/ca.crt"));
	CHECK_STR(ca_x509_pem(ca_a), pub);
	free(pub);
}

static void
ca_certificate_is_a_ten_year_ca(void)
{
	char p[512];
	char *out = run("openssl x509 -in %s -noout -subject -ext basicConstraints,keyUsage", pathf(p, "a/ca.crt"));

	CHECK_CONTAINS(out, "subject=CN = Postern CA test");
	CHECK(cert_lasts_days(p, 3650));
	CHECK_CONTAINS(out, "Basic Constraints: critical");
	CHECK_CONTAINS(out, "CA:TRUE");
	CHECK_CONTAINS(out, "Key Usage: critical");
	CHECK_CONTAINS(out, "Certificate Sign, CRL Sign");
	free(out);
}

static void
server_certificate_names_the_relay(void)
{
	char p[512], c[512];
	char *out;

	out = run("openssl verify -purpose sslserver -CAfile %s %s", pathf(c, "a/ca.crt"), pathf(p, "a/server.crt"));
	CHECK_CONTAINS(out, ": OK");
	free(out);
	CHECK(cert_lasts_days(p, 365));
	out = run("openssl x509 -in %s -noout -ext subjectAltName,extendedKeyUsage", p);
	CHECK_CONTAINS(out, "DNS:relay.example.com");
	CHECK_CONTAINS(out, "IP Address:192.0.2.7");
	CHECK_CONTAINS(out, "DNS:localhost");
	CHECK_CONTAINS(out, "IP Address:127.0.0.1");
	CHECK_CONTAINS(out, "IP Address:0:0:0:0:0:0:0:1");
	CHECK_CONTAINS(out, "TLS Web Server Authentication");
	free(out);
}

static void
second_open_loads_the_same_ca(void)
{
	char p[512];
	char *server_before = read_file(pathf(p, "a/server.crt")), *server_after;
	struct ca *again = open_ca(dir_a, names, 2);

	CHECK(again != NULL);
	if (again != NULL) {
		CHECK_STR(ca_ssh_public(again), ca_ssh_public(ca_a));
		CHECK_STR(ca_x509_pem(again), ca_x509_pem(ca_a));
	}
	server_after = read_file(p);
	CHECK_STR(server_after, server_before);
	ca_free(again);
	free(server_before);
	free(server_after);
}

static void
new_server_name_renews_only_the_server_certificate(void)
{
	static const char *const more[] = { "relay.example.com", "192.0.2.7", "relay2.example.com" };
	char p[512];
	char *server_before = read_file(pathf(p, "a/server.crt")), *server_after, *out;
	struct ca *again = open_ca(dir_a, more, 3);

	CHECK(again != NULL);
	if (again != NULL)
		CHECK_STR(ca_x509_pem(again), ca_x509_pem(ca_a));
	server_after = read_file(p);
	CHECK(server_after != NULL && server_before != NULL && strcmp(server_after, server_before) != 0);
	out = run("openssl x509 -in %s -noout -ext subjectAltName", p);
	CHECK_CONTAINS(out, "DNS:relay2.example.com");
	ca_free(again);
	free(server_before);
	free(server_after);
	free(out);
}

static void
exposed_private_key_is_refused(void)
{
	static const char *const keys[] = { "ssh_user_ca", "ca.key", "server.key" };
	char p[512], err[512];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		CHECK(chmod(pathf(p, "a/%s", keys[i]), 0640) == 0);
		CHECK(open_fails(dir_a, err, sizeof(err)));
		CHECK_CONTAINS(err, p);
		CHECK_CONTAINS(err, "open to group or others (mode 0640); run chmod 600");
		CHECK(chmod(p, 0600) == 0);
	}
	CHECK(!open_fails(dir_a, err, sizeof(err)));
}

static void
unparseable_private_key_is_refused(void)
{
	char dir[512], p[512], err[512];

	ca_free(open_ca(pathf(dir, "broken"), names, 2));
	write_file(pathf(p, "broken/ca.key"), "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");
	CHECK(open_fails(dir, err, sizeof(err)));
	CHECK_CONTAINS(err, "ca.key is not an unencrypted PEM private key; restore it from a backup");
	CHECK(unlink(p) == 0);
	write_file(pathf(p, "broken/ssh_user_ca"), "postern-ssh-ed25519-seed-v1 AAAA\n");
	CHECK(open_fails(dir, err, sizeof(err)));
	CHECK_CONTAINS(err, "ssh_user_ca is not a Postern SSH CA key");
}

static void
ca_certificate_without_its_key_is_refused(void)
{
	char dir[512], p[512], err[512];

	ca_free(open_ca(pathf(dir, "keyless"), names, 2));
	CHECK(unlink(pathf(p, "keyless/ca.key")) == 0);
	CHECK(open_fails(dir, err, sizeof(err)));
	CHECK_CONTAINS(err, "ca.key is missing; restore the key from a backup");
}

static void
operator_certificate_replaces_the_server_certificate(void)
{
	char dir[512], cert[512], key[512], p[512], err[512];
	struct ca *ca = NULL;
	SSL_CTX *ctx;
	char *out;

	out = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=operator -days 2 "
	    "-keyout %s -out %s", pathf(key, "op.key"), pathf(cert, "op.crt"));
	free(out);
	CHECK(chmod(key, 0600) == 0);
	CHECK(ca_open(pathf(dir, "op"), "test", names, 2, cert, key, &ca, err, sizeof(err)) == 0);
	CHECK(access(pathf(p, "op/server.crt"), F_OK) != 0);
	ctx = ca != NULL ? ca_server_ctx(ca, true, err, sizeof(err)) : NULL;
	CHECK(ctx != NULL);
	if (ctx != NULL) {
		char cn[64] = "";

		X509_NAME_get_text_by_NID(X509_get_subject_name(SSL_CTX_get0_certificate(ctx)), NID_commonName, cn,
		    sizeof(cn));
		CHECK_STR(cn, "operator");
	}
	SSL_CTX_free(ctx);
	ca_free(ca);
	ca = NULL;
	CHECK(ca_open(dir, "test", names, 2, cert, NULL, &ca, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "configure both or neither");
	CHECK(ca_open(dir, "test", names, 2, cert, pathf(p, "a/server.key"), &ca, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "does not belong to the key");
}

static void
bad_server_name_is_refused(void)
{
	static const char *const bad[] = { "relay example" };
	char dir[512], err[512];
	struct ca *ca = NULL;

	CHECK(ca_open(pathf(dir, "badname"), "test", bad, 1, NULL, NULL, &ca, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "server name \"relay example\" is neither an IP address nor a DNS name");
}

/* --- X.509 client certificates ----------------------------------------------------------------- */

static void
x509_client_certificate_passes_openssl(const char *type)
{
	struct ca_grant g = grant("alice", 7, now - 60, now + 8 * HOUR);
	char p[512], c[512], when[64], want[128];
	char *out, *pem;
	X509 *x = issue_x509(ca_a, &g, type, NULL);

	CHECK(x != NULL);
	if (x == NULL)
		return;
	pem = x509_pem(x);
	write_file(pathf(p, "alice-%s.crt", type), pem);
	out = run("openssl verify -purpose sslclient -CAfile %s %s", pathf(c, "a/ca.crt"), p);
	CHECK_CONTAINS(out, ": OK");
	free(out);
	out = run("openssl x509 -in %s -noout -subject -serial -dates -ext extendedKeyUsage,keyUsage", p);
	CHECK_CONTAINS(out, "subject=CN = alice");
	CHECK_CONTAINS(out, "serial=07");
	snprintf(want, sizeof(want), "notBefore=%s", openssl_time(g.not_before, when));
	CHECK_CONTAINS(out, want);
	snprintf(want, sizeof(want), "notAfter=%s", openssl_time(g.not_after, when));
	CHECK_CONTAINS(out, want);
	CHECK_CONTAINS(out, "TLS Web Client Authentication");
	CHECK_CONTAINS(out, "Digital Signature");
	free(out);
	free(pem);
	X509_free(x);
}

static void
x509_p256_client_certificate_passes_openssl(void)
{
	x509_client_certificate_passes_openssl("P-256");
}

static void
x509_ed25519_client_certificate_passes_openssl(void)
{
	x509_client_certificate_passes_openssl("ED25519");
}

static void
x509_verify_accepts_an_issued_certificate(void)
{
	struct ca_grant g = grant("alice", 7, now - 60, now + 8 * HOUR), got;
	X509 *x = issue_x509(ca_a, &g, "ED25519", NULL);
	char err[512];

	CHECK(x != NULL && ca_verify_x509(ca_a, x, now, 0, &got, err, sizeof(err)) == 0);
	CHECK_STR(got.user, "alice");
	CHECK(got.serial == 7 && got.not_before == g.not_before && got.not_after == g.not_after);
	X509_free(x);
}

static void
x509_verify_rejects_an_expired_certificate(void)
{
	struct ca_grant g = grant("alice", 8, now - 9 * HOUR, now - HOUR), got;
	X509 *x = issue_x509(ca_a, &g, "P-256", NULL);
	char err[512], when[64], want[128];

	CHECK(x != NULL && ca_verify_x509(ca_a, x, now, 60, &got, err, sizeof(err)) != 0);
	snprintf(want, sizeof(want), "certificate expired at %sZ; run postern login", iso_time(now - HOUR, when));
	CHECK_CONTAINS(err, want);
	CHECK(x != NULL && ca_verify_x509(ca_a, x, now - 2 * HOUR, 60, &got, err, sizeof(err)) == 0);
	X509_free(x);
}

static void
x509_verify_allows_clock_skew_at_the_start_only_as_told(void)
{
	struct ca_grant g = grant("alice", 9, now + 30, now + HOUR), got;
	X509 *x = issue_x509(ca_a, &g, "P-256", NULL);
	char err[512];

	CHECK(x != NULL && ca_verify_x509(ca_a, x, now, 0, &got, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "is not valid until");
	CHECK(x != NULL && ca_verify_x509(ca_a, x, now, 60, &got, err, sizeof(err)) == 0);
	X509_free(x);
}

static void
x509_verify_rejects_another_ca(void)
{
	struct ca_grant g = grant("alice", 7, now - 60, now + HOUR), got;
	X509 *x = issue_x509(ca_other, &g, "P-256", NULL);
	char err[512];

	CHECK(x != NULL && ca_verify_x509(ca_a, x, now, 0, &got, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "certificate was not issued by this relay's CA; run postern login");
	X509_free(x);
}

static void
x509_verify_rejects_a_tampered_certificate(void)
{
	struct ca_grant g = grant("alice", 7, now - 60, now + HOUR), got;
	X509 *x = issue_x509(ca_a, &g, "P-256", NULL), *bad;
	unsigned char *der = NULL, *name;
	const unsigned char *q;
	char err[512];
	int len = i2d_X509(x, &der);

	CHECK(len > 0);
	if (len <= 0)
		return;
	/* The last byte is in the signature; "alice" is in the signed part. */
	for (int round = 0; round < 2; round++) {
		if (round == 0)
			der[len - 1] ^= 0x01;
		else if ((name = memmem(der, (size_t)len, "alice", 5)) != NULL)
			name[4] = 'x';
		q = der;
		bad = d2i_X509(NULL, &q, len);
		CHECK(bad == NULL || ca_verify_x509(ca_a, bad, now, 0, &got, err, sizeof(err)) != 0);
		X509_free(bad);
		if (round == 0)
			der[len - 1] ^= 0x01;
	}
	OPENSSL_free(der);
	X509_free(x);
}

static void
x509_verify_rejects_server_and_ca_certificates(void)
{
	char p[512], err[512];
	char *pem = read_file(pathf(p, "a/server.crt"));
	X509 *server = pem != NULL ? x509_parse(pem) : NULL, *cacert = x509_parse(ca_x509_pem(ca_a));
	struct ca_grant got;

	CHECK(server != NULL && ca_verify_x509(ca_a, server, now, 0, &got, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "not a client certificate");
	CHECK(cacert != NULL && ca_verify_x509(ca_a, cacert, now, 0, &got, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "not a client certificate");
	X509_free(server);
	X509_free(cacert);
	free(pem);
}

static void
issuing_refuses_bad_grants_and_keys(void)
{
	struct ca_grant g = grant("al ice", 7, now, now + HOUR);
	EVP_PKEY *k = NULL, *rsa = EVP_RSA_gen(2048);
	char *pub = key_new("P-256", &k), *out = NULL, err[512], rsa_pem[4096] = "";
	BIO *bio = BIO_new(BIO_s_mem());

	CHECK(ca_issue_x509(ca_a, &g, pub, &out, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "user name \"al ice\" must be");
	g = grant("alice", 0, now, now + HOUR);
	CHECK(ca_issue_ssh(ca_a, &g, pub, &out, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "serial must not be 0");
	g = grant("alice", 1, now, now);
	CHECK(ca_issue_x509(ca_a, &g, pub, &out, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "validity window is empty");
	g = grant("alice", 1, now, now + HOUR);
	CHECK(ca_issue_ssh(ca_a, &g, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", &out, err,
	    sizeof(err)) != 0);
	CHECK_CONTAINS(err, "cannot read the public key");
	PEM_write_bio_PUBKEY(bio, rsa);
	BIO_read(bio, rsa_pem, sizeof(rsa_pem) - 1);
	CHECK(ca_issue_x509(ca_a, &g, rsa_pem, &out, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "public key type RSA is not supported; use a P-256 (ECDSA) or Ed25519 key");
	CHECK(out == NULL);
	BIO_free(bio);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(k);
	free(pub);
}

/* --- OpenSSH certificates ---------------------------------------------------------------------- */

/* The "SHA256:…" fingerprint in ssh-keygen -l's output for the key in PATH, malloc'd. */
static char *
fingerprint(const char *path)
{
	char *out = run("ssh-keygen -l -f %s", path), *fp, *end;

	if (out == NULL || (fp = strstr(out, "SHA256:")) == NULL || (end = strchr(fp, ' ')) == NULL) {
		free(out);
		return NULL;
	}
	*end = '\0';
	fp = strdup(fp);
	free(out);
	return fp;
}

static void
ssh_certificate_is_read_by_ssh_keygen(const char *type, const char *cert_type, const char *key_type)
{
	struct ca_grant g = grant("alice", 7, now - 60, now + 8 * HOUR);
	char *pub = NULL, *line = issue_ssh(ca_a, &g, type, &pub), *keyline = NULL, err[512];
	char p[512], k[512], want[256], from[64], to[64];
	char *out, *cafp, *keyfp;

	CHECK(line != NULL);
	if (line == NULL)
		return;
	CHECK(strncmp(line, cert_type, strlen(cert_type)) == 0 && line[strlen(cert_type)] == ' ');
	CHECK(strcmp(line + strlen(line) - strlen(" alice@postern"), " alice@postern") == 0);
	write_file(pathf(p, "alice-%s-cert.pub", type), line);
	CHECK(ca_ssh_pubkey_line(pub, &keyline, err, sizeof(err)) == 0);
	CHECK(keyline != NULL && strncmp(keyline, key_type, strlen(key_type)) == 0);
	write_file(pathf(k, "alice-%s.pub", type), keyline != NULL ? keyline : "");

	out = run("TZ=UTC ssh-keygen -L -f %s", p);
	snprintf(want, sizeof(want), "Type: %s user certificate", cert_type);
	CHECK_CONTAINS(out, want);
	CHECK_CONTAINS(out, "Signing CA: ED25519 SHA256:");
	CHECK_CONTAINS(out, "(using ssh-ed25519)");
	CHECK_CONTAINS(out, "Key ID: \"user=alice serial=7\"");
	CHECK_CONTAINS(out, "Serial: 7");
	snprintf(want, sizeof(want), "Valid: from %s to %s", iso_time(g.not_before, from),
	    iso_time(g.not_after, to));
	CHECK_CONTAINS(out, want);
	CHECK_CONTAINS(out, "Principals: \n                alice\n");
	CHECK_CONTAINS(out, "Critical Options: (none)");
	CHECK_CONTAINS(out, "Extensions: \n                permit-X11-forwarding\n                permit-agent-forwarding\n"
	    "                permit-port-forwarding\n                permit-pty\n                permit-user-rc\n");
	/* The certified key is the one we asked for, and the signer is the CA in ssh_user_ca.pub. */
	cafp = fingerprint(pathf(k, "a/ssh_user_ca.pub"));
	CHECK(cafp != NULL);
	if (cafp != NULL)
		CHECK_CONTAINS(out, cafp);
	keyfp = fingerprint(pathf(k, "alice-%s.pub", type));
	CHECK(keyfp != NULL);
	if (keyfp != NULL)
		CHECK_CONTAINS(out, keyfp);
	free(cafp);
	free(keyfp);
	free(out);
	free(keyline);
	free(line);
	free(pub);
}

static void
ssh_p256_certificate_is_read_by_ssh_keygen(void)
{
	ssh_certificate_is_read_by_ssh_keygen("P-256", "ecdsa-sha2-nistp256-cert-v01@openssh.com", "ecdsa-sha2-nistp256 ");
}

static void
ssh_ed25519_certificate_is_read_by_ssh_keygen(void)
{
	ssh_certificate_is_read_by_ssh_keygen("ED25519", "ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519 ");
}

static void
ssh_public_key_line_matches_ssh_keygen(void)
{
	EVP_PKEY *k = NULL;
	char *pem = key_new("P-256", &k), *line = NULL, *out, p[512], err[512];

	write_file(pathf(p, "p256.pem"), pem);
	CHECK(ca_ssh_pubkey_line(pem, &line, err, sizeof(err)) == 0);
	out = run("ssh-keygen -i -m PKCS8 -f %s", p);
	CHECK(out != NULL && line != NULL && strncmp(out, line, strlen(line)) == 0);
	free(out);
	free(line);
	free(pem);
	EVP_PKEY_free(k);
}

static void
ssh_verify_accepts_an_issued_certificate(void)
{
	static const char *const types[] = { "P-256", "ED25519" };

	for (size_t i = 0; i < 2; i++) {
		struct ca_grant g = grant("alice", 7, now - 60, now + 8 * HOUR), got;
		char *line = issue_ssh(ca_a, &g, types[i], NULL), err[512];
		size_t len = 0;
		unsigned char *blob = line != NULL ? ssh_blob(line, &len) : NULL;

		CHECK(blob != NULL && ca_verify_ssh(ca_a, blob, len, now, 0, &got, err, sizeof(err)) == 0);
		CHECK_STR(got.user, "alice");
		CHECK(got.serial == 7 && got.not_before == g.not_before && got.not_after == g.not_after);
		free(blob);
		free(line);
	}
}

static void
ssh_verify_rejects_an_expired_certificate(void)
{
	struct ca_grant g = grant("alice", 7, now - 9 * HOUR, now - HOUR), got;
	char *line = issue_ssh(ca_a, &g, "P-256", NULL), err[512], when[64], want[128];
	size_t len = 0;
	unsigned char *blob = line != NULL ? ssh_blob(line, &len) : NULL;

	CHECK(blob != NULL && ca_verify_ssh(ca_a, blob, len, now, 60, &got, err, sizeof(err)) != 0);
	snprintf(want, sizeof(want), "certificate expired at %sZ; run postern login", iso_time(now - HOUR, when));
	CHECK_CONTAINS(err, want);
	free(blob);
	free(line);
}

static void
ssh_verify_rejects_another_ca(void)
{
	struct ca_grant g = grant("alice", 7, now - 60, now + HOUR), got;
	char *line = issue_ssh(ca_other, &g, "ED25519", NULL), err[512];
	size_t len = 0;
	unsigned char *blob = line != NULL ? ssh_blob(line, &len) : NULL;

	CHECK(blob != NULL && ca_verify_ssh(ca_a, blob, len, now, 0, &got, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "was not signed by this relay's SSH CA");
	free(blob);
	free(line);
}

static void
ssh_verify_rejects_every_truncation_and_trailing_data(void)
{
	struct ca_grant g = grant("alice", 7, now - 60, now + HOUR), got;
	char *line = issue_ssh(ca_a, &g, "P-256", NULL), err[512];
	size_t len = 0, accepted = 0;
	unsigned char *blob = line != NULL ? ssh_blob(line, &len) : NULL, *longer;

	CHECK(blob != NULL);
	if (blob == NULL)
		return;
	for (size_t n = 0; n < len; n++) {
		unsigned char *copy = malloc(n + 1);	/* exactly N bytes for ASan to watch */

		memcpy(copy, blob, n);
		accepted += ca_verify_ssh(ca_a, copy, n, now, 0, &got, err, sizeof(err)) == 0;
		free(copy);
	}
	CHECK(accepted == 0);
	CHECK(ca_verify_ssh(ca_a, blob, len - 1, now, 0, &got, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "truncated or malformed");
	longer = malloc(len + 1);
	memcpy(longer, blob, len);
	longer[len] = 0;
	CHECK(ca_verify_ssh(ca_a, longer, len + 1, now, 0, &got, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "has trailing data after its signature (1 bytes)");
	free(longer);
	free(blob);
	free(line);
}

static void
ssh_verify_rejects_a_changed_key_id(void)
{
	struct ca_grant g = grant("alice", 7, now - 60, now + HOUR), got;
	char *line = issue_ssh(ca_a, &g, "ED25519", NULL), err[512];
	size_t len = 0;
	unsigned char *blob = line != NULL ? ssh_blob(line, &len) : NULL, *id;

	id = blob != NULL ? memmem(blob, len, "user=alice", 10) : NULL;
	CHECK(id != NULL);
	if (id != NULL) {
		memcpy(id, "user=mallo", 10);
		CHECK(ca_verify_ssh(ca_a, blob, len, now, 0, &got, err, sizeof(err)) != 0);
		CHECK_CONTAINS(err, "was not signed by this relay's SSH CA");
	}
	free(blob);
	free(line);
}

/* --- the listeners' TLS context ---------------------------------------------------------------- */

/* A TLS handshake over a socket pair; whether the server completed it. The client's cert into *PEER. */
static bool
handshake(SSL_CTX *sctx, SSL_CTX *cctx, X509 **peer)
{
	int sv[2], r;
	SSL *s = NULL, *c = NULL;
	bool server_done = false, server_failed = false, client_done = false;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return false;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	s = SSL_new(sctx);
	c = SSL_new(cctx);
	SSL_set_fd(s, sv[0]);
	SSL_set_fd(c, sv[1]);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	SSL_set_tlsext_host_name(c, "localhost");
	SSL_set1_host(c, "localhost");
	for (int i = 0; i < 100 && !server_done && !server_failed; i++) {
		if (!client_done && (r = SSL_do_handshake(c)) == 1)
			client_done = true;
		r = SSL_do_handshake(s);
		if (r == 1)
			server_done = true;
		else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ && SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE)
			server_failed = true;
	}
	if (server_done && peer != NULL)
		*peer = SSL_get1_peer_certificate(s);
	SSL_free(s);
	SSL_free(c);
	close(sv[0]);
	close(sv[1]);
	ERR_clear_error();
	return server_done;
}

/* A client context that trusts CA and, when CERT is not NULL, presents CERT with KEY. */
static SSL_CTX *
client_ctx(const struct ca *ca, X509 *cert, EVP_PKEY *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509 *cacert = x509_parse(ca_x509_pem(ca));

	X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cacert);
	X509_free(cacert);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (cert != NULL) {
		SSL_CTX_use_certificate(ctx, cert);
		SSL_CTX_use_PrivateKey(ctx, key);
	}
	return ctx;
}

static void
tls_handshake_with_an_issued_certificate_succeeds(void)
{
	struct ca_grant g = grant("alice", 7, now - 60, now + HOUR), got;
	EVP_PKEY *key = NULL;
	X509 *cert = issue_x509(ca_a, &g, "P-256", &key), *peer = NULL;
	char err[512];
	SSL_CTX *sctx = ca_server_ctx(ca_a, true, err, sizeof(err)), *cctx = client_ctx(ca_a, cert, key);

	CHECK(sctx != NULL && cert != NULL);
	if (sctx != NULL && cert != NULL) {
		CHECK(handshake(sctx, cctx, &peer));
		CHECK(peer != NULL && ca_verify_x509(ca_a, peer, now, 0, &got, err, sizeof(err)) == 0);
		CHECK_STR(got.user, "alice");
	}
	X509_free(peer);
	X509_free(cert);
	EVP_PKEY_free(key);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

static void
tls_handshake_without_a_certificate_fails_only_when_required(void)
{
	char err[512];
	SSL_CTX *required = ca_server_ctx(ca_a, true, err, sizeof(err));
	SSL_CTX *optional = ca_server_ctx(ca_a, false, err, sizeof(err));
	SSL_CTX *cctx = client_ctx(ca_a, NULL, NULL);
	X509 *peer = NULL;

	CHECK(required != NULL && optional != NULL);
	if (required != NULL && optional != NULL) {
		CHECK(!handshake(required, cctx, NULL));
		CHECK(handshake(optional, cctx, &peer));
		CHECK(peer == NULL);
	}
	SSL_CTX_free(required);
	SSL_CTX_free(optional);
	SSL_CTX_free(cctx);
}

static void
tls_handshake_with_another_cas_certificate_fails(void)
{
	struct ca_grant g = grant("alice", 7, now - 60, now + HOUR);
	EVP_PKEY *key = NULL;
	X509 *cert = issue_x509(ca_other, &g, "P-256", &key);
	char err[512];
	SSL_CTX *sctx = ca_server_ctx(ca_a, false, err, sizeof(err)), *cctx = client_ctx(ca_a, cert, key);

	CHECK(sctx != NULL && cert != NULL);
	if (sctx != NULL && cert != NULL)
		CHECK(!handshake(sctx, cctx, NULL));
	X509_free(cert);
	EVP_PKEY_free(key);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}

int
main(void)
{
	int failed;

	now = time(NULL);
	if (mkdtemp(root) == NULL)
		return 1;
	ca_a = open_ca(pathf(dir_a, "a"), names, 2);
	ca_other = open_ca(pathf(dir_other, "other"), names, 2);
	if (ca_a == NULL || ca_other == NULL)
		return 1;
	TEST(open_creates_state_files_with_private_key_modes);
	TEST(ca_certificate_is_a_ten_year_ca);
	TEST(server_certificate_names_the_relay);
	TEST(second_open_loads_the_same_ca);
	TEST(new_server_name_renews_only_the_server_certificate);
	TEST(exposed_private_key_is_refused);
	TEST(unparseable_private_key_is_refused);
	TEST(ca_certificate_without_its_key_is_refused);
	TEST(operator_certificate_replaces_the_server_certificate);
	TEST(bad_server_name_is_refused);
	TEST(x509_p256_client_certificate_passes_openssl);
	TEST(x509_ed25519_client_certificate_passes_openssl);
	TEST(x509_verify_accepts_an_issued_certificate);
	TEST(x509_verify_rejects_an_expired_certificate);
	TEST(x509_verify_allows_clock_skew_at_the_start_only_as_told);
	TEST(x509_verify_rejects_another_ca);
	TEST(x509_verify_rejects_a_tampered_certificate);
	TEST(x509_verify_rejects_server_and_ca_certificates);
	TEST(issuing_refuses_bad_grants_and_keys);
	TEST(ssh_p256_certificate_is_read_by_ssh_keygen);
	TEST(ssh_ed25519_certificate_is_read_by_ssh_keygen);
	TEST(ssh_public_key_line_matches_ssh_keygen);
	TEST(ssh_verify_accepts_an_issued_certificate);
	TEST(ssh_verify_rejects_an_expired_certificate);
	TEST(ssh_verify_rejects_another_ca);
	TEST(ssh_verify_rejects_every_truncation_and_trailing_data);
	TEST(ssh_verify_rejects_a_changed_key_id);
	TEST(tls_handshake_with_an_issued_certificate_succeeds);
	TEST(tls_handshake_without_a_certificate_fails_only_when_required);
	TEST(tls_handshake_with_another_cas_certificate_fails);
	ca_free(ca_a);
	ca_free(ca_other);
	failed = CHECK_DONE();
	if (!failed) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", root);
	}
	return failed;
}
