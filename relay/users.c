/*
 * users.json: a jansson document under a mutex, written whole to a temporary file, fsync'd and
 * renamed over the old one on every change, so a crash leaves either the old or the new state.
 * Invite codes are stored only as SHA-256 hashes: a copy of the state file gives no usable
 * invite. Layout:
 *   { "version": 1, "serial": N,
 *     "users": { "alice": { "devices": { "d…": { "name", "key" (base64), "created", "last_login",
 *                                                "certs": { serial: not_after } } },
 *                           "totp": base64, "totp_step": N, "locked": bool, "lock_reason",
 *                           "last_login" } },
 *     "invites": { sha256hex: { "user", "expires" } },
 *     "revoked": { serial: not_after } }
 * A device's "certs" are the certificates issued to it that have not yet expired; removing the
 * device moves them to "revoked", which every new connection checks and which drops a
 * certificate a day after its end (clock skew is far below that).
 */
#include "relay/users.h"

#include "relay/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static pthread_mutex_t users_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *users_doc;
static char *users_path;

/*
 * Who is locked, copied out of the document: every new connection asks, on a worker, and must
 * not wait behind a login's fsync under users_mu.
 */
struct users_lock_entry {
	char user[64];
	char reason[160];
};
static pthread_rwlock_t locks_rw = PTHREAD_RWLOCK_INITIALIZER;	/* locks and revoked */
static struct users_lock_entry *locks;
static size_t nlocks;
static uint64_t *revoked;		/* sorted serials */
static size_t nrevoked;

#define USERS_REVOKED_KEEP	(24 * 3600)	/* seconds a revoked serial is kept past its end */

static int
users_serial_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Rebuild the copies of locks and revoked serials from the document. Called with users_mu held. */
static void
users_locks_rebuild(void)
{
	struct users_lock_entry *fresh, *old;
	json_t *users = json_object_get(users_doc, "users"), *u, *gone = json_object_get(users_doc, "revoked"), *v;
	uint64_t *serials, *old_serials;
	const char *name;
	size_t n = 0, ns = 0;

	fresh = calloc(json_object_size(users) + 1, sizeof(*fresh));
	serials = calloc(json_object_size(gone) + 1, sizeof(*serials));
	if (fresh == NULL || serials == NULL) {
		free(fresh);
		free(serials);
		return;	/* keep the old copies: locks and revocations only ever stay, never vanish, on failure */
	}
	json_object_foreach(users, name, u) {
		if (!json_is_true(json_object_get(u, "locked")))
			continue;
		snprintf(fresh[n].user, sizeof(fresh[n].user), "%s", name);
		snprintf(fresh[n].reason, sizeof(fresh[n].reason), "%s",
		    json_string_value(json_object_get(u, "lock_reason")) ? json_string_value(json_object_get(u, "lock_reason")) : "");
		n++;
	}
	json_object_foreach(gone, name, v)
		serials[ns++] = strtoull(name, NULL, 10);
	qsort(serials, ns, sizeof(*serials), users_serial_cmp);
	pthread_rwlock_wrlock(&locks_rw);
	old = locks;
	locks = fresh;
	nlocks = n;
	old_serials = revoked;
	revoked = serials;
	nrevoked = ns;
	pthread_rwlock_unlock(&locks_rw);
	free(old);
	free(old_serials);
}

/* Drop the entries of OBJ ({ serial: not_after }) that ended before CUTOFF. */
static void
users_prune_serials(json_t *obj, json_int_t cutoff)
{
	const char *key;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(obj, tmp, key, v)
		if (json_integer_value(v) < cutoff)
			json_object_del(obj, key);
}

static int
users_save(void)
{
	char tmp[4096];
	int fd, r = -1;

	snprintf(tmp, sizeof(tmp), "%s.tmp", users_path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return -1;
	if (json_dumpfd(users_doc, fd, JSON_INDENT(1) | JSON_SORT_KEYS) == 0 && fsync(fd) == 0)
		r = 0;
	close(fd);
	if (r == 0 && rename(tmp, users_path) != 0)
		r = -1;
	if (r != 0)
		unlink(tmp);
	return r;
}

int
users_open(const char *state_dir, char *err, size_t errlen)
{
	json_error_t jerr;
	struct stat st;

	free(users_path);
	if (asprintf(&users_path, "%s/users.json", state_dir) < 0)
		return -1;
	json_decref(users_doc);
	users_doc = NULL;
	if (stat(users_path, &st) == 0) {
		if (st.st_mode & 077) {
			snprintf(err, errlen, "%s is readable by others (mode %o); chmod 600 it", users_path, st.st_mode & 0777);
			return -1;
		}
		if ((users_doc = json_load_file(users_path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
			snprintf(err, errlen, "%s:%d: %s", users_path, jerr.line, jerr.text);
			return -1;
		}
	} else {
		users_doc = json_pack("{s:i, s:I, s:{}, s:{}}", "version", 1, "serial", (json_int_t)1, "users", "invites");
		if (users_save() != 0) {
			snprintf(err, errlen, "cannot write %s: %s", users_path, strerror(errno));
			return -1;
		}
	}
	if (!json_is_object(json_object_get(users_doc, "users")) || !json_is_object(json_object_get(users_doc, "invites"))) {
		snprintf(err, errlen, "%s is not a Postern user store", users_path);
		return -1;
	}
	users_locks_rebuild();
	return 0;
}

void
users_close(void)
{
	pthread_rwlock_wrlock(&locks_rw);
	free(locks);
	locks = NULL;
	nlocks = 0;
	free(revoked);
	revoked = NULL;
	nrevoked = 0;
	pthread_rwlock_unlock(&locks_rw);
	json_decref(users_doc);
	users_doc = NULL;
	free(users_path);
	users_path = NULL;
}

/* The user's object, created when CREATE. Called with the lock held. */
static json_t *
users_get(const char *user, bool create)
{
	json_t *users = json_object_get(users_doc, "users");
	json_t *u = json_object_get(users, user);

	if (u == NULL && create) {
		u = json_pack("{s:{}, s:b}", "devices", "locked", 0);
		json_object_set_new(users, user, u);
	}
	return u;
}

static void
users_hash_hex(const char *text, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int
users_invite_create(const char *user, long ttl, char *code, size_t len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	unsigned char rnd[USERS_INVITE_LEN];
	char hash[65];
	int r;

	if (len < USERS_INVITE_LEN + 1 || RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	for (size_t i = 0; i < USERS_INVITE_LEN; i++)
		code[i] = alphabet[rnd[i] & 31];
	code[USERS_INVITE_LEN] = '\0';
	users_hash_hex(code, hash);
	pthread_mutex_lock(&users_mu);
	json_object_set_new(json_object_get(users_doc, "invites"), hash,
	    json_pack("{s:s, s:I}", "user", user, "expires", (json_int_t)(time(NULL) + ttl)));
	r = users_save();
	pthread_mutex_unlock(&users_mu);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return r;
}

int
users_invite_redeem(const char *code, char *user, size_t ulen, char *err, size_t errlen)
{
	json_t *invites, *inv;
	char hash[65];
	int r = -1;

	users_hash_hex(code, hash);
	pthread_mutex_lock(&users_mu);
	invites = json_object_get(users_doc, "invites");
	inv = json_object_get(invites, hash);
	if (inv == NULL) {
		snprintf(err, errlen, "invite is unknown or already used; ask an admin for a new one");
	} else if (json_integer_value(json_object_get(inv, "expires")) < (json_int_t)time(NULL)) {
		snprintf(err, errlen, "invite has expired; ask an admin for a new one");
		json_object_del(invites, hash);
		(void)users_save();
	} else {
		snprintf(user, ulen, "%s", json_string_value(json_object_get(inv, "user")));
		json_object_del(invites, hash);	/* single use, even if enrolment fails later */
		r = users_save();
		if (r != 0)
			snprintf(err, errlen, "cannot record the invite as used");
	}
	pthread_mutex_unlock(&users_mu);
	return r;
}

int
users_device_add(const char *user, const char *name, const uint8_t key[USERS_DEVICE_KEY_LEN],
    char *id, size_t idlen)
{
	unsigned char rnd[6];
	char b64[64];
	int r;

	if (idlen < 14 || RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	snprintf(id, idlen, "d%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
	if (util_b64_encode(key, USERS_DEVICE_KEY_LEN, b64, sizeof(b64)) != 0)
		return -1;
	pthread_mutex_lock(&users_mu);
	json_object_set_new(json_object_get(users_get(user, true), "devices"), id,
	    json_pack("{s:s, s:s, s:I}", "name", name, "key", b64, "created", (json_int_t)time(NULL)));
	r = users_save();
	pthread_mutex_unlock(&users_mu);
	return r;
}

bool
users_device_key(const char *user, const char *id, uint8_t key[USERS_DEVICE_KEY_LEN])
{
	json_t *u, *dev;
	bool ok = false;

	pthread_mutex_lock(&users_mu);
	if ((u = users_get(user, false)) != NULL &&
	    (dev = json_object_get(json_object_get(u, "devices"), id)) != NULL)
		ok = util_b64_decode_exact(json_string_value(json_object_get(dev, "key")), key, USERS_DEVICE_KEY_LEN) == 0;
	pthread_mutex_unlock(&users_mu);
	return ok;
}

int
users_device_rm(const char *user, const char *id)
{
	json_t *u, *dev, *gone, *v;
	const char *serial;
	int r = -1;

	pthread_mutex_lock(&users_mu);
	if ((u = users_get(user, false)) != NULL && (dev = json_object_get(json_object_get(u, "devices"), id)) != NULL) {
		/* Its certificates go on the revoked list before the device goes. */
		if ((gone = json_object_get(users_doc, "revoked")) == NULL)
			json_object_set_new(users_doc, "revoked", gone = json_object());
		users_prune_serials(gone, (json_int_t)time(NULL) - USERS_REVOKED_KEEP);
		json_object_foreach(json_object_get(dev, "certs"), serial, v)
			json_object_set(gone, serial, v);
		json_object_del(json_object_get(u, "devices"), id);
		r = users_save();
		users_locks_rebuild();
	}
	pthread_mutex_unlock(&users_mu);
	return r;
}

bool
users_serial_revoked(uint64_t serial)
{
	bool found;

	pthread_rwlock_rdlock(&locks_rw);
	found = nrevoked > 0 && bsearch(&serial, revoked, nrevoked, sizeof(*revoked), users_serial_cmp) != NULL;
	pthread_rwlock_unlock(&locks_rw);
	return found;
}

int
users_totp_set(const char *user, const uint8_t secret[USERS_TOTP_LEN])
{
	char b64[64];
	int r;

	if (util_b64_encode(secret, USERS_TOTP_LEN, b64, sizeof(b64)) != 0)
		return -1;
	pthread_mutex_lock(&users_mu);
	json_object_set_new(users_get(user, true), "totp", json_string(b64));
	json_object_set_new(users_get(user, true), "totp_step", json_integer(0));
	r = users_save();
	pthread_mutex_unlock(&users_mu);
	OPENSSL_cleanse(b64, sizeof(b64));
	return r;
}

bool
users_totp_get(const char *user, uint8_t secret[USERS_TOTP_LEN], uint64_t *last_step)
{
	json_t *u;
	const char *b64;
	bool ok = false;

	pthread_mutex_lock(&users_mu);
	if ((u = users_get(user, false)) != NULL && (b64 = json_string_value(json_object_get(u, "totp"))) != NULL) {
		ok = util_b64_decode_exact(b64, secret, USERS_TOTP_LEN) == 0;
		*last_step = (uint64_t)json_integer_value(json_object_get(u, "totp_step"));
	}
	pthread_mutex_unlock(&users_mu);
	return ok;
}

void
users_totp_used(const char *user, uint64_t step)
{
	pthread_mutex_lock(&users_mu);
	json_object_set_new(users_get(user, true), "totp_step", json_integer((json_int_t)step));
	(void)users_save();
	pthread_mutex_unlock(&users_mu);
}

int
users_lock(const char *user, const char *reason)
{
	json_t *u;
	int r;

	pthread_mutex_lock(&users_mu);
	u = users_get(user, true);
	json_object_set_new(u, "locked", json_true());
	json_object_set_new(u, "lock_reason", json_string(reason ? reason : ""));
	json_object_set_new(u, "locked_at", json_integer((json_int_t)time(NULL)));
	users_locks_rebuild();	/* in force at once, even if saving fails */
	r = users_save();
	pthread_mutex_unlock(&users_mu);
	return r;
}

int
users_unlock(const char *user)
{
	json_t *u;
	int r = -1;

	pthread_mutex_lock(&users_mu);
	if ((u = users_get(user, false)) != NULL) {
		json_object_set_new(u, "locked", json_false());
		json_object_del(u, "lock_reason");
		json_object_del(u, "locked_at");
		users_locks_rebuild();
		r = users_save();
	}
	pthread_mutex_unlock(&users_mu);
	return r;
}

bool
users_locked(const char *user, char *reason, size_t rlen)
{
	bool locked = false;

	pthread_rwlock_rdlock(&locks_rw);
	for (size_t i = 0; i < nlocks; i++) {
		if (strcmp(locks[i].user, user) == 0) {
			locked = true;
			if (reason != NULL)
				snprintf(reason, rlen, "%s", locks[i].reason);
			break;
		}
	}
	pthread_rwlock_unlock(&locks_rw);
	return locked;
}

void
users_record_login(const char *user, const char *device, uint64_t serial, time_t not_after)
{
	json_t *u, *dev, *certs;
	json_int_t now = (json_int_t)time(NULL);
	char key[24];

	pthread_mutex_lock(&users_mu);
	u = users_get(user, true);
	json_object_set_new(u, "last_login", json_integer(now));
	json_object_set_new(u, "last_serial", json_integer((json_int_t)serial));
	if ((dev = json_object_get(json_object_get(u, "devices"), device)) != NULL) {
		json_object_set_new(dev, "last_login", json_integer(now));
		if ((certs = json_object_get(dev, "certs")) == NULL)
			json_object_set_new(dev, "certs", certs = json_object());
		users_prune_serials(certs, now);
		snprintf(key, sizeof(key), "%llu", (unsigned long long)serial);
		json_object_set_new(certs, key, json_integer((json_int_t)not_after));
	}
	(void)users_save();
	pthread_mutex_unlock(&users_mu);
}

uint64_t
users_next_serial(void)
{
	json_int_t serial;

	pthread_mutex_lock(&users_mu);
	serial = json_integer_value(json_object_get(users_doc, "serial"));
	if (serial < 1)
		serial = 1;
	json_object_set_new(users_doc, "serial", json_integer(serial + 1));
	(void)users_save();
	pthread_mutex_unlock(&users_mu);
	return (uint64_t)serial;
}

static json_t *
users_entry(const struct roles *roles, const char *name, json_t *u)
{
	json_t *rl = json_array(), *devs = json_array(), *d;
	const char *id;

	for (size_t i = 0; i < roles->n; i++)
		if (roles_is_member(&roles->list[i], name))
			json_array_append_new(rl, json_string(roles->list[i].name));
	json_object_foreach(json_object_get(u, "devices"), id, d)
		json_array_append_new(devs, json_pack("{s:s, s:O?, s:O?, s:O?}", "id", id, "name", json_object_get(d, "name"),
		    "created", json_object_get(d, "created"), "last_login", json_object_get(d, "last_login")));
	return json_pack("{s:s, s:o, s:o, s:b, s:O?, s:O?, s:b}", "user", name, "roles", rl, "devices", devs,
	    "locked", json_is_true(json_object_get(u, "locked")), "lock_reason", json_object_get(u, "lock_reason"),
	    "last_login", json_object_get(u, "last_login"), "mfa", json_object_get(u, "totp") != NULL);
}

json_t *
users_list(const struct roles *roles)
{
	json_t *out = json_array(), *users, *u;
	const char *name;

	pthread_mutex_lock(&users_mu);
	users = json_object_get(users_doc, "users");
	json_object_foreach(users, name, u)
		json_array_append_new(out, users_entry(roles, name, u));
	for (size_t i = 0; i < roles->n; i++) {
		for (size_t j = 0; j < roles->list[i].nmembers; j++) {
			const char *m = roles->list[i].members[j];
			bool seen = json_object_get(users, m) != NULL;
			size_t k;
			json_t *e;

			json_array_foreach(out, k, e)
				seen = seen || strcmp(json_string_value(json_object_get(e, "user")), m) == 0;
			if (!seen) {
				json_t *empty = json_object();

				json_array_append_new(out, users_entry(roles, m, empty));
				json_decref(empty);
			}
		}
	}
	pthread_mutex_unlock(&users_mu);
	return out;
}
