/*
 * RFC 6238 TOTP on RFC 4226 HOTP (HMAC-SHA1 and its dynamic truncation), RFC 4648 base32, and
 * the otpauth:// key URI that authenticator apps read from a QR code. Codes are compared in
 * constant time and every buffer that held a MAC, a code or an encoded secret is wiped.
 */
#include "relay/totp.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sodium.h>

#define TOTP_DIGITS_MIN		6
#define TOTP_DIGITS_MAX		8
#define TOTP_SECRET_MAX		64	/* bytes totp_uri() encodes; authenticators take far less */
#define HOTP_COUNTER_LEN	8	/* RFC 4226: the counter is 8 bytes, big-endian */
#define HOTP_OFFSET_MASK	0x0f	/* RFC 4226 5.3: the last byte's low nibble picks 4 bytes */
#define HOTP_CODE_MASK		0x7fffffffu	/* ... of which 31 bits count */
#define BASE32_BITS		5
#define BASE32_LEN(n)		(((n) * 8 + BASE32_BITS - 1) / BASE32_BITS)

#define TOTP_STR_(x)		#x
#define TOTP_STR(x)		TOTP_STR_(x)

static const char base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int
totp_secret_new(unsigned char *secret, size_t len)
{
	if (len == 0 || sodium_init() < 0)
		return -1;
	randombytes_buf(secret, len);
	return 0;
}

/* The DIGITS-digit HOTP code of SECRET for COUNTER. */
static int
hotp_code(const unsigned char *secret, size_t len, uint64_t counter, int digits, uint32_t *code)
{
	static const uint32_t modulus[] = { 1000000, 10000000, 100000000 };	/* 10^6 .. 10^8 */
	unsigned char msg[HOTP_COUNTER_LEN], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	unsigned int off;
	int r = -1;

	if (digits < TOTP_DIGITS_MIN || digits > TOTP_DIGITS_MAX || len > INT_MAX)
		return -1;
	for (int i = HOTP_COUNTER_LEN - 1; i >= 0; i--, counter >>= 8)
		msg[i] = (unsigned char)counter;
	if (HMAC(EVP_sha1(), secret, (int)len, msg, sizeof(msg), mac, &maclen) == NULL || maclen != SHA_DIGEST_LENGTH)
		goto out;
	off = mac[maclen - 1] & HOTP_OFFSET_MASK;
	*code = ((uint32_t)mac[off] << 24 | (uint32_t)mac[off + 1] << 16 | (uint32_t)mac[off + 2] << 8 | mac[off + 3]) &
	    HOTP_CODE_MASK;
	*code %= modulus[digits - TOTP_DIGITS_MIN];
	r = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	return r;
}

int
totp_code(const unsigned char *secret, size_t len, uint64_t unix_time, int digits, uint32_t *code)
{
	return hotp_code(secret, len, unix_time / TOTP_STEP, digits, code);
}

bool
totp_verify(const unsigned char *secret, size_t len, const char *code_text, uint64_t now, int window,
    uint64_t *matched_step)
{
	char want[TOTP_DIGITS + 1];
	uint64_t step = now / TOTP_STEP, first;
	uint32_t code = 0;
	bool ok = false;

	if (window < 0 || window > TOTP_WINDOW_MAX || strnlen(code_text, TOTP_DIGITS + 1) != TOTP_DIGITS ||
	    strspn(code_text, "0123456789") != TOTP_DIGITS)
		return false;
	first = step < (uint64_t)window ? 0 : step - (uint64_t)window;
	/* Every step is computed and compared, so the time taken says nothing about the code. */
	for (uint64_t s = first; s <= step + (uint64_t)window; s++) {
		if (hotp_code(secret, len, s, TOTP_DIGITS, &code) != 0) {
			ok = false;
			break;
		}
		snprintf(want, sizeof(want), "%0*" PRIu32, TOTP_DIGITS, code);
		if (sodium_memcmp(want, code_text, TOTP_DIGITS) == 0) {
			ok = true;
			*matched_step = s;
		}
	}
	sodium_memzero(want, sizeof(want));
	sodium_memzero(&code, sizeof(code));
	return ok;
}

size_t
base32_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	uint32_t bits = 0;	/* only the low NBITS are pending */
	size_t n = 0;
	int nbits = 0;

	if (len > (SIZE_MAX - BASE32_BITS) / 8 || BASE32_LEN(len) >= outlen) {
		if (outlen > 0)
			out[0] = '\0';
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		bits = bits << 8 | in[i];
		for (nbits += 8; nbits >= BASE32_BITS; nbits -= BASE32_BITS)
			out[n++] = base32_alphabet[(bits >> (nbits - BASE32_BITS)) & 0x1f];
	}
	if (nbits > 0)
		out[n++] = base32_alphabet[(bits << (BASE32_BITS - nbits)) & 0x1f];
	out[n] = '\0';
	return n;
}

/* Append S to OUT at *N, percent-encoding all but RFC 3986's unreserved characters if ENCODE. */
static bool
totp_put(char *out, size_t outlen, size_t *n, const char *s, bool encode)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char unreserved[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (!encode || strchr(unreserved, c) != NULL) {
			if (outlen - *n < 2)
				return false;
			out[(*n)++] = (char)c;
		} else {
			if (outlen - *n < 4)
				return false;
			out[(*n)++] = '%';
			out[(*n)++] = hex[c >> 4];
			out[(*n)++] = hex[c & 0x0f];
		}
	}
	out[*n] = '\0';
	return true;
}

int
totp_uri(const unsigned char *secret, size_t len, const char *issuer, const char *account, char *out,
    size_t outlen)
{
	char b32[BASE32_LEN(TOTP_SECRET_MAX) + 1];
	size_t n = 0;
	int r = -1;

	if (outlen == 0)
		return -1;
	if (len == 0 || len > TOTP_SECRET_MAX || base32_encode(secret, len, b32, sizeof(b32)) == 0)
		goto out;
	if (!totp_put(out, outlen, &n, "otpauth://totp/", false) || !totp_put(out, outlen, &n, issuer, true) ||
	    !totp_put(out, outlen, &n, ":", false) || !totp_put(out, outlen, &n, account, true) ||
	    !totp_put(out, outlen, &n, "?secret=", false) || !totp_put(out, outlen, &n, b32, false) ||
	    !totp_put(out, outlen, &n, "&issuer=", false) || !totp_put(out, outlen, &n, issuer, true) ||
	    !totp_put(out, outlen, &n, "&algorithm=SHA1&digits=" TOTP_STR(TOTP_DIGITS) "&period=" TOTP_STR(TOTP_STEP),
		false))
		goto out;
	r = 0;
out:
	sodium_memzero(b32, sizeof(b32));
	if (r != 0)
		sodium_memzero(out, outlen);	/* a partial URI may hold part of the secret */
	return r;
}
