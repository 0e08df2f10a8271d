/*
 * Identity checks, the offboarding sweep, the login flows and the admin's user commands.
 *
 * Login is challenge/response on an enrolled Ed25519 device key: the client asks for a
 * challenge, signs "postern-login-v1\n" + challenge + "\n" + the public key it wants
 * certified, and gets short-lived X.509 and OpenSSH certificates for that key. Binding the
 * session key into the signature means a captured login cannot be replayed for another key.
 * Failed attempts are limited per user and per source address.
 */
#include "relay/identity.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "relay/admin.h"
#include "relay/log.h"
#include "relay/session.h"
#include "relay/totp.h"
#include "relay/users.h"
#include "relay/util.h"

#define LOGIN_SIG_CONTEXT	"postern-login-v1\n"
#define CHALLENGE_LEN		32
#define CHALLENGE_TTL_SEC	60
#define CHALLENGES_MAX		256
#define RATE_ENTRIES		512
#define RATE_MAX_USER		5	/* failures per user within RATE_WINDOW_SEC */
#define RATE_MAX_ADDR		30	/* failures per source address (offices share one) */
#define RATE_WINDOW_SEC		300
#define PUBKEY_PEM_MAX		2048
#define DEVICE_NAME_MAX		64
#define INVITE_PIN_BYTES	20
#define TOTP_WINDOW		1	/* steps either side of now */

struct challenge {
	char user[64];
	char device[16];
	uint8_t nonce[CHALLENGE_LEN];
	double expires;			/* monotonic; 0 = free slot */
};

struct rate {
	char key[96];			/* "user:alice" or "addr:127.0.0.1" */
	double window_start;		/* monotonic */
	int failures;
};

static struct ca *id_ca;
static SSL_CTX *id_tls_ctx, *id_api_ctx;
static struct challenge challenges[CHALLENGES_MAX];
static struct rate rates[RATE_ENTRIES];
static char invite_pin[64];		/* base32 of the X.509 CA certificate's hash, for invites */

int
identity_open(const struct config *cfg, char *err, size_t errlen)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	const char *pem;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return -1;
	}
	if (ca_open(cfg->state_dir, cfg->node, (const char *const *)cfg->tls_names, cfg->ntls_names,
	    cfg->tls_cert_file, cfg->tls_key_file, &id_ca, err, errlen) != 0)
		return -1;
	if (users_open(cfg->state_dir, err, errlen) != 0)
		return -1;
	if ((id_tls_ctx = ca_server_ctx(id_ca, true, err, errlen)) == NULL ||
	    (id_api_ctx = ca_server_ctx(id_ca, false, err, errlen)) == NULL)
		return -1;
	/* The pin covers the CA certificate as PEM text: what the client receives and stores. */
	pem = ca_x509_pem(id_ca);
	EVP_Digest(pem, strlen(pem), md, &mdlen, EVP_sha256(), NULL);
	base32_encode(md, INVITE_PIN_BYTES, invite_pin, sizeof(invite_pin));
	return 0;
}

void
identity_close(void)
{
	SSL_CTX_free(id_tls_ctx);
	SSL_CTX_free(id_api_ctx);
	id_tls_ctx = id_api_ctx = NULL;
	ca_free(id_ca);
	id_ca = NULL;
	users_close();
}

const struct ca *identity_ca(void) { return id_ca; }
SSL_CTX *identity_tls_ctx(void) { return id_tls_ctx; }
SSL_CTX *identity_api_ctx(void) { return id_api_ctx; }

int
identity_check_access(const struct config *cfg, const char *user, const char *target, struct identity *out,
    char *reason, size_t rlen)
{
	const struct config_target *t = config_target_find(cfg, target);
	const struct role *role;
	char why[128];

	if (users_locked(user, why, sizeof(why))) {
		snprintf(reason, rlen, "user %s is locked (%s); ask an administrator", user, why[0] ? why : "no reason given");
		return -1;
	}
	if (t == NULL) {
		snprintf(reason, rlen, "no target is named \"%s\"; run postern ls for yours", target);
		return -1;
	}
	if ((role = roles_grant(&cfg->roles, user, target)) == NULL) {
		snprintf(reason, rlen, "no role grants user %s access to target \"%s\"", user, target);
		return -1;
	}
	snprintf(out->user, sizeof(out->user), "%s", user);
	out->role = role;
	snprintf(out->login, sizeof(out->login), "%s", role->logins[t->protocol] ? role->logins[t->protocol] : "");
	return 0;
}

int
identity_check_x509(const struct config *cfg, X509 *cert, const char *target, struct identity *out,
    char *reason, size_t rlen)
{
	struct ca_grant g;

	memset(out, 0, sizeof(*out));
	if (cert == NULL) {
		snprintf(reason, rlen, "no client certificate; run postern login and use its certificate");
		return -1;
	}
	if (ca_verify_x509(id_ca, cert, time(NULL), (int)cfg->clock_skew, &g, reason, rlen) != 0)
		return -1;
	if (users_serial_revoked(g.serial)) {
		snprintf(reason, rlen, "certificate %llu was revoked: the device it was issued to was removed; "
		    "run postern login on an enrolled device", (unsigned long long)g.serial);
		return -1;
	}
	if (identity_check_access(cfg, g.user, target, out, reason, rlen) != 0)
		return -1;
	out->serial = g.serial;
	out->not_after = g.not_after;
	return 0;
}

static const char *
identity_sweep_pred(const struct session_info *info, void *arg)
{
	const struct config *cfg = arg;

	if (info->user[0] == '\0' || info->state == SESSION_STATE_CLOSING)
		return NULL;
	if (users_locked(info->user, NULL, 0))
		return "access revoked: the user is locked";
	if (info->serial != 0 && users_serial_revoked(info->serial))
		return "access revoked: the certificate's device was removed";
	if (roles_grant(&cfg->roles, info->user, info->target) == NULL)
		return "access revoked: no role grants this target any more";
	return NULL;
}

size_t
identity_sweep(const struct config *cfg)
{
	size_t n = session_registry_kill_if(identity_sweep_pred, (void *)cfg);

	if (n > 0)
		log_info("sessions ended after an access change", "sessions=%zu", n);
	return n;
}

/* ---- rate limits ---- */

static struct rate *
rate_find(const char *key, bool create)
{
	struct rate *oldest = &rates[0];
	double now = util_now_mono();

	for (size_t i = 0; i < RATE_ENTRIES; i++) {
		if (strcmp(rates[i].key, key) == 0) {
			if (now - rates[i].window_start > RATE_WINDOW_SEC) {
				rates[i].window_start = now;
				rates[i].failures = 0;
			}
			return &rates[i];
		}
		if (rates[i].window_start < oldest->window_start)
			oldest = &rates[i];
	}
	if (!create)
		return NULL;
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	oldest->window_start = now;
	oldest->failures = 0;
	return oldest;
}

/* Seconds until KEY may try again, 0 when it may now. */
static int
rate_wait(const char *kind, const char *value)
{
	char key[96];
	struct rate *r;

	snprintf(key, sizeof(key), "%s:%s", kind, value);
	if ((r = rate_find(key, false)) == NULL || r->failures < (strcmp(kind, "user") == 0 ? RATE_MAX_USER : RATE_MAX_ADDR))
		return 0;
	return (int)(RATE_WINDOW_SEC - (util_now_mono() - r->window_start)) + 1;
}

static void
rate_fail(const char *kind, const char *value)
{
	char key[96];

	snprintf(key, sizeof(key), "%s:%s", kind, value);
	rate_find(key, true)->failures++;
}

/* ---- login API ---- */

__attribute__((format(printf, 4, 5)))
static json_t *
api_error(int *status, int code, const char *kind, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	*status = code;
	return json_pack("{s:s, s:s}", "error", msg, "code", kind);
}

/* Refuse early when this user or address has failed too often lately. */
static json_t *
api_rate_check(const char *user, const char *peer, int *status)
{
	int wait = rate_wait("addr", peer);

	if (wait == 0 && user != NULL)
		wait = rate_wait("user", user);
	if (wait > 0) {
		log_warn("login rate limited", "user=%s client=%s retry_after=%d", user ? user : "-", peer, wait);
		return api_error(status, 429, "rate_limited", "too many failed attempts; try again in %d seconds", wait);
	}
	return NULL;
}

static void
api_failed(const char *user, const char *peer, const char *what, const char *reason)
{
	char q[256];

	rate_fail("addr", peer);
	if (user != NULL)
		rate_fail("user", user);
	log_warn(what, "user=%s client=%s reason=%s", user ? user : "-", peer, log_quote(q, sizeof(q), reason));
}

static bool
api_name_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n < max && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@") == n;
}

json_t *
identity_api_enrol(const struct config *cfg, json_t *req, const char *peer, int *status)
{
	const char *invite = json_string_value(json_object_get(req, "invite"));
	const char *key_b64 = json_string_value(json_object_get(req, "device_key"));
	const char *name = json_string_value(json_object_get(req, "device_name"));
	uint8_t key[USERS_DEVICE_KEY_LEN], secret[USERS_TOTP_LEN];
	char code[USERS_INVITE_LEN + 1], user[64], err[256], device[16], uri[512];
	json_t *reply;
	bool mfa = false;

	if ((reply = api_rate_check(NULL, peer, status)) != NULL)
		return reply;
	if (invite == NULL || key_b64 == NULL || util_b64_decode_exact(key_b64, key, sizeof(key)) != 0)
		return api_error(status, 400, "bad_request", "enrol needs \"invite\" and \"device_key\" (base64 Ed25519 public key)");
	if (name == NULL || strlen(name) > DEVICE_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._- ") != strlen(name))
		name = "device";
	/* The invite is CODE.PIN; the pin is for the client, the code for us. */
	snprintf(code, sizeof(code), "%.*s", (int)strcspn(invite, "."), invite);
	if (users_invite_redeem(code, user, sizeof(user), err, sizeof(err)) != 0) {
		api_failed(NULL, peer, "enrolment refused", err);
		return api_error(status, 403, "invalid_invite", "%s", err);
	}
	if (!roles_user_known(&cfg->roles, user)) {
		api_failed(user, peer, "enrolment refused", "user is in no role");
		return api_error(status, 403, "no_role", "user %s is not a member of any role; ask an administrator", user);
	}
	if (users_device_add(user, name, key, device, sizeof(device)) != 0)
		return api_error(status, 500, "internal", "could not record the device; try again");
	(void)roles_ttl(&cfg->roles, user, &mfa);
	reply = json_pack("{s:s, s:s, s:b, s:s}", "user", user, "device_id", device, "mfa", mfa, "ca_x509", ca_x509_pem(id_ca));
	if (mfa) {
		if (totp_secret_new(secret, sizeof(secret)) != 0 || users_totp_set(user, secret) != 0 ||
		    totp_uri(secret, sizeof(secret), "Postern", user, uri, sizeof(uri)) != 0) {
			json_decref(reply);
			return api_error(status, 500, "internal", "could not create the TOTP secret; try again");
		}
		json_object_set_new(reply, "totp_uri", json_string(uri));
		sodium_memzero(secret, sizeof(secret));
		sodium_memzero(uri, sizeof(uri));
	}
	log_info("device enrolled", "user=%s device=%s client=%s mfa=%s", user, device, peer, mfa ? "totp" : "none");
	*status = 200;
	return reply;
}

json_t *
identity_api_challenge(const struct config *cfg, json_t *req, const char *peer, int *status)
{
	const char *user = json_string_value(json_object_get(req, "user"));
	const char *device = json_string_value(json_object_get(req, "device_id"));
	uint8_t key[USERS_DEVICE_KEY_LEN];
	struct challenge *c;
	char b64[64];
	double now = util_now_mono();
	json_t *reply;

	if (!api_name_ok(user, 64) || !api_name_ok(device, 16))
		return api_error(status, 400, "bad_request", "challenge needs \"user\" and \"device_id\"");
	if ((reply = api_rate_check(user, peer, status)) != NULL)
		return reply;
	if (!users_device_key(user, device, key)) {
		api_failed(user, peer, "login refused", "unknown device");
		return api_error(status, 403, "unknown_device", "this device is not enrolled for %s; enrol with an invite (postern login --invite)", user);
	}
	/* One live challenge per device (a new one replaces it); a free slot otherwise. A full
	 * table refuses rather than evicting someone else's live challenge. */
	c = NULL;
	for (size_t i = 0; i < CHALLENGES_MAX; i++) {
		if (challenges[i].expires >= now && strcmp(challenges[i].user, user) == 0 &&
		    strcmp(challenges[i].device, device) == 0) {
			c = &challenges[i];
			break;
		}
		if (c == NULL && challenges[i].expires < now)
			c = &challenges[i];
	}
	if (c == NULL)
		return api_error(status, 503, "busy", "too many logins in progress; try again in a minute");
	snprintf(c->user, sizeof(c->user), "%s", user);
	snprintf(c->device, sizeof(c->device), "%s", device);
	randombytes_buf(c->nonce, sizeof(c->nonce));
	c->expires = now + CHALLENGE_TTL_SEC;
	if (util_b64_encode(c->nonce, sizeof(c->nonce), b64, sizeof(b64)) != 0)
		return api_error(status, 500, "internal", "internal error");
	*status = 200;
	return json_pack("{s:s, s:i}", "challenge", b64, "expires_in", CHALLENGE_TTL_SEC);
}

/* Take the live challenge for USER/DEVICE matching B64 (single use). */
static bool
challenge_take(const char *user, const char *device, const char *b64)
{
	uint8_t nonce[CHALLENGE_LEN];
	double now = util_now_mono();

	if (b64 == NULL || util_b64_decode_exact(b64, nonce, sizeof(nonce)) != 0)
		return false;
	for (size_t i = 0; i < CHALLENGES_MAX; i++) {
		struct challenge *c = &challenges[i];

		if (c->expires >= now && strcmp(c->user, user) == 0 && strcmp(c->device, device) == 0 &&
		    sodium_memcmp(c->nonce, nonce, sizeof(nonce)) == 0) {
			c->expires = 0;
			return true;
		}
	}
	return false;
}

static bool
login_signature_ok(const uint8_t key[USERS_DEVICE_KEY_LEN], const char *challenge, const char *pubkey, const char *sig_b64)
{
	uint8_t sig[crypto_sign_BYTES];
	char *msg;
	int n;
	bool ok;

	if (sig_b64 == NULL || util_b64_decode_exact(sig_b64, sig, sizeof(sig)) != 0)
		return false;
	if ((n = asprintf(&msg, "%s%s\n%s", LOGIN_SIG_CONTEXT, challenge, pubkey)) < 0)
		return false;
	ok = crypto_sign_verify_detached(sig, (const unsigned char *)msg, (unsigned long long)n, key) == 0;
	free(msg);
	return ok;
}

static bool
login_totp_ok(const char *user, const char *code)
{
	uint8_t secret[USERS_TOTP_LEN];
	uint64_t last = 0, step = 0;
	bool ok;

	if (code == NULL || !users_totp_get(user, secret, &last))
		return false;
	ok = totp_verify(secret, sizeof(secret), code, (uint64_t)time(NULL), TOTP_WINDOW, &step) && step > last;
	sodium_memzero(secret, sizeof(secret));
	if (ok)
		users_totp_used(user, step);	/* a code works once */
	return ok;
}

json_t *
identity_api_login(const struct config *cfg, json_t *req, const char *peer, int *status)
{
	const char *user = json_string_value(json_object_get(req, "user"));
	const char *device = json_string_value(json_object_get(req, "device_id"));
	const char *challenge = json_string_value(json_object_get(req, "challenge"));
	const char *pubkey = json_string_value(json_object_get(req, "public_key"));
	const char *sig = json_string_value(json_object_get(req, "signature"));
	const char *totp = json_string_value(json_object_get(req, "totp"));
	uint8_t key[USERS_DEVICE_KEY_LEN];
	struct ca_grant g;
	char *x509 = NULL, *ssh = NULL, err[256], why[128];
	json_t *reply = NULL, *roles;
	bool mfa = false;
	long ttl;
	time_t now = time(NULL);

	if (!api_name_ok(user, 64) || !api_name_ok(device, 16) || challenge == NULL || pubkey == NULL ||
	    strlen(pubkey) > PUBKEY_PEM_MAX)
		return api_error(status, 400, "bad_request", "login needs user, device_id, challenge, signature and public_key");
	if ((reply = api_rate_check(user, peer, status)) != NULL)
		return reply;
	if (!users_device_key(user, device, key) || !challenge_take(user, device, challenge) ||
	    !login_signature_ok(key, challenge, pubkey, sig)) {
		api_failed(user, peer, "login refused", "bad device proof or expired challenge");
		return api_error(status, 403, "bad_proof", "the device proof did not verify (expired challenge or wrong key); try again");
	}
	if (users_locked(user, why, sizeof(why))) {
		api_failed(user, peer, "login refused", "user locked");
		return api_error(status, 403, "locked", "user %s is locked (%s); ask an administrator", user, why);
	}
	if ((ttl = roles_ttl(&cfg->roles, user, &mfa)) <= 0) {
		api_failed(user, peer, "login refused", "user is in no role");
		return api_error(status, 403, "no_role", "user %s is not a member of any role; ask an administrator", user);
	}
	if (mfa && !login_totp_ok(user, totp)) {
		/* A missing code is how a client learns it needs one: not an attempt at guessing. */
		if (totp != NULL)
			api_failed(user, peer, "login refused", "wrong or reused TOTP code");
		return api_error(status, 401, totp ? "bad_totp" : "totp_required",
		    totp ? "the TOTP code is wrong or was already used; wait for the next one" : "your role requires a TOTP code");
	}
	memset(&g, 0, sizeof(g));
	snprintf(g.user, sizeof(g.user), "%s", user);
	g.serial = users_next_serial();
	g.not_before = now;
	g.not_after = now + ttl;
	if (ca_issue_x509(id_ca, &g, pubkey, &x509, err, sizeof(err)) != 0 ||
	    ca_issue_ssh(id_ca, &g, pubkey, &ssh, err, sizeof(err)) != 0) {
		api_failed(user, peer, "login refused", err);
		reply = api_error(status, 400, "bad_public_key", "%s", err);
		goto out;
	}
	roles = json_array();
	for (size_t i = 0; i < cfg->roles.n; i++)
		if (roles_is_member(&cfg->roles.list[i], user))
			json_array_append_new(roles, json_string(cfg->roles.list[i].name));
	users_record_login(user, device, g.serial, g.not_after);
	log_info("login", "user=%s device=%s client=%s serial=%llu expires=%lld mfa=%s", user, device, peer,
	    (unsigned long long)g.serial, (long long)g.not_after, mfa ? "totp" : "none");
	*status = 200;
	reply = json_pack("{s:s, s:o, s:I, s:I, s:s, s:s, s:s, s:s}", "user", user, "roles", roles,
	    "serial", (json_int_t)g.serial, "expires", (json_int_t)g.not_after, "x509_cert", x509, "ssh_cert", ssh,
	    "ca_x509", ca_x509_pem(id_ca), "ca_ssh", ca_ssh_public(id_ca));
out:
	free(x509);
	free(ssh);
	return reply;
}

/*
 * The targets a user may reach now, for `postern ls` and the launcher: those a role grants and
 * this relay serves with identity checks (a front listens for the protocol, or a tcp target
 * with TLS; benchmark_plaintext targets check nobody, so nobody is told about them).
 */
json_t *
identity_api_targets(const struct config *cfg, X509 *cert, const char *peer, int *status)
{
	struct ca_grant g;
	char reason[256], why[128];
	json_t *targets, *fronts;

	if (cert == NULL)
		return api_error(status, 401, "no_certificate", "this request needs the certificate that postern login "
		    "writes; run postern login");
	if (ca_verify_x509(id_ca, cert, time(NULL), (int)cfg->clock_skew, &g, reason, sizeof(reason)) != 0)
		return api_error(status, 401, "bad_certificate", "%s", reason);
	if (users_locked(g.user, why, sizeof(why)))
		return api_error(status, 403, "locked", "user %s is locked (%s); ask an administrator", g.user,
		    why[0] ? why : "no reason given");
	if ((targets = json_array()) == NULL || (fronts = json_object()) == NULL) {
		json_decref(targets);
		return api_error(status, 500, "internal", "out of memory; try again");
	}
	for (size_t i = 0; i < cfg->ntargets; i++) {
		const struct config_target *t = &cfg->targets[i];
		const struct role *role;
		const char *login;
		json_t *o;

		if (t->protocol == CONFIG_PROTOCOL_TCP ? t->benchmark_plaintext : cfg->listen[t->protocol] == NULL)
			continue;
		if ((role = roles_grant(&cfg->roles, g.user, t->name)) == NULL)
			continue;
		/* The login the target sees: the role's for this protocol, else the target's own. */
		login = role->logins[t->protocol];
		if (login == NULL)
			login = t->protocol == CONFIG_PROTOCOL_SSH ? t->login : t->user;
		o = json_pack("{s:s, s:s, s:s}", "name", t->name, "protocol", config_protocol_name(t->protocol),
		    "role", role->name);
		if (o != NULL && login != NULL)
			json_object_set_new(o, "login", json_string(login));
		if (o != NULL && t->protocol == CONFIG_PROTOCOL_TCP)
			json_object_set_new(o, "address", json_string(t->listen));
		json_array_append_new(targets, o);
	}
	for (int p = CONFIG_PROTOCOL_POSTGRES; p <= CONFIG_PROTOCOL_SSH; p++)
		if (cfg->listen[p] != NULL)
			json_object_set_new(fronts, config_protocol_name((enum config_protocol)p), json_string(cfg->listen[p]));
	log_debug("targets listed", "user=%s client=%s serial=%llu targets=%zu", g.user, peer,
	    (unsigned long long)g.serial, json_array_size(targets));
	*status = 200;
	return json_pack("{s:s, s:I, s:o, s:o, s:s*}", "user", g.user, "expires", (json_int_t)g.not_after,
	    "targets", targets, "relay", fronts, "api_url", cfg->api_url);
}

/* ---- admin ---- */


json_t *
identity_admin(const struct config *cfg, const char *cmd, json_t *req)
{
	const char *user = json_string_value(json_object_get(req, "user"));
	char code[USERS_INVITE_LEN + 1], invite[128], msg[256];
	long ttl;

	if (strcmp(cmd, "users.ls") == 0)
		return json_pack("{s:o}", "users", users_list(&cfg->roles));
	if (!api_name_ok(user, 64))
		return admin_error("%s needs a user name", cmd);
	if (strcmp(cmd, "users.invite") == 0) {
		if (!roles_user_known(&cfg->roles, user))
			return admin_error("%s is not a member of any role; add them to a role script and reload first", user);
		ttl = (long)json_integer_value(json_object_get(req, "ttl"));
		if (ttl <= 0)
			ttl = cfg->invite_ttl;
		if (users_invite_create(user, ttl, code, sizeof(code)) != 0)
			return admin_error("could not store the invite for %s", user);
		snprintf(invite, sizeof(invite), "%s.%s", code, invite_pin);
		log_info("invite created", "user=%s expires_in=%ld", user, ttl);
		return json_pack("{s:s, s:s, s:I, s:s}", "user", user, "invite", invite,
		    "expires", (json_int_t)(time(NULL) + ttl), "url", cfg->api_url ? cfg->api_url : "(set api_listen in posternd.lua)");
	}
	if (strcmp(cmd, "users.lock") == 0) {
		const char *reason = json_string_value(json_object_get(req, "reason"));
		size_t n;

		if (users_lock(user, reason ? reason : "") != 0)
			return admin_error("could not record the lock of %s", user);
		n = identity_sweep(cfg);
		log_info("user locked", "user=%s sessions_ended=%zu", user, n);
		snprintf(msg, sizeof(msg), "%s is locked; %zu live session%s ending", user, n, n == 1 ? "" : "s");
		return json_pack("{s:b, s:s, s:I}", "ok", 1, "message", msg, "sessions_ended", (json_int_t)n);
	}
	if (strcmp(cmd, "users.unlock") == 0) {
		if (users_unlock(user) != 0)
			return admin_error("%s has never been locked", user);
		log_info("user unlocked", "user=%s", user);
		snprintf(msg, sizeof(msg), "%s is unlocked", user);
		return json_pack("{s:b, s:s}", "ok", 1, "message", msg);
	}
	if (strcmp(cmd, "users.rm-device") == 0) {
		const char *device = json_string_value(json_object_get(req, "device"));
		size_t n;

		if (!api_name_ok(device, 16) || users_device_rm(user, device) != 0)
			return admin_error("no such device for %s; see posternctl users ls --json", user);
		n = identity_sweep(cfg);
		log_info("device removed", "user=%s device=%s sessions_ended=%zu", user, device, n);
		snprintf(msg, sizeof(msg), "device %s of %s removed; its certificates are revoked; %zu live session%s ending",
		    device, user, n, n == 1 ? "" : "s");
		return json_pack("{s:b, s:s, s:I}", "ok", 1, "message", msg, "sessions_ended", (json_int_t)n);
	}
	return admin_error("unknown command %s", cmd);
}
