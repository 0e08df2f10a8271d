/*
 * This device's Ed25519 key: made at enrolment, its public half registered with the relay,
 * its secret kept only in POSTERN_HOME/device.key. Each login signs the relay's challenge
 * together with the session's public key with it (docs/login-api.md).
 */
#ifndef POSTERN_CLIENT_DEVICE_H
#define POSTERN_CLIENT_DEVICE_H

#include <stddef.h>

#include <sodium.h>

/* The first word of device.key: the key's kind and the file's format version. */
#define DEVICE_KEY_TAG		"postern-device-ed25519-v1"
/* The context the relay expects in front of the signed login message. */
#define DEVICE_LOGIN_CONTEXT	"postern-login-v1\n"
#define DEVICE_SIG_B64_LEN	(4 * ((crypto_sign_BYTES + 2) / 3) + 1)
#define DEVICE_PK_B64_LEN	(4 * ((crypto_sign_PUBLICKEYBYTES + 2) / 3) + 1)
#define DEVICE_KEY_TEXT_LEN	(sizeof(DEVICE_KEY_TAG) + 4 * ((crypto_sign_SEEDBYTES + 2) / 3) + 2)

struct device_key {
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sk[crypto_sign_SECRETKEYBYTES];	/* seed and public key, libsodium's layout */
};

/* A new random key pair. 0 or -1. */
int device_key_new(struct device_key *key) __attribute__((warn_unused_result));

/* KEY as the text of device.key ("TAG <base64 seed>\n") into OUT, which holds DEVICE_KEY_TEXT_LEN. */
int device_key_format(const struct device_key *key, char *out, size_t outlen) __attribute__((warn_unused_result));

/* The key from device.key's TEXT. 0, or -1 with ERR. */
int device_key_parse(const char *text, struct device_key *key, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The public key, base64, into OUT (DEVICE_PK_B64_LEN). */
int device_key_public_b64(const struct device_key *key, char *out, size_t outlen) __attribute__((warn_unused_result));

/*
 * Sign the login message DEVICE_LOGIN_CONTEXT + CHALLENGE + "\n" + PUBKEY_PEM; the base64
 * signature into OUT (DEVICE_SIG_B64_LEN). 0 or -1.
 */
int device_key_sign_login(const struct device_key *key, const char *challenge, const char *pubkey_pem, char *out,
    size_t outlen) __attribute__((warn_unused_result));

/* Wipe KEY. */
void device_key_wipe(struct device_key *key);

#endif
