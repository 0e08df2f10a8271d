/*
 * postern login, status and logout.
 *
 * Enrolment trusts nothing the network says until the relay's CA matches the pin in the
 * invite; from then on every request verifies the relay against that CA. Login asks for a
 * challenge, makes a fresh P-256 key for the session, signs challenge and public key with
 * the device key, and stores what the relay certifies: the key and X.509 certificate for
 * psql/mysql, the same key and an OpenSSH certificate for ssh. Files are replaced whole;
 * session.json is written last and removed first, so it exists only beside a complete set.
 */
#include "client/login.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "client/device.h"
#include "client/home.h"
#include "client/https.h"
#include "relay/ca.h"
#include "relay/totp.h"

#define LOGIN_PIN_BYTES		20	/* of the CA's SHA-256: what posternctl users invite prints */
#define LOGIN_PIN_LEN		32	/* base32 characters of those bytes */
#define LOGIN_USER_MAX		64	/* the relay's limits on user names and device ids */
#define LOGIN_DEVICE_ID_MAX	16
#define LOGIN_DEVICE_NAME_MAX	64
#define LOGIN_DEVICE_NAME_CHARS	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._- "
#define LOGIN_NAME_CHARS	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@"
#define LOGIN_TOTP_TRIES	3	/* prompts per run; the relay rate-limits after 5 failures */
#define LOGIN_WARN_SEC		(15 * 60)	/* status warns when less than this is left */
#define LOGIN_SSH_CERT_TYPE	"ecdsa-sha2-nistp256-cert-v01@openssh.com "
#define LOGIN_SSH_COMMENT	"postern"
#define LOGIN_ERR_MAX		1024

#define API_CA			"/v1/ca"
#define API_ENROL		"/v1/enrol"
#define API_CHALLENGE		"/v1/challenge"
#define API_LOGIN		"/v1/login"
#define API_CODE_TOTP_REQUIRED	"totp_required"
#define API_CODE_BAD_TOTP	"bad_totp"

struct login_opts {			/* postern login's arguments */
	const char *url;		/* NULL: the remembered one */
	const char *invite;		/* CODE.PIN, or NULL when already enrolled */
	const char *totp;		/* the code given with --totp, or NULL */
	const char *device_name;	/* NULL: the host name */
};

struct login_state {			/* this device's enrolment: relay.json, device.key, ca.crt */
	struct https_url url;
	char user[LOGIN_USER_MAX];
	char device_id[LOGIN_DEVICE_ID_MAX];
	bool mfa;			/* the relay asked for TOTP: prompt before, not after, a try */
	char *ca_pem;			/* malloc'd */
	struct device_key key;
};

static void
login_state_free(struct login_state *st)
{
	if (st->ca_pem != NULL)
		free(st->ca_pem);
	device_key_wipe(&st->key);
	memset(st, 0, sizeof(*st));
}

static bool
login_name_ok(const char *s, size_t max, const char *chars)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n < max && strspn(s, chars) == n;
}

/* "2025-06-01 18:00:00 CEST" for T in local time. */
static const char *
login_local_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		snprintf(buf, size, "%lld (seconds since 1970)", (long long)t);
	return buf;
}

/* Wipe the string under KEY in OBJ: jansson frees its strings without wiping them. */
static void
login_json_wipe(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

/* ---- talking to the relay ---- */

/*
 * METHOD PATH with BODY (or none) to the relay; its JSON reply object in *OUT and the HTTP
 * status in *STATUS. CA_PEM as for https_request(). An enum postern_exit with ERR.
 */
static int
login_call(const struct https_url *url, const char *ca_pem, const char *method, const char *path, json_t *body,
    json_t **out, int *status, char *err, size_t errlen)
{
	struct https_reply reply;
	json_error_t jerr;
	char *text = NULL;
	int r;

	*out = NULL;
	if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return POSTERN_EXIT_ERROR;
	}
	r = https_request(url, ca_pem, method, path, text, &reply, err, errlen);
	if (text != NULL) {
		sodium_memzero(text, strlen(text));	/* an invite, a signature or a TOTP code */
		free(text);
	}
	if (r != HTTPS_OK)
		return r == HTTPS_ERR_UNREACHABLE ? POSTERN_EXIT_UNREACHABLE : POSTERN_EXIT_ERROR;
	*status = reply.status;
	*out = json_loadb(reply.body, reply.len, JSON_REJECT_DUPLICATES, &jerr);
	https_reply_free(&reply);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		snprintf(err, errlen, "the relay at %s answered %s %s with HTTP %d but no JSON object; check that the "
		    "URL is the relay's login API (api_url in posternd.lua)", url->text, method, path, *status);
		return POSTERN_EXIT_ERROR;
	}
	return POSTERN_EXIT_OK;
}

/* The relay's own explanation in the error reply DOC, for the user. */
static const char *
login_api_error(const json_t *doc, int status, char *buf, size_t size)
{
	const char *msg = json_string_value(json_object_get(doc, "error"));

	if (msg != NULL && msg[0] != '\0')
		return msg;
	snprintf(buf, size, "the relay answered HTTP %d without saying why; ask your admin to look at its log", status);
	return buf;
}

static const char *
login_api_code(const json_t *doc)
{
	const char *code = json_string_value(json_object_get(doc, "code"));

	return code ? code : "";
}

/* ---- enrolment ---- */

/* The pin of CA_PEM: base32 of the first LOGIN_PIN_BYTES of its SHA-256, into OUT. */
static int
login_ca_pin(const char *ca_pem, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(ca_pem, strlen(ca_pem), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < LOGIN_PIN_BYTES)
		return -1;
	return base32_encode(md, LOGIN_PIN_BYTES, out, outlen) == LOGIN_PIN_LEN ? 0 : -1;
}

/* Whether INVITE looks like CODE.PIN with a well-formed pin; *PIN points into it. */
static bool
login_invite_split(const char *invite, const char **pin)
{
	const char *dot = strchr(invite, '.');

	if (dot == NULL || dot == invite || strchr(dot + 1, '.') != NULL || strlen(dot + 1) != LOGIN_PIN_LEN)
		return false;
	for (const char *p = dot + 1; *p; p++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", toupper((unsigned char)*p)) == NULL)
			return false;
	*pin = dot + 1;
	return true;
}

/* The device name to enrol under: NAME as given, else the host name made acceptable. */
static void
login_device_name(const char *name, char *out, size_t outlen)
{
	char host[256] = "";

	if (name != NULL) {
		snprintf(out, outlen, "%s", name);
		return;
	}
	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "device");
	host[LOGIN_DEVICE_NAME_MAX] = '\0';
	for (char *p = host; *p; p++)
		if (strchr(LOGIN_DEVICE_NAME_CHARS, *p) == NULL)
			*p = '-';
	snprintf(out, outlen, "%s", host);
}

/* Write one text file with a trailing newline added. */
static int
login_write_line(const struct home *h, const char *name, const char *line, char *err, size_t errlen)
{
	char *text = NULL;
	int r;

	if (asprintf(&text, "%s\n", line) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r = home_write(h, name, text, strlen(text), err, errlen);
	free(text);
	return r;
}

/* Write relay.json for ST. */
static int
login_save_relay(const struct home *h, const struct login_state *st, char *err, size_t errlen)
{
	json_t *doc = json_pack("{s:s, s:s, s:s, s:b}", "url", st->url.text, "user", st->user, "device_id",
	    st->device_id, "mfa", st->mfa);
	char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
	int r = -1;

	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	r = login_write_line(h, HOME_RELAY, text, err, errlen);
out:
	free(text);
	json_decref(doc);
	return r;
}

/*
 * Fetch the relay's CA without trusting the connection, check it against the invite's pin,
 * then enrol a new device key over a connection verified against that CA. Fills ST and
 * writes the enrolment files; *TOTP_NEW says a TOTP secret was just shown (so any --totp
 * given with the invite cannot be for it).
 */
static int
login_enrol(const struct home *h, const struct login_opts *o, struct login_state *st, bool *totp_new)
{
	char err[LOGIN_ERR_MAX], pin[LOGIN_PIN_LEN + 1], name[LOGIN_DEVICE_NAME_MAX + 1], pk[DEVICE_PK_B64_LEN];
	char keytext[DEVICE_KEY_TEXT_LEN], why[128];
	const char *invite_pin = NULL, *ca, *ssh_ca, *user, *device, *uri;
	char *ssh_ca_line = NULL;
	json_t *doc = NULL, *req = NULL;
	int status = 0, r;

	*totp_new = false;
	if (!login_invite_split(o->invite, &invite_pin)) {
		home_say("--invite takes CODE.PIN exactly as posternctl users invite printed it (the PIN is %d "
		    "characters); ask your admin to send it again", LOGIN_PIN_LEN);
		return POSTERN_EXIT_USAGE;
	}
	/* 1. The CA, over TLS we cannot check yet: nothing secret goes out on it. */
	if ((r = login_call(&st->url, NULL, "GET", API_CA, NULL, &doc, &status, err, sizeof(err))) != 0) {
		home_say("%s", err);
		goto out;
	}
	ca = json_string_value(json_object_get(doc, "ca_x509"));
	ssh_ca = json_string_value(json_object_get(doc, "ca_ssh"));
	if (status != 200 || ca == NULL || ssh_ca == NULL || strchr(ssh_ca, '\n') != NULL) {
		home_say("the relay at %s did not hand out its CA (HTTP %d); check that the URL is the relay's login "
		    "API", st->url.text, status);
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	if (login_ca_pin(ca, pin, sizeof(pin)) != 0 || strcasecmp(pin, invite_pin) != 0) {
		home_say("the relay's CA does not match the invite's pin: someone may be intercepting; ask your admin");
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	if ((st->ca_pem = strdup(ca)) == NULL || (ssh_ca_line = strdup(ssh_ca)) == NULL) {
		home_say("out of memory");
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	json_decref(doc);
	doc = NULL;

	/* 2. Enrol a new device key, on TLS verified against the pinned CA. */
	login_device_name(o->device_name, name, sizeof(name));
	if (device_key_new(&st->key) != 0 || device_key_public_b64(&st->key, pk, sizeof(pk)) != 0 ||
	    device_key_format(&st->key, keytext, sizeof(keytext)) != 0 ||
	    (req = json_pack("{s:s, s:s, s:s}", "invite", o->invite, "device_key", pk, "device_name", name)) == NULL) {
		home_say("cannot make a device key (libsodium failed)");
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	r = login_call(&st->url, st->ca_pem, "POST", API_ENROL, req, &doc, &status, err, sizeof(err));
	login_json_wipe(req, "invite");
	if (r != 0) {
		home_say("%s", err);
		goto out;
	}
	if (status != 200) {
		home_say("enrolment refused: %s", login_api_error(doc, status, why, sizeof(why)));
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	user = json_string_value(json_object_get(doc, "user"));
	device = json_string_value(json_object_get(doc, "device_id"));
	if (!login_name_ok(user, sizeof(st->user), LOGIN_NAME_CHARS) ||
	    !login_name_ok(device, sizeof(st->device_id), LOGIN_NAME_CHARS)) {
		home_say("the relay's enrolment reply lacks a valid user or device_id; ask your admin to look at its log");
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	snprintf(st->user, sizeof(st->user), "%s", user);
	snprintf(st->device_id, sizeof(st->device_id), "%s", device);
	st->mfa = json_is_true(json_object_get(doc, "mfa"));

	/* 3. Keep what we need to log in again; relay.json last, as it says the rest is there. */
	if (home_write(h, HOME_DEVICE_KEY, keytext, strlen(keytext), err, sizeof(err)) != 0 ||
	    home_write(h, HOME_CA, st->ca_pem, strlen(st->ca_pem), err, sizeof(err)) != 0 ||
	    login_write_line(h, HOME_SSH_CA, ssh_ca_line, err, sizeof(err)) != 0 ||
	    login_save_relay(h, st, err, sizeof(err)) != 0) {
		home_say("%s (the invite is now used up: ask your admin for a new one)", err);
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	printf("enrolled this device (\"%s\", device %s) for %s at %s\n", name, st->device_id, st->user, st->url.text);
	if ((uri = json_string_value(json_object_get(doc, "totp_uri"))) != NULL) {
		printf("\nYour role requires a one-time code at each login. Add this to your authenticator app now\n"
		    "(it is shown only once; if you lose it, ask your admin for a new invite):\n\n  %s\n\n", uri);
		fflush(stdout);
		login_json_wipe(doc, "totp_uri");
		*totp_new = true;
		st->mfa = true;
	}
	r = POSTERN_EXIT_OK;
out:
	free(ssh_ca_line);
	sodium_memzero(keytext, sizeof(keytext));
	json_decref(req);
	json_decref(doc);
	return r;
}

/* The relay URL remembered in relay.json into OUT, or "" when there is none. */
static void
login_saved_url(const struct home *h, char *out, size_t outlen)
{
	char err[LOGIN_ERR_MAX], *text = NULL;
	size_t len = 0;
	json_error_t jerr;
	json_t *doc;

	out[0] = '\0';
	if (home_read(h, HOME_RELAY, false, &text, &len, err, sizeof(err)) != 0)
		return;
	doc = json_loadb(text, len, 0, &jerr);
	if (json_is_string(json_object_get(doc, "url")))
		snprintf(out, outlen, "%s", json_string_value(json_object_get(doc, "url")));
	json_decref(doc);
	home_free(text, len);
}

/* Load this device's enrolment from the home into ST; URL, when given, replaces the saved one. */
static int
login_load(const struct home *h, const char *url, struct login_state *st)
{
	char err[LOGIN_ERR_MAX], *text = NULL, path[PATH_MAX];
	const char *saved_url, *user, *device;
	size_t len = 0;
	json_t *doc = NULL;
	json_error_t jerr;
	int r = POSTERN_EXIT_ERROR, rr;

	if ((rr = home_read(h, HOME_RELAY, false, &text, &len, err, sizeof(err))) == HOME_MISSING) {
		home_say("this device is not enrolled yet: run postern login URL --invite CODE.PIN with the invite "
		    "from your admin");
		return POSTERN_EXIT_ERROR;
	}
	if (rr != 0) {
		home_say("%s", err);
		return POSTERN_EXIT_ERROR;
	}
	doc = json_loadb(text, len, 0, &jerr);
	home_free(text, len);
	text = NULL;
	saved_url = json_string_value(json_object_get(doc, "url"));
	user = json_string_value(json_object_get(doc, "user"));
	device = json_string_value(json_object_get(doc, "device_id"));
	if (saved_url == NULL || !login_name_ok(user, sizeof(st->user), LOGIN_NAME_CHARS) ||
	    !login_name_ok(device, sizeof(st->device_id), LOGIN_NAME_CHARS)) {
		home_say("%s is damaged; enrol again with an invite (postern login URL --invite CODE.PIN)",
		    home_path(h, HOME_RELAY, path, sizeof(path)));
		goto out;
	}
	if (https_url_parse(url ? url : saved_url, &st->url, err, sizeof(err)) != 0) {
		home_say("%s", err);
		r = url ? POSTERN_EXIT_USAGE : POSTERN_EXIT_ERROR;
		goto out;
	}
	snprintf(st->user, sizeof(st->user), "%s", user);
	snprintf(st->device_id, sizeof(st->device_id), "%s", device);
	st->mfa = json_is_true(json_object_get(doc, "mfa"));
	if ((rr = home_read(h, HOME_DEVICE_KEY, true, &text, &len, err, sizeof(err))) != 0) {
		if (rr == HOME_MISSING)
			home_say("%s is missing, so this device cannot prove itself; enrol again with an invite "
			    "(postern login URL --invite CODE.PIN)", home_path(h, HOME_DEVICE_KEY, path, sizeof(path)));
		else
			home_say("%s", err);
		goto out;
	}
	if (device_key_parse(text, &st->key, err, sizeof(err)) != 0) {
		home_say("%s %s", home_path(h, HOME_DEVICE_KEY, path, sizeof(path)), err);
		goto out;
	}
	home_free(text, len);
	text = NULL;
	if ((rr = home_read(h, HOME_CA, false, &st->ca_pem, &len, err, sizeof(err))) != 0) {
		if (rr == HOME_MISSING)
			home_say("%s is missing, so the relay cannot be checked; enrol again with an invite "
			    "(postern login URL --invite CODE.PIN)", home_path(h, HOME_CA, path, sizeof(path)));
		else
			home_say("%s", err);
		goto out;
	}
	r = POSTERN_EXIT_OK;
out:
	home_free(text, len);
	json_decref(doc);
	return r;
}

/* ---- login ---- */

/* A new P-256 key for this session and its public key as "BEGIN PUBLIC KEY" PEM. */
static int
login_session_key(EVP_PKEY **key, char **pubpem)
{
	BIO *bio = NULL;
	char *data;
	long n;
	int r = -1;

	*pubpem = NULL;
	if ((*key = EVP_EC_gen("P-256")) == NULL || (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, *key) != 1 || (n = BIO_get_mem_data(bio, &data)) <= 0)
		goto out;
	if ((*pubpem = strndup(data, (size_t)n)) == NULL)
		goto out;
	r = 0;
out:
	BIO_free(bio);
	if (r != 0) {
		EVP_PKEY_free(*key);
		*key = NULL;
	}
	return r;
}

/*
 * One login round: a challenge, a fresh session key, the signed proof. *DOC gets the
 * relay's last reply (the login's, or the challenge's if that was refused), *STATUS its
 * status, and *KEY the session key. An enum postern_exit for transport failures.
 */
static int
login_attempt(const struct login_state *st, const char *totp, json_t **doc, int *status, EVP_PKEY **key,
    char **pubpem, char *err, size_t errlen)
{
	char sig[DEVICE_SIG_B64_LEN];
	const char *challenge;
	json_t *req = NULL;
	int r;

	*key = NULL;
	*pubpem = NULL;
	if ((req = json_pack("{s:s, s:s}", "user", st->user, "device_id", st->device_id)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return POSTERN_EXIT_ERROR;
	}
	r = login_call(&st->url, st->ca_pem, "POST", API_CHALLENGE, req, doc, status, err, errlen);
	json_decref(req);
	req = NULL;
	if (r != 0 || *status != 200)
		return r;
	if ((challenge = json_string_value(json_object_get(*doc, "challenge"))) == NULL) {
		snprintf(err, errlen, "the relay's challenge reply has no challenge; ask your admin to look at its log");
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	if (login_session_key(key, pubpem) != 0 || device_key_sign_login(&st->key, challenge, *pubpem, sig, sizeof(sig)) != 0) {
		snprintf(err, errlen, "cannot make the session key (OpenSSL or libsodium failed)");
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", st->user, "device_id", st->device_id, "challenge",
	    challenge, "signature", sig, "public_key", *pubpem);
	if (req == NULL || (totp != NULL && json_object_set_new(req, "totp", json_string(totp)) != 0)) {
		snprintf(err, errlen, "out of memory");
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	json_decref(*doc);
	*doc = NULL;
	r = login_call(&st->url, st->ca_pem, "POST", API_LOGIN, req, doc, status, err, errlen);
	login_json_wipe(req, "totp");
out:
	sodium_memzero(sig, sizeof(sig));
	json_decref(req);
	if (r != 0) {
		EVP_PKEY_free(*key);
		*key = NULL;
		free(*pubpem);
		*pubpem = NULL;
	}
	return r;
}

/* Ask on the terminal for a TOTP code into OUT. 0, or -1 when none came. */
static int
login_prompt_code(char *out, size_t outlen)
{
	char line[64];

	if (outlen < TOTP_DIGITS + 1)
		return -1;
	for (int tries = 0; tries < LOGIN_TOTP_TRIES; tries++) {
		size_t n = 0;
		bool bad = false;

		fputs("TOTP code: ", stderr);
		fflush(stderr);
		if (fgets(line, sizeof(line), stdin) == NULL)
			break;
		/* Apps show "123 456": take the digits, refuse anything else, and a digit too many. */
		for (const char *p = line; *p && !bad; p++) {
			if (isdigit((unsigned char)*p)) {
				if (n < TOTP_DIGITS)
					out[n] = *p;
				n++;
			} else if (!isspace((unsigned char)*p)) {
				bad = true;
			}
		}
		if (!bad && n == TOTP_DIGITS) {
			out[n] = '\0';
			sodium_memzero(line, sizeof(line));
			return 0;
		}
		fprintf(stderr, "a TOTP code is the %d digits your authenticator app shows; try again\n", TOTP_DIGITS);
	}
	sodium_memzero(line, sizeof(line));
	return -1;
}

static bool
login_code_ok(const char *code)
{
	return strlen(code) == TOTP_DIGITS && strspn(code, "0123456789") == TOTP_DIGITS;
}

/* The session key as PKCS#8 PEM ("BEGIN PRIVATE KEY"), in memory that is wiped when freed. */
static char *
login_key_pem(EVP_PKEY *key, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *data, *out = NULL;
	long n;

	if (bio != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0 && (out = malloc((size_t)n + 1)) != NULL) {
		memcpy(out, data, (size_t)n);
		out[n] = '\0';
		*len = (size_t)n;
	}
	BIO_free(bio);
	return out;
}

/* Whether CERT_PEM certifies KEY and was signed by the relay's CA_PEM. */
static bool
login_cert_ok(const char *cert_pem, EVP_PKEY *key, const char *ca_pem)
{
	BIO *cb = BIO_new_mem_buf(cert_pem, -1), *ab = BIO_new_mem_buf(ca_pem, -1);
	X509 *cert = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	X509 *ca = ab ? PEM_read_bio_X509(ab, NULL, NULL, NULL) : NULL;
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	bool ok = false;

	if (cert == NULL || ca == NULL || store == NULL || ctx == NULL || X509_check_private_key(cert, key) != 1 ||
	    X509_STORE_add_cert(store, ca) != 1 || X509_STORE_CTX_init(ctx, store, cert, NULL) != 1)
		goto out;
	/* The relay's clock starts the window; ours may be a little behind, which is not our call. */
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
	ok = X509_verify_cert(ctx) == 1;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(ca);
	X509_free(cert);
	BIO_free(ab);
	BIO_free(cb);
	return ok;
}

/*
 * Store the credentials of the successful login reply DOC for KEY (public half PUBPEM) and
 * say so. session.json goes first and comes back last: it marks a complete set.
 */
static int
login_save_session(const struct home *h, struct login_state *st, json_t *doc, EVP_PKEY *key, const char *pubpem)
{
	const char *user = json_string_value(json_object_get(doc, "user"));
	const char *x509 = json_string_value(json_object_get(doc, "x509_cert"));
	const char *ssh = json_string_value(json_object_get(doc, "ssh_cert"));
	const char *ssh_ca = json_string_value(json_object_get(doc, "ca_ssh"));
	json_t *roles = json_object_get(doc, "roles"), *role, *session = NULL;
	json_int_t expires = json_integer_value(json_object_get(doc, "expires"));
	char err[LOGIN_ERR_MAX], when[64], *keypem = NULL, *sshpub = NULL, *publine = NULL, *text = NULL;
	char rolelist[512] = "";
	size_t keylen = 0, i;
	bool existed;
	int r = POSTERN_EXIT_ERROR;

	if (user == NULL || strcmp(user, st->user) != 0 || x509 == NULL || ssh == NULL || !json_is_array(roles) ||
	    expires <= 0 || !json_is_integer(json_object_get(doc, "serial")) ||
	    strncmp(ssh, LOGIN_SSH_CERT_TYPE, strlen(LOGIN_SSH_CERT_TYPE)) != 0 || strchr(ssh, '\n') != NULL ||
	    (ssh_ca != NULL && strchr(ssh_ca, '\n') != NULL)) {
		home_say("the relay's login reply is incomplete; ask your admin to look at its log");
		goto out;
	}
	if (!login_cert_ok(x509, key, st->ca_pem)) {
		home_say("the certificate the relay issued does not match this session's key or the relay's CA; "
		    "ask your admin");
		goto out;
	}
	if ((keypem = login_key_pem(key, &keylen)) == NULL ||
	    ca_ssh_pubkey_line(pubpem, &sshpub, err, sizeof(err)) != 0 ||
	    asprintf(&publine, "%s %s@%s", sshpub, st->user, LOGIN_SSH_COMMENT) < 0) {
		publine = NULL;
		home_say("cannot encode the session key (OpenSSL failed)");
		goto out;
	}
	json_array_foreach(roles, i, role) {
		const char *name = json_string_value(role);

		if (name != NULL)
			snprintf(rolelist + strlen(rolelist), sizeof(rolelist) - strlen(rolelist), "%s%s",
			    rolelist[0] ? ", " : "", name);
	}
	session = json_pack("{s:s, s:O, s:O, s:I, s:s}", "user", st->user, "roles", roles, "serial",
	    json_object_get(doc, "serial"), "expires", expires, "relay", st->url.text);
	if (session == NULL || (text = json_dumps(session, JSON_INDENT(2))) == NULL) {
		home_say("out of memory");
		goto out;
	}
	if (home_remove(h, HOME_SESSION, &existed, err, sizeof(err)) != 0 ||
	    home_write(h, HOME_KEY, keypem, keylen, err, sizeof(err)) != 0 ||
	    home_write(h, HOME_CERT, x509, strlen(x509), err, sizeof(err)) != 0 ||
	    home_write(h, HOME_SSH_KEY, keypem, keylen, err, sizeof(err)) != 0 ||
	    login_write_line(h, HOME_SSH_CERT, ssh, err, sizeof(err)) != 0 ||
	    login_write_line(h, HOME_SSH_PUB, publine, err, sizeof(err)) != 0 ||
	    (ssh_ca != NULL && login_write_line(h, HOME_SSH_CA, ssh_ca, err, sizeof(err)) != 0) ||
	    login_save_relay(h, st, err, sizeof(err)) != 0 ||
	    login_write_line(h, HOME_SESSION, text, err, sizeof(err)) != 0) {
		home_say("%s", err);
		goto out;
	}
	printf("logged in to %s as %s (roles: %s), credentials valid until %s\n", st->url.text, st->user,
	    rolelist[0] ? rolelist : "none", login_local_time((time_t)expires, when, sizeof(when)));
	r = POSTERN_EXIT_OK;
out:
	if (keypem != NULL) {
		OPENSSL_cleanse(keypem, keylen);
		free(keypem);
	}
	free(sshpub);
	free(publine);
	free(text);
	json_decref(session);
	return r;
}

/* Log in with ST, asking for TOTP codes on a terminal as the relay requires them. */
static int
login_run(const struct home *h, struct login_state *st, const char *totp)
{
	bool interactive = isatty(STDIN_FILENO) == 1;
	char code[TOTP_DIGITS + 1], err[LOGIN_ERR_MAX], why[128];
	EVP_PKEY *key = NULL;
	char *pubpem = NULL;
	json_t *doc = NULL;
	int r, status = 0;

	for (int tries = 0;; tries++) {
		const char *kind;

		/* Ask before the challenge: it lives for a minute, and typing takes time. */
		if (st->mfa && totp == NULL) {
			if (!interactive) {
				home_say("your role requires a TOTP code: run postern login --totp CODE with the code from "
				    "your authenticator app (stdin is not a terminal, so postern cannot ask)");
				r = POSTERN_EXIT_ERROR;
				goto out;
			}
			if (login_prompt_code(code, sizeof(code)) != 0) {
				home_say("no TOTP code given; run postern login again when you have your authenticator app");
				r = POSTERN_EXIT_ERROR;
				goto out;
			}
			totp = code;
		}
		if ((r = login_attempt(st, totp, &doc, &status, &key, &pubpem, err, sizeof(err))) != 0) {
			home_say("%s", err);
			goto out;
		}
		if (status == 200)
			break;
		kind = login_api_code(doc);
		if (status == 401 && (strcmp(kind, API_CODE_TOTP_REQUIRED) == 0 || strcmp(kind, API_CODE_BAD_TOTP) == 0) &&
		    (interactive || totp == NULL) && tries + 1 < LOGIN_TOTP_TRIES) {
			/* Remember, so the next login asks first instead of failing a round. */
			st->mfa = true;
			if (strcmp(kind, API_CODE_BAD_TOTP) == 0)
				fprintf(stderr, "%s\n", login_api_error(doc, status, why, sizeof(why)));
			totp = NULL;
		} else {
			home_say("login refused: %s", login_api_error(doc, status, why, sizeof(why)));
			r = POSTERN_EXIT_ERROR;
			goto out;
		}
		json_decref(doc);
		doc = NULL;
		EVP_PKEY_free(key);
		key = NULL;
		free(pubpem);
		pubpem = NULL;
	}
	r = login_save_session(h, st, doc, key, pubpem);
out:
	sodium_memzero(code, sizeof(code));
	json_decref(doc);
	EVP_PKEY_free(key);
	free(pubpem);
	return r;
}

static void
login_usage(FILE *out)
{
	fprintf(out,
	    "usage: postern login [URL] [--invite CODE.PIN] [--totp CODE] [--device-name NAME]\n"
	    "\n"
	    "Log in to the Postern relay: prove this device's key (and a TOTP code when your role asks\n"
	    "for one) and receive short-lived credentials for psql, mysql and ssh.\n"
	    "\n"
	    "The first time, enrol this device with the invite your admin sent you:\n"
	    "  postern login https://relay.example.com:8443 --invite CODE.PIN\n"
	    "After that, postern login is enough: the relay's URL is remembered.\n"
	    "\n"
	    "  URL                 the relay's login API, https://HOST[:PORT] (default: the remembered one)\n"
	    "  --invite CODE.PIN   enrol this device first, with a one-time invite (posternctl users invite)\n"
	    "  --totp CODE         the %d-digit code of your authenticator app (asked for on a terminal)\n"
	    "  --device-name NAME  this device's name in the relay's list (default: the host name)\n"
	    "  -h, --help          this text\n"
	    "\n"
	    "Credentials go to $POSTERN_HOME (default ~/.config/postern); see postern status.\n"
	    "Exit status: 0 logged in, 1 refused or failed, 2 usage error, 3 relay unreachable.\n", TOTP_DIGITS);
}

/* The value of option NAME at ARGV[*I] ("--name VALUE" or "--name=VALUE"), or NULL. */
static const char *
login_opt_value(int argc, char **argv, int *i, const char *name, bool *bad)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		home_say("%s needs a value; see postern login --help", name);
		*bad = true;
		return NULL;
	}
	return argv[++*i];
}

/* Parse postern login's arguments into O. 0, POSTERN_EXIT_USAGE, or -1 for --help. */
static int
login_parse(int argc, char **argv, struct login_opts *o)
{
	memset(o, 0, sizeof(*o));
	for (int i = 1; i < argc; i++) {
		const char *v;
		bool bad = false;

		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return -1;
		if ((v = login_opt_value(argc, argv, &i, "--invite", &bad)) != NULL)
			o->invite = v;
		else if ((v = login_opt_value(argc, argv, &i, "--totp", &bad)) != NULL)
			o->totp = v;
		else if ((v = login_opt_value(argc, argv, &i, "--device-name", &bad)) != NULL)
			o->device_name = v;
		else if (bad)
			return POSTERN_EXIT_USAGE;
		else if (argv[i][0] == '-') {
			home_say("unknown option %s; see postern login --help", argv[i]);
			return POSTERN_EXIT_USAGE;
		} else if (o->url == NULL) {
			o->url = argv[i];
		} else {
			home_say("login takes one URL, got %s and %s; see postern login --help", o->url, argv[i]);
			return POSTERN_EXIT_USAGE;
		}
	}
	if (o->totp != NULL && !login_code_ok(o->totp)) {
		home_say("--totp takes the %d-digit code your authenticator app shows", TOTP_DIGITS);
		return POSTERN_EXIT_USAGE;
	}
	if (o->device_name != NULL && !login_name_ok(o->device_name, LOGIN_DEVICE_NAME_MAX + 1, LOGIN_DEVICE_NAME_CHARS)) {
		home_say("--device-name takes up to %d letters, digits, spaces and . _ -", LOGIN_DEVICE_NAME_MAX);
		return POSTERN_EXIT_USAGE;
	}
	return 0;
}

int
login_main(int argc, char **argv)
{
	struct login_opts o;
	struct login_state st;
	struct home h;
	char err[LOGIN_ERR_MAX];
	bool totp_new = false;
	int r, lock = -1;

	memset(&st, 0, sizeof(st));
	if ((r = login_parse(argc, argv, &o)) != 0) {
		if (r < 0) {
			login_usage(stdout);
			return POSTERN_EXIT_OK;
		}
		return r;
	}
	if (home_open(&h, true, err, sizeof(err)) != 0 || home_lock(&h, &lock, err, sizeof(err)) != 0) {
		home_say("%s", err);
		return POSTERN_EXIT_ERROR;
	}
	if (o.invite != NULL) {
		char saved[HTTPS_URL_MAX] = "";

		/* An invite without a URL re-enrols with the remembered relay. */
		if (o.url == NULL)
			login_saved_url(&h, saved, sizeof(saved));
		if (o.url == NULL && saved[0] == '\0') {
			home_say("enrolling needs the relay's URL: postern login https://HOST:PORT --invite CODE.PIN "
			    "(your admin's invite message has it)");
			r = POSTERN_EXIT_USAGE;
		} else if (https_url_parse(o.url ? o.url : saved, &st.url, err, sizeof(err)) != 0) {
			home_say("%s", err);
			r = POSTERN_EXIT_USAGE;
		} else {
			r = login_enrol(&h, &o, &st, &totp_new);
		}
	} else {
		r = login_load(&h, o.url, &st);
	}
	if (r == POSTERN_EXIT_OK)
		r = login_run(&h, &st, totp_new ? NULL : o.totp);
	login_state_free(&st);
	home_unlock(lock);
	return r;
}

/* ---- status and logout ---- */

int
login_status(int argc, char **argv)
{
	char err[LOGIN_ERR_MAX], when[64], *text = NULL, rolelist[512] = "", path[PATH_MAX];
	const char *user, *relay;
	json_t *doc = NULL, *roles, *role;
	json_int_t expires;
	json_error_t jerr;
	struct home h;
	size_t len = 0, i;
	bool complete = true;
	time_t now = time(NULL);
	long left;
	int r = POSTERN_EXIT_NOT_LOGGED_IN, rr;

	if (argc > 1) {
		if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
			printf("usage: postern status\n\nWho you are logged in as, at which relay, with which roles, until "
			    "when.\nExit status: 0 logged in, 4 not logged in or credentials expired.\n");
			return POSTERN_EXIT_OK;
		}
		home_say("status takes no arguments; see postern status --help");
		return POSTERN_EXIT_USAGE;
	}
	if (home_open(&h, false, err, sizeof(err)) != 0) {
		home_say("%s", err);
		return POSTERN_EXIT_ERROR;
	}
	if ((rr = home_read(&h, HOME_SESSION, false, &text, &len, err, sizeof(err))) != 0) {
		if (rr == HOME_MISSING)
			home_say("not logged in (or credentials expired); run postern login");
		else
			home_say("%s", err);
		return rr == HOME_MISSING ? POSTERN_EXIT_NOT_LOGGED_IN : POSTERN_EXIT_ERROR;
	}
	doc = json_loadb(text, len, 0, &jerr);
	user = json_string_value(json_object_get(doc, "user"));
	relay = json_string_value(json_object_get(doc, "relay"));
	expires = json_integer_value(json_object_get(doc, "expires"));
	/* The files the session needs; a missing one (removed by hand) is no session. */
	for (const char *const *f = (const char *const[]){ HOME_KEY, HOME_CERT, HOME_SSH_CERT, NULL }; *f; f++)
		if (access(home_path(&h, *f, path, sizeof(path)), R_OK) != 0)
			complete = false;
	if (user == NULL || relay == NULL || expires <= 0 || !complete) {
		home_say("not logged in (the credentials in %s are incomplete); run postern login", h.dir);
		goto out;
	}
	if ((time_t)expires <= now) {
		home_say("not logged in (credentials expired at %s); run postern login",
		    login_local_time((time_t)expires, when, sizeof(when)));
		goto out;
	}
	roles = json_object_get(doc, "roles");
	json_array_foreach(roles, i, role)
		if (json_is_string(role))
			snprintf(rolelist + strlen(rolelist), sizeof(rolelist) - strlen(rolelist), "%s%s",
			    rolelist[0] ? ", " : "", json_string_value(role));
	left = (long)((time_t)expires - now);
	printf("user:     %s\nrelay:    %s\nroles:    %s\n", user, relay, rolelist[0] ? rolelist : "none");
	if (left < 2 * 3600)
		printf("expires:  %s (in %ld minutes)\n", login_local_time((time_t)expires, when, sizeof(when)),
		    (left + 59) / 60);
	else
		printf("expires:  %s (in %ld h %ld min)\n", login_local_time((time_t)expires, when, sizeof(when)),
		    left / 3600, left % 3600 / 60);
	printf("files:    %s\n", h.dir);
	if (left < LOGIN_WARN_SEC) {
		fflush(stdout);
		fprintf(stderr, "warning: expires in %ld minutes; run postern login to renew\n", (left + 59) / 60);
	}
	r = POSTERN_EXIT_OK;
out:
	json_decref(doc);
	home_free(text, len);
	return r;
}

int
login_logout(int argc, char **argv)
{
	static const char *const session_files[] = {
		HOME_SESSION, HOME_KEY, HOME_CERT, HOME_SSH_KEY, HOME_SSH_CERT, HOME_SSH_PUB,
	};
	char err[LOGIN_ERR_MAX];
	struct home h;
	bool any = false, existed;
	int r = POSTERN_EXIT_OK, lock = -1;

	if (argc > 1) {
		if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
			printf("usage: postern logout\n\nDelete this session's keys and certificates. The device stays "
			    "enrolled:\npostern login logs in again without an invite.\n");
			return POSTERN_EXIT_OK;
		}
		home_say("logout takes no arguments; see postern logout --help");
		return POSTERN_EXIT_USAGE;
	}
	if (home_open(&h, false, err, sizeof(err)) != 0) {
		home_say("%s", err);
		return POSTERN_EXIT_ERROR;
	}
	if (access(h.dir, F_OK) != 0) {
		printf("not logged in; nothing to delete in %s\n", h.dir);
		return POSTERN_EXIT_OK;
	}
	if (home_lock(&h, &lock, err, sizeof(err)) != 0) {
		home_say("%s", err);
		return POSTERN_EXIT_ERROR;
	}
	/* session.json first: from that moment nothing claims a session. */
	for (size_t i = 0; i < sizeof(session_files) / sizeof(session_files[0]); i++) {
		if (home_remove(&h, session_files[i], &existed, err, sizeof(err)) != 0) {
			home_say("%s", err);
			r = POSTERN_EXIT_ERROR;
		}
		any = any || existed;
	}
	if (r == POSTERN_EXIT_OK)
		printf(any ? "logged out: the session credentials in %s are deleted; this device stays enrolled\n"
		    : "not logged in; nothing to delete in %s\n", h.dir);
	home_unlock(lock);
	return r;
}
