/*
 * Unit tests of postern login, status and logout that need no relay: the device key file and
 * the signature the relay checks, the invite pin, the private home and its whole-file writes,
 * and the exit statuses and messages of status, logout and a login that cannot go ahead.
 * The flows against a real posternd belong to the integration tests. The client files are
 * compiled in here so their static helpers are in reach.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client/device.c"
#include "client/home.c"
#include "client/https.c"
#include "client/login.c"
#include "tests/unit/check.h"
#include "tests/unit/capture.h"
#include "tests/unit/client_fixture.h"

/* Any CA certificate will do where no TLS handshake happens. */
static const char test_ca_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBlTCCATugAwIBAgIUX+wJ7siMbYyxVzUpSMpstBPcKRMwCgYIKoZIzj0EAwIw\n"
	"HzEdMBsGA1UEAwwUUG9zdGVybiB1bml0IHRlc3QgQ0EwIBcNMjYxMTIzMTYxMzU0\n"
	"WhgPMjEyNjEwMzAxNjEzNTRaMB8xHTAbBgNVBAMMFFBvc3Rlcm4gdW5pdCB0ZXN0\n"
	"IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgeP+BdX9wFB6RLkdvgE5dDU8\n"
	"QemBWVK6X04K+qS0fT/UJTj+6rmJCQmJQFMxig+oGZLbs8025qB2qPyf7sdPP6NT\n"
	"MFEwHQYDVR0OBBYEFA+DZnTjPQexLq5Ouva0/H0rZfYHMB8GA1UdIwQYMBaAFA+D\n"
	"ZnTjPQexLq5Ouva0/H0rZfYHMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwID\n"
	"SAAwRQIgLtgXBHdHQbTtg7WgA42lKMZfqKtEafcuc3fU2fvImMICIQCDrAaVSeTD\n"
	"Ao3k17vXwSRB5MrNkvNf/KvAyoRRpdWEYQ==\n"
	"-----END CERTIFICATE-----\n";

/* A fresh POSTERN_HOME under the test root; the struct home for it. */
static void
fresh_home(const char *name, struct home *h)
{
	fresh_home_at(name, "postern", h);
}

static bool
exists(const struct home *h, const char *name)
{
	char path[PATH_MAX];

	return access(home_path(h, name, path, sizeof(path)), F_OK) == 0;
}

/* A session that ends SECONDS from now, with every file status looks for. */
static void
put_session(const struct home *h, long seconds)
{
	char text[256];

	snprintf(text, sizeof(text), "{\"user\": \"alice\", \"roles\": [\"dev\", \"ops\"], \"serial\": 7, "
	    "\"expires\": %lld, \"relay\": \"https://relay:8443\"}\n", (long long)time(NULL) + seconds);
	put(h, HOME_SESSION, text);
	put(h, HOME_KEY, "key\n");
	put(h, HOME_CERT, "cert\n");
	put(h, HOME_SSH_KEY, "key\n");
	put(h, HOME_SSH_CERT, "cert\n");
	put(h, HOME_SSH_PUB, "pub\n");
}

static void
device_key_round_trips_through_its_file_format(void)
{
	struct device_key a, b;
	char text[DEVICE_KEY_TEXT_LEN];

	CHECK(device_key_new(&a) == 0);
	CHECK(device_key_format(&a, text, sizeof(text)) == 0);
	CHECK(strncmp(text, DEVICE_KEY_TAG " ", strlen(DEVICE_KEY_TAG) + 1) == 0);
	CHECK(text[strlen(text) - 1] == '\n');
	CHECK(device_key_parse(text, &b, err, sizeof(err)) == 0);
	CHECK(memcmp(a.pk, b.pk, sizeof(a.pk)) == 0);
	CHECK(memcmp(a.sk, b.sk, sizeof(a.sk)) == 0);
	device_key_wipe(&a);
	device_key_wipe(&b);
}

static void
device_key_file_that_is_not_ours_or_damaged_is_refused(void)
{
	static const char *const bad[] = {
		"", "ssh-ed25519 AAAA\n", DEVICE_KEY_TAG "\n", DEVICE_KEY_TAG " short\n",
		DEVICE_KEY_TAG " e+miH2n3GfmjkXi7QfGGvbCGma9TelKcLjCxlbmiDCo=\nsecond line\n",
		DEVICE_KEY_TAG " !+miH2n3GfmjkXi7QfGGvbCGma9TelKcLjCxlbmiDCo=\n",
	};
	struct device_key k;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (device_key_parse(bad[i], &k, err, sizeof(err)) == 0) {
			printf("# accepted key file %zu\n", i);
			CHECK(0);
		}
		CHECK_CONTAINS(err, "enrol again");
	}
}

static void
login_signature_verifies_over_the_message_the_relay_builds(void)
{
	const char *challenge = "c2lnbiBtZSBwbGVhc2UsIDMyIGJ5dGVzIG9mIG5vbmNlIQ==";
	const char *pem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
	unsigned char sig[crypto_sign_BYTES];
	char b64[DEVICE_SIG_B64_LEN], *msg = NULL;
	struct device_key k;
	int n;

	CHECK(device_key_new(&k) == 0);
	CHECK(device_key_sign_login(&k, challenge, pem, b64, sizeof(b64)) == 0);
	CHECK(util_b64_decode_exact(b64, sig, sizeof(sig)) == 0);
	/* relay/identity.c: "postern-login-v1\n" + challenge + "\n" + public key PEM. */
	n = asprintf(&msg, "postern-login-v1\n%s\n%s", challenge, pem);
	CHECK(n > 0);
	CHECK(crypto_sign_verify_detached(sig, (unsigned char *)msg, (unsigned long long)n, k.pk) == 0);
	/* Another key in the message must not verify: the signature binds the session key. */
	msg[n - 30] ^= 1;
	CHECK(crypto_sign_verify_detached(sig, (unsigned char *)msg, (unsigned long long)n, k.pk) != 0);
	free(msg);
	device_key_wipe(&k);
}

static void
invite_pin_is_base32_of_the_ca_text_hash(void)
{
	char pin[LOGIN_PIN_LEN + 1];

	/* SHA-256("abc")[:20] in RFC 4648 base32, without padding. */
	CHECK(login_ca_pin("abc", pin, sizeof(pin)) == 0);
	CHECK_STR(pin, "XJ4BNP4PAHH6UQKBIDPF3LRCEOYAGYND");
}

static void
invite_must_be_code_dot_pin(void)
{
	const char *pin = NULL;

	CHECK(login_invite_split("ABCDEF.XJ4BNP4PAHH6UQKBIDPF3LRCEOYAGYND", &pin));
	CHECK_STR(pin, "XJ4BNP4PAHH6UQKBIDPF3LRCEOYAGYND");
	CHECK(login_invite_split("abcdef.xj4bnp4pahh6uqkbidpf3lrceoyagynd", &pin));
	CHECK(!login_invite_split("XJ4BNP4PAHH6UQKBIDPF3LRCEOYAGYND", &pin));
	CHECK(!login_invite_split(".XJ4BNP4PAHH6UQKBIDPF3LRCEOYAGYND", &pin));
	CHECK(!login_invite_split("ABC.XJ4BNP4PAHH6UQKBIDPF3LRCEOYAGYN", &pin));
	CHECK(!login_invite_split("ABC.XJ4BNP4PAHH6UQKBIDPF3LRCEOYAGY18", &pin));
	CHECK(!login_invite_split("A.B.XJ4BNP4PAHH6UQKBIDPF3LRCEOYAGYND", &pin));
}

static void
home_is_created_private_with_private_files(void)
{
	struct home h;
	struct stat st;
	char path[PATH_MAX];
	mode_t old = umask(022);

	fresh_home("private", &h);
	CHECK(stat(h.dir, &st) == 0);
	CHECK((st.st_mode & 0777) == 0700);
	put(&h, HOME_CERT, "certificate\n");
	CHECK(stat(home_path(&h, HOME_CERT, path, sizeof(path)), &st) == 0);
	CHECK((st.st_mode & 0777) == 0600);
	umask(old);
}

static void
home_write_replaces_the_whole_file_and_leaves_no_temporaries(void)
{
	struct home h;
	char *text = NULL;
	size_t len = 0, files = 0;
	DIR *d;
	struct dirent *e;

	fresh_home("replace", &h);
	put(&h, HOME_SESSION, "a much longer first version\n");
	put(&h, HOME_SESSION, "short\n");
	CHECK(home_read(&h, HOME_SESSION, false, &text, &len, err, sizeof(err)) == 0);
	CHECK_STR(text, "short\n");
	home_free(text, len);
	CHECK((d = opendir(h.dir)) != NULL);
	while (d != NULL && (e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			files++;
	if (d != NULL)
		closedir(d);
	CHECK(files == 1);
}

static void
home_read_refuses_a_key_others_may_read(void)
{
	struct home h;
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;

	fresh_home("loose", &h);
	put(&h, HOME_DEVICE_KEY, "secret\n");
	CHECK(chmod(home_path(&h, HOME_DEVICE_KEY, path, sizeof(path)), 0644) == 0);
	CHECK(home_read(&h, HOME_DEVICE_KEY, true, &text, &len, err, sizeof(err)) == HOME_ERR);
	CHECK_CONTAINS(err, "chmod 600");
	CHECK(home_read(&h, "nothing-here", false, &text, &len, err, sizeof(err)) == HOME_MISSING);
}

static void
status_without_a_session_exits_4(void)
{
	struct home h;
	char *argv[] = { "status", NULL };

	fresh_home("status-none", &h);
	CHECK(run_captured(login_status, 1, argv) == POSTERN_EXIT_NOT_LOGGED_IN);
	CHECK_CONTAINS(out, "not logged in (or credentials expired); run postern login");
}

static void
status_with_an_expired_session_exits_4(void)
{
	struct home h;
	char *argv[] = { "status", NULL };

	fresh_home("status-expired", &h);
	put_session(&h, -60);
	CHECK(run_captured(login_status, 1, argv) == POSTERN_EXIT_NOT_LOGGED_IN);
	CHECK_CONTAINS(out, "not logged in (credentials expired at");
	CHECK_CONTAINS(out, "run postern login");
}

static void
status_shows_user_relay_roles_and_expiry(void)
{
	struct home h;
	char *argv[] = { "status", NULL };

	fresh_home("status-ok", &h);
	put_session(&h, 3 * 3600 - 30);
	CHECK(run_captured(login_status, 1, argv) == POSTERN_EXIT_OK);
	CHECK_CONTAINS(out, "user:     alice");
	CHECK_CONTAINS(out, "relay:    https://relay:8443");
	CHECK_CONTAINS(out, "roles:    dev, ops");
	CHECK_CONTAINS(out, "(in 2 h 59 min)");
	CHECK(strstr(out, "warning") == NULL);
}

static void
status_warns_in_the_last_15_minutes(void)
{
	struct home h;
	char *argv[] = { "status", NULL };

	fresh_home("status-soon", &h);
	put_session(&h, 10 * 60);
	CHECK(run_captured(login_status, 1, argv) == POSTERN_EXIT_OK);
	CHECK_CONTAINS(out, "warning: expires in 10 minutes");
}

static void
status_with_a_credential_file_missing_is_not_logged_in(void)
{
	struct home h;
	char *argv[] = { "status", NULL };
	bool existed;

	fresh_home("status-partial", &h);
	put_session(&h, 3600);
	CHECK(home_remove(&h, HOME_CERT, &existed, err, sizeof(err)) == 0 && existed);
	CHECK(run_captured(login_status, 1, argv) == POSTERN_EXIT_NOT_LOGGED_IN);
	CHECK_CONTAINS(out, "incomplete");
}

static void
logout_deletes_the_session_and_keeps_the_enrolment(void)
{
	struct home h;
	char *argv[] = { "logout", NULL };

	fresh_home("logout", &h);
	put(&h, HOME_RELAY, "{}\n");
	put(&h, HOME_DEVICE_KEY, "key\n");
	put(&h, HOME_CA, "ca\n");
	put(&h, HOME_SSH_CA, "ca\n");
	put_session(&h, 3600);
	CHECK(run_captured(login_logout, 1, argv) == POSTERN_EXIT_OK);
	CHECK_CONTAINS(out, "logged out");
	CHECK(!exists(&h, HOME_SESSION) && !exists(&h, HOME_KEY) && !exists(&h, HOME_CERT));
	CHECK(!exists(&h, HOME_SSH_KEY) && !exists(&h, HOME_SSH_CERT) && !exists(&h, HOME_SSH_PUB));
	CHECK(exists(&h, HOME_RELAY) && exists(&h, HOME_DEVICE_KEY) && exists(&h, HOME_CA) && exists(&h, HOME_SSH_CA));
	CHECK(run_captured(login_logout, 1, argv) == POSTERN_EXIT_OK);
	CHECK_CONTAINS(out, "not logged in; nothing to delete");
}

static void
login_before_enrolment_asks_for_an_invite(void)
{
	struct home h;
	char *argv[] = { "login", NULL };

	fresh_home("not-enrolled", &h);
	CHECK(run_captured(login_main, 1, argv) == POSTERN_EXIT_ERROR);
	CHECK_CONTAINS(out, "not enrolled yet");
	CHECK_CONTAINS(out, "--invite CODE.PIN");
}

static void
login_usage_errors_exit_2(void)
{
	static char *cases[][4] = {
		{ "login", "--frobnicate", NULL },
		{ "login", "--totp", "12345", NULL },
		{ "login", "https://a:1", "https://b:2", NULL },
		{ "login", "--invite", NULL },
		{ "login", "http://relay:8443", "--invite", "C.XJ4BNP4PAHH6UQKBIDPF3LRCEOYAGYND" },
		{ "login", "https://relay:8443", "--invite", "no-pin-here" },
		{ "login", "--device-name", "semi;colon", NULL },
	};
	struct home h;

	fresh_home("usage", &h);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int argc = 0;

		while (argc < 4 && cases[i][argc] != NULL)
			argc++;
		if (run_captured(login_main, argc, cases[i]) != POSTERN_EXIT_USAGE) {
			printf("# case %zu did not exit 2: %s", i, out);
			CHECK(0);
		}
		CHECK_CONTAINS(out, "postern: ");
	}
}

static void
login_to_an_unreachable_relay_exits_3(void)
{
	struct home h;
	struct device_key k;
	char text[DEVICE_KEY_TEXT_LEN];
	char *argv[] = { "login", "--totp", "123456", NULL };

	fresh_home("unreachable", &h);
	CHECK(device_key_new(&k) == 0 && device_key_format(&k, text, sizeof(text)) == 0);
	put(&h, HOME_DEVICE_KEY, text);
	put(&h, HOME_CA, test_ca_pem);
	/* Port 1 on loopback: nobody listens there, so the connect is refused at once. */
	put(&h, HOME_RELAY, "{\"url\": \"https://127.0.0.1:1\", \"user\": \"alice\", \"device_id\": \"d1\"}\n");
	CHECK(run_captured(login_main, 3, argv) == POSTERN_EXIT_UNREACHABLE);
	CHECK_CONTAINS(out, "cannot reach the relay at https://127.0.0.1:1");
	device_key_wipe(&k);
}

static void
login_with_a_damaged_ca_file_says_to_enrol_again(void)
{
	struct home h;
	struct device_key k;
	char text[DEVICE_KEY_TEXT_LEN];
	char *argv[] = { "login", "--totp", "123456", NULL };

	fresh_home("damaged-ca", &h);
	CHECK(device_key_new(&k) == 0 && device_key_format(&k, text, sizeof(text)) == 0);
	put(&h, HOME_DEVICE_KEY, text);
	put(&h, HOME_CA, "not a certificate\n");
	put(&h, HOME_RELAY, "{\"url\": \"https://127.0.0.1:1\", \"user\": \"alice\", \"device_id\": \"d1\"}\n");
	CHECK(run_captured(login_main, 3, argv) == POSTERN_EXIT_ERROR);
	CHECK_CONTAINS(out, "enrol again");
	device_key_wipe(&k);
}

static void
a_second_run_does_not_interleave_with_the_first(void)
{
	struct home h;
	char *argv[] = { "login", NULL };
	int held = -1;

	fresh_home("locked", &h);
	CHECK(home_lock(&h, &held, err, sizeof(err)) == 0);
	CHECK(run_captured(login_main, 1, argv) == POSTERN_EXIT_ERROR);
	CHECK_CONTAINS(out, "another postern login or logout is running");
	home_unlock(held);
	CHECK(run_captured(login_main, 1, argv) == POSTERN_EXIT_ERROR);
	CHECK_CONTAINS(out, "not enrolled yet");
}

/* Answer login_prompt_code() with INPUT on stdin; its result, the code in CODE. */
static int
prompt_with(const char *input, char *code, size_t size)
{
	int fds[2], saved_in = dup(0), saved_err = dup(2), devnull = open("/dev/null", O_WRONLY), r;

	if (pipe(fds) != 0)
		return -2;
	if (write(fds[1], input, strlen(input)) != (ssize_t)strlen(input))
		return -2;
	close(fds[1]);
	dup2(fds[0], 0);
	dup2(devnull, 2);	/* the prompts */
	close(fds[0]);
	close(devnull);
	clearerr(stdin);
	r = login_prompt_code(code, size);
	fflush(stderr);
	dup2(saved_in, 0);
	dup2(saved_err, 2);
	close(saved_in);
	close(saved_err);
	clearerr(stdin);
	return r;
}

static void
prompt_takes_six_digits_with_spaces_and_refuses_more(void)
{
	char code[TOTP_DIGITS + 1];

	CHECK(prompt_with("123 456\n", code, sizeof(code)) == 0);
	CHECK_STR(code, "123456");
	CHECK(prompt_with("1234567\n12345a\n654321\n", code, sizeof(code)) == 0);
	CHECK_STR(code, "654321");
	CHECK(prompt_with("1\n2\n3\n", code, sizeof(code)) != 0);	/* three tries, then no more */
	CHECK(prompt_with("", code, sizeof(code)) != 0);
}

int
main(void)
{
	int r;

	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	TEST(device_key_round_trips_through_its_file_format);
	TEST(device_key_file_that_is_not_ours_or_damaged_is_refused);
	TEST(login_signature_verifies_over_the_message_the_relay_builds);
	TEST(invite_pin_is_base32_of_the_ca_text_hash);
	TEST(invite_must_be_code_dot_pin);
	TEST(home_is_created_private_with_private_files);
	TEST(home_write_replaces_the_whole_file_and_leaves_no_temporaries);
	TEST(home_read_refuses_a_key_others_may_read);
	TEST(status_without_a_session_exits_4);
	TEST(status_with_an_expired_session_exits_4);
	TEST(status_shows_user_relay_roles_and_expiry);
	TEST(status_warns_in_the_last_15_minutes);
	TEST(status_with_a_credential_file_missing_is_not_logged_in);
	TEST(logout_deletes_the_session_and_keeps_the_enrolment);
	TEST(login_before_enrolment_asks_for_an_invite);
	TEST(login_usage_errors_exit_2);
	TEST(login_to_an_unreachable_relay_exits_3);
	TEST(login_with_a_damaged_ca_file_says_to_enrol_again);
	TEST(a_second_run_does_not_interleave_with_the_first);
	TEST(prompt_takes_six_digits_with_spaces_and_refuses_more);
	r = CHECK_DONE();
	if (r == 0) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
		if (system(cmd) != 0)
			r = 1;
	}
	return r;
}
