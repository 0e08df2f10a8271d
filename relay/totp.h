/*
 * Time-based one-time passwords for logins whose role asks for MFA: RFC 6238 TOTP with
 * HMAC-SHA1, a 30-second step and 6 digits (what every authenticator app supports), and the
 * RFC 4648 base32 and otpauth:// URI that enrol a secret in such an app.
 */
#ifndef POSTERN_TOTP_H
#define POSTERN_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOTP_SECRET_LEN	20	/* bytes: RFC 4226 recommends 160 bits for HMAC-SHA1 */
#define TOTP_STEP	30	/* seconds per code */
#define TOTP_DIGITS	6	/* digits of the codes totp_verify() accepts */
#define TOTP_WINDOW_MAX	10	/* steps either side totp_verify() will look at */

/* Fill SECRET with LEN random bytes. */
int totp_secret_new(unsigned char *secret, size_t len) __attribute__((warn_unused_result));

/* The DIGITS-digit (6 to 8) code of SECRET at UNIX_TIME. */
int totp_code(const unsigned char *secret, size_t len, uint64_t unix_time, int digits, uint32_t *code)
	__attribute__((warn_unused_result));

/*
 * Whether CODE_TEXT (exactly TOTP_DIGITS digits) is SECRET's code for a step from WINDOW steps
 * before NOW to WINDOW steps after, compared in constant time. *MATCHED_STEP gets the step
 * that matched (the latest, should two), so the caller can refuse a code used before.
 */
bool totp_verify(const unsigned char *secret, size_t len, const char *code_text, uint64_t now, int window,
    uint64_t *matched_step) __attribute__((warn_unused_result));

/*
 * IN as unpadded RFC 4648 base32 into OUT, NUL-terminated. Returns the length written, or 0
 * (and an empty OUT, when OUTLEN allows) if OUTLEN is too small.
 */
size_t base32_encode(const unsigned char *in, size_t len, char *out, size_t outlen);

/*
 * The enrolment URI "otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER&algorithm=SHA1&
 * digits=6&period=30" (issuer and account percent-encoded) into OUT; -1 if it does not fit.
 */
int totp_uri(const unsigned char *secret, size_t len, const char *issuer, const char *account, char *out,
    size_t outlen) __attribute__((warn_unused_result));

#endif
