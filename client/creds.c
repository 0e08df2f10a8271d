/*
 * Loading and checking the session's credentials for the commands that connect (ls, psql,
 * env, connect). session.json says when the session ends, but the certificate is what the
 * relay checks, so its own notAfter counts too: a hand-edited or stale session.json cannot
 * make an expired certificate look usable.
 */
#include "client/creds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "client/login.h"

const char *
creds_local_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		snprintf(buf, size, "%lld (seconds since 1970)", (long long)t);
	return buf;
}

/* The JSON object in home file NAME into *DOC. 0, HOME_MISSING, or HOME_ERR with ERR. */
static int
creds_read_json(const struct home *h, const char *name, json_t **doc, char *err, size_t errlen)
{
	char *text = NULL, path[PATH_MAX];
	size_t len = 0;
	json_error_t jerr;
	int r;

	*doc = NULL;
	if ((r = home_read(h, name, false, &text, &len, err, errlen)) != 0)
		return r;
	*doc = json_loadb(text, len, 0, &jerr);
	home_free(text, len);
	if (!json_is_object(*doc)) {
		json_decref(*doc);
		*doc = NULL;
		snprintf(err, errlen, "%s is damaged; run postern login", home_path(h, name, path, sizeof(path)));
		return HOME_ERR;
	}
	return 0;
}

/* The notAfter of the certificate CERT_PEM, or 0 when it cannot be read. */
static time_t
creds_cert_end(const char *cert_pem)
{
	BIO *bio = BIO_new_mem_buf(cert_pem, -1);
	X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	struct tm tm;
	time_t end = 0;

	if (cert != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
		end = timegm(&tm);
	ERR_clear_error();
	X509_free(cert);
	BIO_free(bio);
	return end;
}

/* Read NAME into *DATA and its absolute path into PATH; a missing file is an incomplete session. */
static int
creds_read_file(struct creds *c, const char *name, bool private, char **data, size_t *len, char *path,
    size_t pathlen, char *err, size_t errlen)
{
	int rr = home_read(&c->home, name, private, data, len, err, errlen);

	home_path(&c->home, name, path, pathlen);
	if (rr == HOME_MISSING) {
		snprintf(err, errlen, "not logged in (%s is missing); run postern login", path);
		return POSTERN_EXIT_NOT_LOGGED_IN;
	}
	return rr == 0 ? POSTERN_EXIT_OK : POSTERN_EXIT_ERROR;
}

int
creds_load(struct creds *c, time_t now, char *err, size_t errlen)
{
	char abs[PATH_MAX], when[64], path[PATH_MAX];
	const char *url, *user, *suser;
	json_t *relay = NULL, *session = NULL;
	json_int_t expires;
	time_t cert_end;
	int r = POSTERN_EXIT_NOT_LOGGED_IN, rr;

	memset(c, 0, sizeof(*c));
	if (home_open(&c->home, false, err, errlen) != 0)
		return POSTERN_EXIT_ERROR;
	if (realpath(c->home.dir, abs) == NULL) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "cannot use %s: %s", c->home.dir, strerror(errno));
			return POSTERN_EXIT_ERROR;
		}
		snprintf(err, errlen, "not logged in (no credentials in %s); run postern login", c->home.dir);
		return POSTERN_EXIT_NOT_LOGGED_IN;
	}
	if (strlen(abs) + 64 >= sizeof(c->home.dir)) {
		snprintf(err, errlen, "the postern home directory path is too long; set POSTERN_HOME to a shorter one");
		return POSTERN_EXIT_ERROR;
	}
	snprintf(c->home.dir, sizeof(c->home.dir), "%s", abs);

	if ((rr = creds_read_json(&c->home, HOME_RELAY, &relay, err, errlen)) != 0) {
		if (rr == HOME_MISSING)
			snprintf(err, errlen, "not logged in (this device is not enrolled); run postern login URL --invite "
			    "CODE.PIN with the invite from your admin");
		else
			r = POSTERN_EXIT_ERROR;
		goto out;
	}
	url = json_string_value(json_object_get(relay, "url"));
	user = json_string_value(json_object_get(relay, "user"));
	if (url == NULL || user == NULL || user[0] == '\0' || strlen(user) >= sizeof(c->user) ||
	    https_url_parse(url, &c->url, err, errlen) != 0) {
		snprintf(err, errlen, "%s is damaged; enrol again with an invite (postern login URL --invite CODE.PIN)",
		    home_path(&c->home, HOME_RELAY, path, sizeof(path)));
		r = POSTERN_EXIT_ERROR;
		goto out;
	}
	snprintf(c->user, sizeof(c->user), "%s", user);

	if ((rr = creds_read_json(&c->home, HOME_SESSION, &session, err, errlen)) != 0) {
		if (rr == HOME_MISSING)
			snprintf(err, errlen, "not logged in; run postern login");
		goto out;
	}
	suser = json_string_value(json_object_get(session, "user"));
	expires = json_integer_value(json_object_get(session, "expires"));
	c->serial = (long long)json_integer_value(json_object_get(session, "serial"));
	if (suser == NULL || strcmp(suser, c->user) != 0 || expires <= 0) {
		snprintf(err, errlen, "not logged in (the session in %s is incomplete); run postern login", c->home.dir);
		goto out;
	}
	if ((r = creds_read_file(c, HOME_CERT, false, &c->cert_pem, &c->cert_len, c->cert_path, sizeof(c->cert_path),
	    err, errlen)) != 0 ||
	    (r = creds_read_file(c, HOME_KEY, true, &c->key_pem, &c->key_len, c->key_path, sizeof(c->key_path),
	    err, errlen)) != 0 ||
	    (r = creds_read_file(c, HOME_CA, false, &c->ca_pem, &c->ca_len, c->ca_path, sizeof(c->ca_path),
	    err, errlen)) != 0)
		goto out;
	r = POSTERN_EXIT_NOT_LOGGED_IN;
	if ((cert_end = creds_cert_end(c->cert_pem)) == 0) {
		snprintf(err, errlen, "not logged in (%s is damaged); run postern login", c->cert_path);
		goto out;
	}
	c->expires = cert_end < (time_t)expires ? cert_end : (time_t)expires;
	if (c->expires <= now) {
		snprintf(err, errlen, "not logged in (credentials expired at %s); run postern login",
		    creds_local_time(c->expires, when, sizeof(when)));
		goto out;
	}
	r = POSTERN_EXIT_OK;
out:
	json_decref(relay);
	json_decref(session);
	return r;
}

void
creds_free(struct creds *c)
{
	home_free(c->ca_pem, c->ca_len);
	home_free(c->cert_pem, c->cert_len);
	home_free(c->key_pem, c->key_len);
	c->ca_pem = c->cert_pem = c->key_pem = NULL;
	c->ca_len = c->cert_len = c->key_len = 0;
}
