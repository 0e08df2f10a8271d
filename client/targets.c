/*
 * The target list: asked of the relay with the session's certificate, cached whole in
 * targets.json with who asked and when. The cache belongs to one session (relay, user and
 * certificate serial): a new login or another relay asks again. It only saves a round trip and
 * works offline; the relay decides again on every connection, so a stale entry can never grant
 * anything.
 */
#include "client/targets.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/login.h"

/* The cached reply for C, or NULL; *FETCHED is when the relay gave it. */
static json_t *
targets_cache_read(const struct creds *c, time_t *fetched)
{
	char err[256], *text = NULL;
	size_t len = 0;
	json_error_t jerr;
	json_t *doc, *reply = NULL;

	if (home_read(&c->home, HOME_TARGETS, false, &text, &len, err, sizeof(err)) != 0)
		return NULL;
	doc = json_loadb(text, len, 0, &jerr);
	home_free(text, len);
	if (json_is_object(doc) &&
	    json_is_string(json_object_get(doc, "url")) &&
	    strcmp(json_string_value(json_object_get(doc, "url")), c->url.text) == 0 &&
	    json_is_string(json_object_get(doc, "user")) &&
	    strcmp(json_string_value(json_object_get(doc, "user")), c->user) == 0 &&
	    json_integer_value(json_object_get(doc, "serial")) == c->serial &&
	    json_is_integer(json_object_get(doc, "fetched")) &&
	    json_is_array(json_object_get(json_object_get(doc, "reply"), "targets"))) {
		*fetched = (time_t)json_integer_value(json_object_get(doc, "fetched"));
		reply = json_incref(json_object_get(doc, "reply"));
	}
	json_decref(doc);
	return reply;
}

/* Keep REPLY for C. A cache that cannot be written only costs a round trip next time. */
static void
targets_cache_write(const struct creds *c, json_t *reply, time_t now)
{
	char err[256], *text = NULL;
	json_t *doc = json_pack("{s:s, s:s, s:I, s:I, s:O}", "url", c->url.text, "user", c->user, "serial",
	    (json_int_t)c->serial, "fetched", (json_int_t)now, "reply", reply);

	if (doc != NULL && (text = json_dumps(doc, JSON_INDENT(2))) != NULL &&
	    home_write(&c->home, HOME_TARGETS, text, strlen(text), err, sizeof(err)) != 0) {
		/* A read-only home: each command asks the relay, which is all a cache saves. */
	}
	free(text);
	json_decref(doc);
}

/* The relay's own explanation in the error reply DOC, or a fallback naming STATUS. */
static const char *
targets_api_error(const json_t *doc, int status, char *buf, size_t size)
{
	const char *msg = json_string_value(json_object_get(doc, "error"));

	if (msg != NULL && msg[0] != '\0')
		return msg;
	snprintf(buf, size, "the relay answered HTTP %d without saying why; ask your admin to look at its log", status);
	return buf;
}

/* Ask the relay. An enum postern_exit. */
static int
targets_fetch(const struct creds *c, json_t **out, char *err, size_t errlen)
{
	struct https_reply reply;
	json_error_t jerr;
	json_t *doc;
	char why[160];
	const char *user;
	int r, status;

	*out = NULL;
	r = https_request_cert(&c->url, c->ca_pem, c->cert_pem, c->key_pem, "GET", TARGETS_PATH, NULL, &reply, err,
	    errlen);
	if (r != HTTPS_OK)
		return r == HTTPS_ERR_UNREACHABLE ? POSTERN_EXIT_UNREACHABLE :
		    r == HTTPS_ERR_CLIENT_CERT ? POSTERN_EXIT_NOT_LOGGED_IN : POSTERN_EXIT_ERROR;
	status = reply.status;
	doc = json_loadb(reply.body, reply.len, JSON_REJECT_DUPLICATES, &jerr);
	https_reply_free(&reply);
	if (!json_is_object(doc)) {
		json_decref(doc);
		snprintf(err, errlen, "the relay at %s answered GET %s with HTTP %d but no JSON object; check that the URL "
		    "is the relay's login API", c->url.text, TARGETS_PATH, status);
		return POSTERN_EXIT_ERROR;
	}
	r = POSTERN_EXIT_ERROR;
	switch (status) {
	case 200:
		user = json_string_value(json_object_get(doc, "user"));
		if (!json_is_array(json_object_get(doc, "targets")) || user == NULL || strcmp(user, c->user) != 0) {
			snprintf(err, errlen, "the relay's target list is malformed or for another user; ask your admin to "
			    "look at its log");
			goto out;
		}
		*out = doc;
		doc = NULL;	/* transferred */
		r = POSTERN_EXIT_OK;
		break;
	case 401:
		snprintf(err, errlen, "not logged in (%s)", targets_api_error(doc, status, why, sizeof(why)));
		r = POSTERN_EXIT_NOT_LOGGED_IN;
		break;
	case 404:
		snprintf(err, errlen, "the relay at %s does not list targets (it has no GET %s: an older posternd); ask "
		    "your admin to upgrade it", c->url.text, TARGETS_PATH);
		break;
	default:
		snprintf(err, errlen, "the relay refused to list your targets: %s",
		    targets_api_error(doc, status, why, sizeof(why)));
		break;
	}
out:
	json_decref(doc);
	return r;
}

int
targets_load(const struct creds *c, int flags, json_t **doc, long *age, char *err, size_t errlen)
{
	time_t now = time(NULL), fetched = 0;
	json_t *cached = targets_cache_read(c, &fetched);
	int r;

	*doc = NULL;
	*age = 0;
	if (cached != NULL && ((flags & TARGETS_OFFLINE) ||
	    (!(flags & TARGETS_REFRESH) && fetched <= now && now - fetched < TARGETS_FRESH_SEC))) {
		*doc = cached;
		*age = fetched <= now ? (long)(now - fetched) : 0;
		return POSTERN_EXIT_OK;
	}
	if (flags & TARGETS_OFFLINE) {
		snprintf(err, errlen, "no saved target list for this session; run postern ls");
		return POSTERN_EXIT_ERROR;
	}
	if ((r = targets_fetch(c, doc, err, errlen)) == POSTERN_EXIT_OK) {
		targets_cache_write(c, *doc, now);
	} else if (r == POSTERN_EXIT_UNREACHABLE && (flags & TARGETS_STALE_OK) && cached != NULL) {
		*doc = cached;
		cached = NULL;	/* transferred */
		*age = fetched <= now ? (long)(now - fetched) : 1;
		if (*age == 0)
			*age = 1;
		r = POSTERN_EXIT_OK;
	}
	json_decref(cached);
	return r;
}

int
targets_addr_port(const char *addr, char *port, size_t portlen)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	size_t n;

	if (colon == NULL || (n = strlen(colon + 1)) == 0 || n >= portlen || n > 5 ||
	    strspn(colon + 1, "0123456789") != n || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
		return -1;
	memcpy(port, colon + 1, n + 1);
	return 0;
}

/* Copy the string field KEY of O into BUF, "" when absent; -1 when too long. */
static int
targets_field(const json_t *o, const char *key, char *buf, size_t size)
{
	const char *v = json_string_value(json_object_get(o, key));

	buf[0] = '\0';
	if (v == NULL)
		return 0;
	if (strlen(v) >= size)
		return -1;
	memcpy(buf, v, strlen(v) + 1);
	return 0;
}

int
targets_entry(const struct creds *c, const json_t *doc, size_t i, struct target *out)
{
	const json_t *t = json_array_get(json_object_get(doc, "targets"), i);
	const char *addr;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(t) || targets_field(t, "name", out->name, sizeof(out->name)) != 0 || out->name[0] == '\0' ||
	    targets_field(t, "protocol", out->protocol, sizeof(out->protocol)) != 0 || out->protocol[0] == '\0' ||
	    targets_field(t, "login", out->login, sizeof(out->login)) != 0 ||
	    targets_field(t, "role", out->role, sizeof(out->role)) != 0)
		return -1;
	/* Names come from the relay's config; refuse any that a shell or conninfo would misread. */
	if (out->name[0] == '-')
		return -1;
	for (const char *p = out->name; *p; p++)
		if (!isalnum((unsigned char)*p) && strchr("._-@+", *p) == NULL)
			return -1;
	addr = json_string_value(json_object_get(t, "address"));
	if (addr == NULL)
		addr = json_string_value(json_object_get(json_object_get(doc, "relay"), out->protocol));
	snprintf(out->host, sizeof(out->host), "%s", c->url.host);
	if (addr == NULL || targets_addr_port(addr, out->port, sizeof(out->port)) != 0)
		out->port[0] = '\0';
	return 0;
}

int
targets_find(const struct creds *c, const json_t *doc, const char *name, struct target *out, char *err,
    size_t errlen)
{
	size_t n = json_array_size(json_object_get(doc, "targets"));

	for (size_t i = 0; i < n; i++)
		if (targets_entry(c, doc, i, out) == 0 && strcmp(out->name, name) == 0)
			return POSTERN_EXIT_OK;
	memset(out, 0, sizeof(*out));
	snprintf(err, errlen, "\"%s\" is not among the targets you may reach (postern ls lists them); check the name, "
	    "or ask your admin for access", name);
	return POSTERN_EXIT_NOT_ALLOWED;
}
