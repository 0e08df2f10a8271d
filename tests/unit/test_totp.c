/*
 * Unit tests of TOTP: RFC 6238 appendix B's SHA-1 vectors, the verification window, refusal
 * of wrong and malformed codes, RFC 4648's base32 vectors and the otpauth:// URI.
 */
#include <stdint.h>
#include <stdio.h>

#include "relay/totp.h"
#include "tests/unit/check.h"

static const unsigned char rfc_secret[] = "12345678901234567890";	/* RFC 6238 appendix B, SHA-1 */
#define RFC_SECRET_LEN (sizeof(rfc_secret) - 1)

static void
rfc6238_sha1_vectors_match(void)
{
	static const struct {
		uint64_t time;
		uint32_t code;
	} vectors[] = {
		{ 59, 94287082 }, { 1111111109, 7081804 }, { 1111111111, 14050471 },
		{ 1234567890, 89005924 }, { 2000000000, 69279037 }, { 20000000000ull, 65353130 },
	};

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		uint32_t code = 0;

		CHECK(totp_code(rfc_secret, RFC_SECRET_LEN, vectors[i].time, 8, &code) == 0);
		if (code != vectors[i].code)
			printf("# at %llu: %08u, expected %08u\n", (unsigned long long)vectors[i].time, code,
			    vectors[i].code);
		CHECK(code == vectors[i].code);
	}
}

static void
six_digit_code_is_the_last_six_digits(void)
{
	uint32_t code = 0;

	CHECK(totp_code(rfc_secret, RFC_SECRET_LEN, 59, 6, &code) == 0);
	CHECK(code == 287082);
	CHECK(totp_code(rfc_secret, RFC_SECRET_LEN, 59, 5, &code) != 0);
	CHECK(totp_code(rfc_secret, RFC_SECRET_LEN, 59, 9, &code) != 0);
}

static void
current_code_is_accepted_and_its_step_reported(void)
{
	uint64_t now = 1111111111, step = 0;
	uint32_t code;
	char text[8];

	CHECK(totp_code(rfc_secret, RFC_SECRET_LEN, now, TOTP_DIGITS, &code) == 0);
	snprintf(text, sizeof(text), "%06u", code);
	CHECK(totp_verify(rfc_secret, RFC_SECRET_LEN, text, now, 0, &step));
	CHECK(step == now / TOTP_STEP);
}

static void
window_accepts_neighbouring_steps_only(void)
{
	uint64_t now = 1234567890, step = 0;
	uint32_t code;
	char prev[8], next[8], old[8];

	CHECK(totp_code(rfc_secret, RFC_SECRET_LEN, now - TOTP_STEP, TOTP_DIGITS, &code) == 0);
	snprintf(prev, sizeof(prev), "%06u", code);
	CHECK(totp_code(rfc_secret, RFC_SECRET_LEN, now + TOTP_STEP, TOTP_DIGITS, &code) == 0);
	snprintf(next, sizeof(next), "%06u", code);
	CHECK(totp_code(rfc_secret, RFC_SECRET_LEN, now - 2 * TOTP_STEP, TOTP_DIGITS, &code) == 0);
	snprintf(old, sizeof(old), "%06u", code);

	CHECK(!totp_verify(rfc_secret, RFC_SECRET_LEN, prev, now, 0, &step));
	CHECK(totp_verify(rfc_secret, RFC_SECRET_LEN, prev, now, 1, &step));
	CHECK(step == now / TOTP_STEP - 1);
	CHECK(totp_verify(rfc_secret, RFC_SECRET_LEN, next, now, 1, &step));
	CHECK(step == now / TOTP_STEP + 1);
	CHECK(!totp_verify(rfc_secret, RFC_SECRET_LEN, old, now, 1, &step));
	CHECK(totp_verify(rfc_secret, RFC_SECRET_LEN, old, now, 2, &step));
	CHECK(!totp_verify(rfc_secret, RFC_SECRET_LEN, old, now, -1, &step));
	CHECK(!totp_verify(rfc_secret, RFC_SECRET_LEN, old, now, TOTP_WINDOW_MAX + 1, &step));
}

static void
wrong_or_malformed_codes_are_refused(void)
{
	uint64_t now = 2000000000, step = 12345;
	uint32_t code;
	char text[16];

	CHECK(totp_code(rfc_secret, RFC_SECRET_LEN, now, TOTP_DIGITS, &code) == 0);
	snprintf(text, sizeof(text), "%06u", (code + 1) % 1000000);
	CHECK(!totp_verify(rfc_secret, RFC_SECRET_LEN, text, now, 1, &step));
	snprintf(text, sizeof(text), "%06u ", code);
	CHECK(!totp_verify(rfc_secret, RFC_SECRET_LEN, text, now, 1, &step));
	snprintf(text, sizeof(text), "0%06u", code);
	CHECK(!totp_verify(rfc_secret, RFC_SECRET_LEN, text, now, 1, &step));
	CHECK(!totp_verify(rfc_secret, RFC_SECRET_LEN, text + 2, now, 1, &step));
	CHECK(!totp_verify(rfc_secret, RFC_SECRET_LEN, "12345a", now, 1, &step));
	CHECK(!totp_verify(rfc_secret, RFC_SECRET_LEN, "", now, 1, &step));
	CHECK(step == 12345);
}

static void
code_of_another_secret_is_refused(void)
{
	unsigned char other[TOTP_SECRET_LEN];
	uint64_t now = 1700000000, step;
	uint32_t code;
	char text[8];

	CHECK(totp_secret_new(other, sizeof(other)) == 0);
	CHECK(totp_code(other, sizeof(other), now, TOTP_DIGITS, &code) == 0);
	snprintf(text, sizeof(text), "%06u", code);
	CHECK(totp_verify(other, sizeof(other), text, now, 0, &step));
	other[0] ^= 1;
	CHECK(!totp_verify(other, sizeof(other), text, now, 0, &step));
}

static void
base32_matches_rfc4648_without_padding(void)
{
	static const char *const vectors[][2] = {
		{ "", "" }, { "f", "MY" }, { "fo", "MZXQ" }, { "foo", "MZXW6" }, { "foob", "MZXW6YQ" },
		{ "fooba", "MZXW6YTB" }, { "foobar", "MZXW6YTBOI" },
	};
	char out[40];

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		CHECK(base32_encode((const unsigned char *)vectors[i][0], strlen(vectors[i][0]), out, sizeof(out)) ==
		    strlen(vectors[i][1]));
		CHECK_STR(out, vectors[i][1]);
	}
	CHECK(base32_encode(rfc_secret, RFC_SECRET_LEN, out, sizeof(out)) == 32);
	CHECK_STR(out, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}

static void
base32_refuses_a_short_buffer(void)
{
	char out[10];

	CHECK(base32_encode((const unsigned char *)"foobar", 6, out, sizeof(out)) == 0);
	CHECK_STR(out, "");
	CHECK(base32_encode((const unsigned char *)"fooba", 5, out, 9) == 8);
	CHECK(base32_encode((const unsigned char *)"fooba", 5, out, 8) == 0);
}

static void
uri_is_percent_encoded(void)
{
	char uri[256];

	CHECK(totp_uri(rfc_secret, RFC_SECRET_LEN, "Postern Corp", "alice@example.com", uri, sizeof(uri)) == 0);
	CHECK_STR(uri, "otpauth://totp/Postern%20Corp:alice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	    "&issuer=Postern%20Corp&algorithm=SHA1&digits=6&period=30");
	CHECK(totp_uri(rfc_secret, RFC_SECRET_LEN, "Postern Corp", "alice@example.com", uri, 60) != 0);
	CHECK_STR(uri, "");
}

int
main(void)
{
	TEST(rfc6238_sha1_vectors_match);
	TEST(six_digit_code_is_the_last_six_digits);
	TEST(current_code_is_accepted_and_its_step_reported);
	TEST(window_accepts_neighbouring_steps_only);
	TEST(wrong_or_malformed_codes_are_refused);
	TEST(code_of_another_secret_is_refused);
	TEST(base32_matches_rfc4648_without_padding);
	TEST(base32_refuses_a_short_buffer);
	TEST(uri_is_percent_encoded);
	return CHECK_DONE();
}
