/*
 * Unit tests of the launcher's HTTPS client without a network: which relay URLs it takes
 * and how it writes them back, and how it reads (or refuses) an HTTP reply as the bytes come
 * in. The client file is compiled in here so its static helpers are in reach.
 */
#include <stdio.h>
#include <string.h>

#include "client/https.c"
#include "tests/unit/check.h"

static char err[512];

/* Parse REPLY as if it had all arrived; the status, or -1 if refused or incomplete. */
static int
parse_all(const char *reply, bool eof, size_t *off, size_t *len)
{
	bool complete = false;
	int status = 0;

	err[0] = '\0';
	if (https_reply_parse(reply, strlen(reply), eof, &complete, &status, off, len, err, sizeof(err)) != 0)
		return -1;
	return complete ? status : 0;
}

static void
url_with_port_is_canonical(void)
{
	struct https_url u;

	CHECK(https_url_parse("https://Relay.Example.com:8443/", &u, err, sizeof(err)) == 0);
	CHECK_STR(u.host, "relay.example.com");
	CHECK_STR(u.port, "8443");
	CHECK(!u.is_ip);
	CHECK_STR(u.text, "https://relay.example.com:8443");
}

static void
url_without_port_means_443(void)
{
	struct https_url u;

	CHECK(https_url_parse("https://relay", &u, err, sizeof(err)) == 0);
	CHECK_STR(u.port, "443");
	CHECK_STR(u.text, "https://relay:443");
}

static void
url_ip_literals_are_marked_for_ip_checks(void)
{
	struct https_url u;

	CHECK(https_url_parse("https://127.0.0.1:18443", &u, err, sizeof(err)) == 0);
	CHECK(u.is_ip && !u.is_v6);
	CHECK(https_url_parse("HTTPS://[::1]:18443", &u, err, sizeof(err)) == 0);
	CHECK(u.is_ip && u.is_v6);
	CHECK_STR(u.host, "::1");
	CHECK_STR(u.text, "https://[::1]:18443");
	CHECK(https_url_parse("https://[fe80::1]", &u, err, sizeof(err)) == 0);
	CHECK_STR(u.port, "443");
}

static void
url_plain_http_is_refused(void)
{
	struct https_url u;

	CHECK(https_url_parse("http://relay:8080", &u, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "HTTPS only");
	CHECK(https_url_parse("relay:8443", &u, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "https://");
}

static void
url_path_user_and_bad_ports_are_refused(void)
{
	static const char *const bad[] = {
		"https://relay/v1", "https://relay:8443/x", "https://relay?x=1", "https://bob@relay",
		"https://relay:0", "https://relay:65536", "https://relay:84a3", "https://relay:", "https://",
		"https://:8443", "https://::1:8443", "https://[::1", "https://[::1]x", "https://[nothex]:1",
		"https://re lay", "https://-relay",
	};
	struct https_url u;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (https_url_parse(bad[i], &u, err, sizeof(err)) == 0) {
			printf("# accepted %s\n", bad[i]);
			CHECK(0);
		}
		CHECK(err[0] != '\0');
	}
}

static void
reply_with_content_length_completes_when_the_body_is_in(void)
{
	const char *reply = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}";
	size_t off = 0, len = 0;
	bool complete = true;
	int status = 0;

	CHECK(parse_all(reply, false, &off, &len) == 200);
	CHECK(len == 7);
	CHECK(strncmp(reply + off, "{\"a\":1}", 7) == 0);
	/* Short by one byte: not yet. */
	CHECK(https_reply_parse(reply, strlen(reply) - 1, false, &complete, &status, &off, &len, err, sizeof(err)) == 0);
	CHECK(!complete);
}

static void
reply_cut_short_is_an_error_at_eof(void)
{
	size_t off, len;

	CHECK(parse_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", true, &off, &len) == -1);
	CHECK_CONTAINS(err, "closed the connection");
	CHECK(parse_all("HTTP/1.1 200 OK\r\nContent-Le", true, &off, &len) == -1);
}

static void
reply_headers_arrive_in_pieces(void)
{
	size_t off, len;

	CHECK(parse_all("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n", false, &off, &len) == 0);
	CHECK(parse_all("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n{}", false, &off, &len) == 403);
}

static void
reply_without_length_needs_a_clean_close(void)
{
	const char *reply = "HTTP/1.0 200 OK\r\n\r\n{\"x\":2}";
	size_t off = 0, len = 0;

	CHECK(parse_all(reply, false, &off, &len) == 0);
	CHECK(parse_all(reply, true, &off, &len) == 200);
	CHECK(len == 7);
}

static void
reply_chunked_is_refused_with_a_reason(void)
{
	size_t off, len;

	CHECK(parse_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", true, &off, &len) == -1);
	CHECK_CONTAINS(err, "chunked");
}

static void
reply_malformed_status_or_length_is_refused(void)
{
	static const char *const bad[] = {
		"SSH-2.0-OpenSSH_9.2\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/2 200\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n{",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n",
	};
	size_t off, len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_all(bad[i], true, &off, &len) != -1) {
			printf("# accepted reply %zu\n", i);
			CHECK(0);
		}
	}
}

static void
reply_headers_without_end_are_bounded(void)
{
	static char big[HTTPS_REPLY_MAX + 2];
	bool complete;
	int status;
	size_t off, len;

	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	memset(big + 20, 'a', sizeof(big) - 20);
	CHECK(https_reply_parse(big, sizeof(big), false, &complete, &status, &off, &len, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "exceed");
}

static void
unreachable_relay_is_reported_as_such(void)
{
	struct https_url u;
	struct https_reply reply;

	/* Port 1 on loopback: nobody listens there, so the connect is refused at once. */
	CHECK(https_url_parse("https://127.0.0.1:1", &u, err, sizeof(err)) == 0);
	CHECK(https_request(&u, NULL, "GET", "/v1/ca", NULL, &reply, err, sizeof(err)) == HTTPS_ERR_UNREACHABLE);
	CHECK_CONTAINS(err, "cannot reach the relay at https://127.0.0.1:1");
	CHECK(reply.body == NULL);
}

int
main(void)
{
	TEST(url_with_port_is_canonical);
	TEST(url_without_port_means_443);
	TEST(url_ip_literals_are_marked_for_ip_checks);
	TEST(url_plain_http_is_refused);
	TEST(url_path_user_and_bad_ports_are_refused);
	TEST(reply_with_content_length_completes_when_the_body_is_in);
	TEST(reply_cut_short_is_an_error_at_eof);
	TEST(reply_headers_arrive_in_pieces);
	TEST(reply_without_length_needs_a_clean_close);
	TEST(reply_chunked_is_refused_with_a_reason);
	TEST(reply_malformed_status_or_length_is_refused);
	TEST(reply_headers_without_end_are_bounded);
	TEST(unreachable_relay_is_reported_as_such);
	return CHECK_DONE();
}
