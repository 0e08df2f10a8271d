/*
 * The user store: enrolled devices, TOTP secrets, locks, invites and the certificate serial,
 * kept in STATE_DIR/users.json (0600, replaced atomically on every change). Who a user is
 * allowed to be comes from the role scripts; this file only holds what happened to them.
 * All functions are thread-safe (one mutex); none is called on a data path.
 */
#ifndef POSTERN_USERS_H
#define POSTERN_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "policy/roles.h"

#define USERS_DEVICE_KEY_LEN	32	/* Ed25519 public key */
#define USERS_TOTP_LEN		20	/* RFC 6238 SHA-1 secret */
#define USERS_INVITE_LEN	32	/* base32 characters of a new invite code */

int users_open(const char *state_dir, char *err, size_t errlen) __attribute__((warn_unused_result));
void users_close(void);

/* A new single-use invite for USER valid TTL seconds; CODE gets USERS_INVITE_LEN chars + NUL. */
int users_invite_create(const char *user, long ttl, char *code, size_t len) __attribute__((warn_unused_result));
/* Consume CODE: USER gets its user. -1 with a reason when unknown, used or expired. */
int users_invite_redeem(const char *code, char *user, size_t ulen, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Enrol a device key for USER; ID gets the new device id ("d" + 12 hex digits). */
int users_device_add(const char *user, const char *name, const uint8_t key[USERS_DEVICE_KEY_LEN],
    char *id, size_t idlen) __attribute__((warn_unused_result));
bool users_device_key(const char *user, const char *id, uint8_t key[USERS_DEVICE_KEY_LEN]);
/* Forget device ID of USER; the certificates issued to it that have not expired are revoked. */
int users_device_rm(const char *user, const char *id) __attribute__((warn_unused_result));
/* Was certificate SERIAL revoked (its device removed)? Takes no lock a login's fsync holds. */
bool users_serial_revoked(uint64_t serial);

int users_totp_set(const char *user, const uint8_t secret[USERS_TOTP_LEN]) __attribute__((warn_unused_result));
/* The secret and the last time step accepted (codes at or before it are replays). */
bool users_totp_get(const char *user, uint8_t secret[USERS_TOTP_LEN], uint64_t *last_step);
void users_totp_used(const char *user, uint64_t step);

int users_lock(const char *user, const char *reason) __attribute__((warn_unused_result));
int users_unlock(const char *user) __attribute__((warn_unused_result));
/* Is USER locked? REASON (may be NULL) gets why. */
bool users_locked(const char *user, char *reason, size_t rlen);

/* USER logged in from DEVICE and got certificate SERIAL, valid until NOT_AFTER. */
void users_record_login(const char *user, const char *device, uint64_t serial, time_t not_after);
uint64_t users_next_serial(void);

/* Everyone in ROLES or in the store: user, roles, devices, locked, last login. */
json_t *users_list(const struct roles *roles);

#endif
