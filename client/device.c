/*
 * The device key: generation, its one-line file format and the login signature. Only the
 * 32-byte seed is stored (libsodium derives the rest), tagged with its format so a later
 * version can tell an old file from a new one.
 */
#include "client/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/util.h"

#define DEVICE_SEED_B64_LEN	(4 * ((crypto_sign_SEEDBYTES + 2) / 3))

int
device_key_new(struct device_key *key)
{
	if (sodium_init() < 0)
		return -1;
	return crypto_sign_keypair(key->pk, key->sk) == 0 ? 0 : -1;
}

int
device_key_format(const struct device_key *key, char *out, size_t outlen)
{
	unsigned char seed[crypto_sign_SEEDBYTES];
	char b64[DEVICE_SEED_B64_LEN + 1];
	int r = -1;

	if (crypto_sign_ed25519_sk_to_seed(seed, key->sk) != 0 || util_b64_encode(seed, sizeof(seed), b64, sizeof(b64)) != 0)
		goto out;
	if ((size_t)snprintf(out, outlen, "%s %s\n", DEVICE_KEY_TAG, b64) >= outlen)
		goto out;
	r = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(b64, sizeof(b64));
	return r;
}

int
device_key_parse(const char *text, struct device_key *key, char *err, size_t errlen)
{
	unsigned char seed[crypto_sign_SEEDBYTES];
	char b64[DEVICE_SEED_B64_LEN + 1];
	size_t taglen = strlen(DEVICE_KEY_TAG), n;
	int r = -1;

	if (strncmp(text, DEVICE_KEY_TAG, taglen) != 0 || text[taglen] != ' ') {
		snprintf(err, errlen, "is not a postern device key (it should start with %s); enrol again with an invite",
		    DEVICE_KEY_TAG);
		goto out;
	}
	text += taglen + 1;
	n = strcspn(text, "\r\n");
	if (n != DEVICE_SEED_B64_LEN || text[n + strspn(text + n, "\r\n")] != '\0') {
		snprintf(err, errlen, "is damaged (its key is not %d base64 characters on one line); enrol again with "
		    "an invite", DEVICE_SEED_B64_LEN);
		goto out;
	}
	memcpy(b64, text, n);
	b64[n] = '\0';
	if (sodium_init() < 0 || util_b64_decode_exact(b64, seed, sizeof(seed)) != 0 ||
	    crypto_sign_seed_keypair(key->pk, key->sk, seed) != 0) {
		snprintf(err, errlen, "is damaged (its key is not valid base64); enrol again with an invite");
		goto out;
	}
	r = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(b64, sizeof(b64));
	return r;
}

int
device_key_public_b64(const struct device_key *key, char *out, size_t outlen)
{
	return util_b64_encode(key->pk, sizeof(key->pk), out, outlen);
}

int
device_key_sign_login(const struct device_key *key, const char *challenge, const char *pubkey_pem, char *out,
    size_t outlen)
{
	unsigned char sig[crypto_sign_BYTES];
	char *msg = NULL;
	int n, r = -1;

	if ((n = asprintf(&msg, "%s%s\n%s", DEVICE_LOGIN_CONTEXT, challenge, pubkey_pem)) < 0) {
		msg = NULL;
		goto out;
	}
	if (crypto_sign_detached(sig, NULL, (const unsigned char *)msg, (unsigned long long)n, key->sk) != 0 ||
	    util_b64_encode(sig, sizeof(sig), out, outlen) != 0)
		goto out;
	r = 0;
out:
	free(msg);
	return r;
}

void
device_key_wipe(struct device_key *key)
{
	sodium_memzero(key, sizeof(*key));
}
