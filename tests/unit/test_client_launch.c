/*
 * Unit tests of postern ls, psql, env and connect that need no relay: the credential checks
 * every command makes first (and their exit statuses), the target list's cache and where a
 * target is reached, the quoting of connection strings and shell exports, postern connect's
 * rewriting of a PostgreSQL startup packet, its loopback-only binds and its lookup of who made
 * a local connection. The flows against a real posternd are in tests/integration/
 * test_launcher.py. The client files are compiled in here so their static helpers are in reach.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "client/connect.c"
#include "client/creds.c"
#include "client/home.c"
#include "client/https.c"
#include "client/launch.c"
#include "client/targets.c"
#include "tests/unit/check.h"
#include "tests/unit/capture.h"
#include "tests/unit/client_fixture.h"

/* A fresh POSTERN_HOME under the test root; the struct home for it. */
static void
fresh_home(const char *name, struct home *h)
{
	fresh_home_at(name, NULL, h);
}

/* A self-signed certificate valid until SECONDS from now and its key, as PEM, into CERT and KEY. */
static void
make_cert(long seconds, char *cert, size_t certlen, char *key, size_t keylen)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);
	BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
	char *data;
	long n;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), seconds);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"alice", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, k);
	CHECK(X509_sign(x, k, EVP_sha256()) > 0);
	CHECK(PEM_write_bio_X509(cb, x) == 1 && PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) == 1);
	n = BIO_get_mem_data(cb, &data);
	snprintf(cert, certlen, "%.*s", (int)n, data);
	n = BIO_get_mem_data(kb, &data);
	snprintf(key, keylen, "%.*s", (int)n, data);
	BIO_free(cb);
	BIO_free(kb);
	X509_free(x);
	EVP_PKEY_free(k);
}

/*
 * A logged-in home for alice at URL: a session ending in SESSION seconds, a certificate ending
 * in CERT seconds (also used as the CA: nothing here does a handshake).
 */
static void
put_login(const struct home *h, const char *url, long session, long cert)
{
	char text[512], pem[4096], key[4096];

	snprintf(text, sizeof(text), "{\"url\": \"%s\", \"user\": \"alice\", \"device_id\": \"d1\"}\n", url);
	put(h, HOME_RELAY, text);
	snprintf(text, sizeof(text), "{\"user\": \"alice\", \"roles\": [\"dev\"], \"serial\": 7, \"expires\": %lld, "
	    "\"relay\": \"%s\"}\n", (long long)time(NULL) + session, url);
	put(h, HOME_SESSION, text);
	make_cert(cert, pem, sizeof(pem), key, sizeof(key));
	put(h, HOME_CERT, pem);
	put(h, HOME_CA, pem);
	put(h, HOME_KEY, key);
}

/* A targets.json for alice's session (serial SERIAL) at URL, fetched AGE seconds ago. */
static void
put_targets(const struct home *h, const char *url, long serial, long age)
{
	char text[1024];

	snprintf(text, sizeof(text), "{\"url\": \"%s\", \"user\": \"alice\", \"serial\": %ld, \"fetched\": %lld, "
	    "\"reply\": {\"user\": \"alice\", \"targets\": [{\"name\": \"orders\", \"protocol\": \"postgres\", "
	    "\"login\": \"app\", \"role\": \"dev\"}, {\"name\": \"cache\", \"protocol\": \"tcp\", \"role\": \"dev\", "
	    "\"address\": \"0.0.0.0:17001\"}], \"relay\": {\"postgres\": \"0.0.0.0:5432\"}}}\n", url, serial,
	    (long long)time(NULL) - age);
	put(h, HOME_TARGETS, text);
}

/* ---- credentials ---- */

static void
no_home_is_not_logged_in_exit_4(void)
{
	struct creds c;

	setenv("POSTERN_HOME", "/nonexistent/postern-home", 1);
	CHECK(creds_load(&c, time(NULL), err, sizeof(err)) == POSTERN_EXIT_NOT_LOGGED_IN);
	CHECK_CONTAINS(err, "run postern login");
	creds_free(&c);
}

static void
home_without_a_session_says_run_postern_login(void)
{
	struct home h;
	struct creds c;

	fresh_home("nosession", &h);
	put(&h, HOME_RELAY, "{\"url\": \"https://relay:8443\", \"user\": \"alice\", \"device_id\": \"d1\"}\n");
	CHECK(creds_load(&c, time(NULL), err, sizeof(err)) == POSTERN_EXIT_NOT_LOGGED_IN);
	CHECK_STR(err, "not logged in; run postern login");
	creds_free(&c);
}

static void
expired_session_is_one_line_and_exit_4(void)
{
	struct home h;
	struct creds c;
	char *argv[] = { "psql", "orders", NULL };

	fresh_home("expired", &h);
	put_login(&h, "https://127.0.0.1:1", -60, 3600);
	CHECK(creds_load(&c, time(NULL), err, sizeof(err)) == POSTERN_EXIT_NOT_LOGGED_IN);
	CHECK_CONTAINS(err, "not logged in (credentials expired at ");
	creds_free(&c);
	/* Before anything touches the network: port 1 would say "unreachable". */
	CHECK(run_captured(launch_psql, 2, argv) == POSTERN_EXIT_NOT_LOGGED_IN);
	CHECK_CONTAINS(out, "postern: not logged in (credentials expired at ");
	CHECK_CONTAINS(out, "); run postern login\n");
	CHECK(strchr(out, '\n') == out + strlen(out) - 1);
}

static void
certificate_that_ends_before_the_session_counts(void)
{
	struct home h;
	struct creds c;

	fresh_home("certends", &h);
	put_login(&h, "https://127.0.0.1:1", 3600, -5);
	CHECK(creds_load(&c, time(NULL), err, sizeof(err)) == POSTERN_EXIT_NOT_LOGGED_IN);
	CHECK_CONTAINS(err, "credentials expired at");
	creds_free(&c);
}

static void
missing_key_is_an_incomplete_session(void)
{
	struct home h;
	struct creds c;
	bool existed;

	fresh_home("nokey", &h);
	put_login(&h, "https://127.0.0.1:1", 3600, 3600);
	CHECK(home_remove(&h, HOME_KEY, &existed, err, sizeof(err)) == 0 && existed);
	CHECK(creds_load(&c, time(NULL), err, sizeof(err)) == POSTERN_EXIT_NOT_LOGGED_IN);
	CHECK_CONTAINS(err, "key.pem is missing); run postern login");
	creds_free(&c);
}

static void
key_others_may_read_is_refused_exit_1(void)
{
	struct home h;
	struct creds c;
	char path[PATH_MAX];

	fresh_home("openkey", &h);
	put_login(&h, "https://127.0.0.1:1", 3600, 3600);
	CHECK(chmod(home_path(&h, HOME_KEY, path, sizeof(path)), 0644) == 0);
	CHECK(creds_load(&c, time(NULL), err, sizeof(err)) == POSTERN_EXIT_ERROR);
	CHECK_CONTAINS(err, "chmod 600");
	creds_free(&c);
}

static void
valid_credentials_give_absolute_paths(void)
{
	struct home h;
	struct creds c;
	char cwd[PATH_MAX];

	fresh_home("valid", &h);
	put_login(&h, "https://relay.example.com:8443", 3600, 7200);
	/* A relative POSTERN_HOME still gives psql and scripts paths that work from anywhere. */
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL && chdir(root) == 0);
	setenv("POSTERN_HOME", "valid", 1);
	CHECK(creds_load(&c, time(NULL), err, sizeof(err)) == POSTERN_EXIT_OK);
	CHECK(chdir(cwd) == 0);
	CHECK_STR(c.user, "alice");
	CHECK(c.serial == 7);
	CHECK(c.expires > time(NULL) + 3500 && c.expires <= time(NULL) + 3600);
	CHECK(c.key_path[0] == '/' && strstr(c.key_path, "/valid/key.pem") != NULL);
	CHECK_STR(c.url.host, "relay.example.com");
	creds_free(&c);
}

/* ---- targets ---- */

static void
fresh_cached_list_is_used_without_the_relay(void)
{
	struct home h;
	struct creds c;
	struct target t;
	json_t *doc = NULL;
	long age = -1;

	fresh_home("cache", &h);
	put_login(&h, "https://127.0.0.1:1", 3600, 3600);
	put_targets(&h, "https://127.0.0.1:1", 7, 5);
	CHECK(creds_load(&c, time(NULL), err, sizeof(err)) == 0);
	CHECK(targets_load(&c, 0, &doc, &age, err, sizeof(err)) == POSTERN_EXIT_OK);
	CHECK(age >= 5 && age < TARGETS_FRESH_SEC);
	CHECK(targets_find(&c, doc, "orders", &t, err, sizeof(err)) == POSTERN_EXIT_OK);
	CHECK_STR(t.protocol, "postgres");
	CHECK_STR(t.login, "app");
	json_decref(doc);
	creds_free(&c);
}

static void
stale_or_foreign_cache_goes_to_the_relay(void)
{
	struct home h;
	struct creds c;
	json_t *doc = NULL;
	long age = 0;

	fresh_home("stale", &h);
	put_login(&h, "https://127.0.0.1:1", 3600, 3600);
	CHECK(creds_load(&c, time(NULL), err, sizeof(err)) == 0);
	put_targets(&h, "https://127.0.0.1:1", 7, TARGETS_FRESH_SEC + 5);
	CHECK(targets_load(&c, 0, &doc, &age, err, sizeof(err)) == POSTERN_EXIT_UNREACHABLE);
	CHECK_CONTAINS(err, "cannot reach the relay at https://127.0.0.1:1");
	/* ls may show it, saying how old it is. */
	CHECK(targets_load(&c, TARGETS_REFRESH | TARGETS_STALE_OK, &doc, &age, err, sizeof(err)) == 0);
	CHECK(age >= TARGETS_FRESH_SEC);
	json_decref(doc);
	doc = NULL;
	/* Another session's list (another certificate serial) is never used. */
	put_targets(&h, "https://127.0.0.1:1", 8, 1);
	CHECK(targets_load(&c, TARGETS_OFFLINE, &doc, &age, err, sizeof(err)) == POSTERN_EXIT_ERROR);
	CHECK(doc == NULL);
	creds_free(&c);
}

static void
targets_are_reached_at_the_relay_urls_host(void)
{
	struct home h;
	struct creds c;
	struct target t;
	json_t *doc = NULL;
	long age;

	fresh_home("hosts", &h);
	put_login(&h, "https://relay.example.com:8443", 3600, 3600);
	put_targets(&h, "https://relay.example.com:8443", 7, 1);
	CHECK(creds_load(&c, time(NULL), err, sizeof(err)) == 0);
	CHECK(targets_load(&c, TARGETS_OFFLINE, &doc, &age, err, sizeof(err)) == 0);
	/* The front listens on 0.0.0.0:5432; the user reaches it under the relay's name. */
	CHECK(targets_find(&c, doc, "orders", &t, err, sizeof(err)) == 0);
	CHECK_STR(t.host, "relay.example.com");
	CHECK_STR(t.port, "5432");
	/* A tcp target has its own listener. */
	CHECK(targets_find(&c, doc, "cache", &t, err, sizeof(err)) == 0);
	CHECK_STR(t.port, "17001");
	CHECK(targets_find(&c, doc, "payroll", &t, err, sizeof(err)) == POSTERN_EXIT_NOT_ALLOWED);
	CHECK_CONTAINS(err, "\"payroll\" is not among the targets you may reach");
	json_decref(doc);
	creds_free(&c);
}

static void
addr_port_takes_the_last_colon(void)
{
	char port[8];

	CHECK(targets_addr_port("0.0.0.0:5432", port, sizeof(port)) == 0);
	CHECK_STR(port, "5432");
	CHECK(targets_addr_port("[::]:6432", port, sizeof(port)) == 0);
	CHECK_STR(port, "6432");
	CHECK(targets_addr_port("relay", port, sizeof(port)) != 0);
	CHECK(targets_addr_port("relay:0", port, sizeof(port)) != 0);
	CHECK(targets_addr_port("relay:65536", port, sizeof(port)) != 0);
	CHECK(targets_addr_port("relay:54x", port, sizeof(port)) != 0);
}

/* ---- commands ---- */

static void
ls_cached_lists_names_for_completion(void)
{
	struct home h;
	char *argv[] = { "ls", "--cached", "--names", NULL };

	fresh_home("names", &h);
	put_login(&h, "https://127.0.0.1:1", 3600, 3600);
	put_targets(&h, "https://127.0.0.1:1", 7, 3 * TARGETS_FRESH_SEC);
	CHECK(run_captured(launch_ls, 3, argv) == 0);
	CHECK_STR(out, "orders\ncache\n");
}

static void
ls_without_a_relay_shows_the_saved_list_with_a_warning(void)
{
	struct home h;
	char *argv[] = { "ls", NULL };

	fresh_home("lsstale", &h);
	put_login(&h, "https://127.0.0.1:1", 3600, 3600);
	put_targets(&h, "https://127.0.0.1:1", 7, 600);
	CHECK(run_captured(launch_ls, 1, argv) == 0);
	CHECK_CONTAINS(out, "warning: the relay cannot be reached; this list is the one it gave 10 minutes ago");
	CHECK_CONTAINS(out, "TARGET  PROTOCOL  LOGIN  ROLE  ADDRESS\n");
	CHECK_CONTAINS(out, "orders  postgres  app    dev   127.0.0.1:5432\n");
	CHECK_CONTAINS(out, "cache   tcp       -      dev   127.0.0.1:17001\n");
}

static void
env_prints_exports_a_shell_can_eval(void)
{
	struct home h;
	char *argv[] = { "env", "orders/reports", NULL };

	fresh_home("env it's", &h);
	put_login(&h, "https://127.0.0.1:1", 3600, 3600);
	put_targets(&h, "https://127.0.0.1:1", 7, 1);
	CHECK(run_captured(launch_env, 2, argv) == 0);
	CHECK_CONTAINS(out, "export PGHOST='127.0.0.1'\nexport PGPORT='5432'\nexport PGDATABASE='orders/reports'\n"
	    "export PGUSER='alice'\nexport PGSSLMODE='verify-full'\n");
	/* The home's quote is closed, escaped and reopened. */
	CHECK_CONTAINS(out, "/env it'\\''s/key.pem'\n");
}

static void
psql_and_env_refuse_a_tcp_target(void)
{
	struct home h;
	char *psql[] = { "psql", "cache", NULL };
	char *env[] = { "env", "cache", NULL };

	fresh_home("tcp", &h);
	put_login(&h, "https://127.0.0.1:1", 3600, 3600);
	put_targets(&h, "https://127.0.0.1:1", 7, 1);
	CHECK(run_captured(launch_psql, 2, psql) == POSTERN_EXIT_USAGE);
	CHECK_CONTAINS(out, "cache is a tcp target, not PostgreSQL; use postern connect to reach it");
	CHECK(run_captured(launch_env, 2, env) == POSTERN_EXIT_USAGE);
}

static void
unreachable_relay_exits_3(void)
{
	struct home h;
	char *ls[] = { "ls", NULL };
	char *psql[] = { "psql", "orders", NULL };

	fresh_home("down", &h);
	put_login(&h, "https://127.0.0.1:1", 3600, 3600);
	CHECK(run_captured(launch_ls, 1, ls) == POSTERN_EXIT_UNREACHABLE);
	CHECK_STR(out, "postern: cannot reach the relay at https://127.0.0.1:1: Connection refused; check the URL "
	    "and that the relay is up\n");
	CHECK(run_captured(launch_psql, 2, psql) == POSTERN_EXIT_UNREACHABLE);
}

static void
usage_errors_exit_2_and_help_exits_0(void)
{
	char *psql0[] = { "psql", NULL };
	char *psql_opt[] = { "psql", "-c", "select 1", NULL };
	char *env2[] = { "env", "a", "b", NULL };
	char *envbad[] = { "env", "no/", NULL };
	char *ls_bad[] = { "ls", "--long", NULL };
	char *conn0[] = { "connect", NULL };
	char *conn_port[] = { "connect", "orders", "--port", "70000", NULL };
	char *conn_bind[] = { "connect", "orders", "--bind", "0.0.0.0", NULL };
	char *conn_two[] = { "connect", "a", "b", NULL };
	char *help[] = { "x", "--help", NULL };

	CHECK(run_captured(launch_psql, 1, psql0) == POSTERN_EXIT_USAGE);
	CHECK(run_captured(launch_psql, 3, psql_opt) == POSTERN_EXIT_USAGE);
	CHECK_CONTAINS(out, "takes the TARGET first");
	CHECK(run_captured(launch_env, 3, env2) == POSTERN_EXIT_USAGE);
	CHECK(run_captured(launch_env, 2, envbad) == POSTERN_EXIT_USAGE);
	CHECK_CONTAINS(out, "is not a target name");
	CHECK(run_captured(launch_ls, 2, ls_bad) == POSTERN_EXIT_USAGE);
	CHECK(run_captured(connect_main, 1, conn0) == POSTERN_EXIT_USAGE);
	CHECK(run_captured(connect_main, 4, conn_port) == POSTERN_EXIT_USAGE);
	CHECK_CONTAINS(out, "--port takes a port number");
	CHECK(run_captured(connect_main, 4, conn_bind) == POSTERN_EXIT_USAGE);
	CHECK_CONTAINS(out, "listens on loopback only");
	CHECK(run_captured(connect_main, 3, conn_two) == POSTERN_EXIT_USAGE);
	help[0] = "ls";
	CHECK(run_captured(launch_ls, 2, help) == 0);
	CHECK_CONTAINS(out, "usage: postern ls");
	help[0] = "psql";
	CHECK(run_captured(launch_psql, 2, help) == 0);
	CHECK_CONTAINS(out, "usage: postern psql");
	help[0] = "env";
	CHECK(run_captured(launch_env, 2, help) == 0);
	CHECK_CONTAINS(out, "usage: postern env");
	help[0] = "connect";
	CHECK(run_captured(connect_main, 2, help) == 0);
	CHECK_CONTAINS(out, "usage: postern connect");
}

/* ---- quoting and names ---- */

static void
conninfo_and_shell_quoting_survive_quotes_and_backslashes(void)
{
	char q[64];

	CHECK(launch_pq_quote("a b", q, sizeof(q)) == 0);
	CHECK_STR(q, "'a b'");
	CHECK(launch_pq_quote("it's \\x", q, sizeof(q)) == 0);
	CHECK_STR(q, "'it\\'s \\\\x'");
	CHECK(launch_sh_quote("it's $HOME", q, sizeof(q)) == 0);
	CHECK_STR(q, "'it'\\''s $HOME'");
	CHECK(launch_sh_quote("0123456789", q, 8) != 0);
}

static void
target_spec_is_a_name_and_an_optional_database(void)
{
	CHECK(launch_spec_ok("orders"));
	CHECK(launch_spec_ok("orders-db.eu_1"));
	CHECK(launch_spec_ok("orders/reports"));
	CHECK(!launch_spec_ok(""));
	CHECK(!launch_spec_ok("/reports"));
	CHECK(!launch_spec_ok("orders/"));
	CHECK(!launch_spec_ok("ord ers"));
	CHECK(!launch_spec_ok("orders;rm"));
	CHECK(!launch_spec_ok("-c"));
}

/* ---- postern connect ---- */

/* A startup packet with the NULL-terminated name/value pairs KV, parsed into ST (over BUF). */
static size_t
startup_of(const char *const *kv, uint8_t *buf, size_t cap, struct pg_startup *st)
{
	size_t o = 8;

	for (size_t i = 0; kv[i] != NULL; i++) {
		memcpy(buf + o, kv[i], strlen(kv[i]) + 1);
		o += strlen(kv[i]) + 1;
	}
	buf[o++] = 0;
	buf[0] = 0;
	buf[1] = 0;
	buf[2] = (uint8_t)(o >> 8);
	buf[3] = (uint8_t)o;
	buf[4] = 0;
	buf[5] = 3;
	buf[6] = 0;
	buf[7] = 0;
	CHECK(o <= cap);
	CHECK(pg_startup_parse(buf, o, st, err, sizeof(err)) == 0);
	return o;
}

/* The value of NAME in the startup packet BUF[0..LEN), parsed again; "" when absent. */
static const char *
param_of(const uint8_t *buf, size_t len, const char *name, struct pg_startup *st)
{
	static char value[256];
	struct slice v;

	value[0] = '\0';
	if (pg_startup_parse(buf, len, st, err, sizeof(err)) != 0)
		return "(unparsable)";
	v = pg_startup_param(st, name);
	if (v.ptr != NULL)
		snprintf(value, sizeof(value), "%.*s", (int)v.len, (const char *)v.ptr);
	return value;
}

static void
startup_gets_the_target_as_database_and_keeps_the_rest(void)
{
	const char *const kv[] = { "user", "demo", "database", "appdb", "application_name", "DBeaver", "options",
	    "-c search_path=x", NULL };
	uint8_t in[512], outp[512];
	struct pg_startup st, st2;
	size_t n;

	startup_of(kv, in, sizeof(in), &st);
	n = connect_pg_startup_rewrite(&st, "orders", "orders", "alice", outp, sizeof(outp));
	CHECK(n > 8);
	CHECK_STR(param_of(outp, n, "database", &st2), "orders");
	CHECK_STR(param_of(outp, n, "user", &st2), "demo");
	CHECK_STR(param_of(outp, n, "application_name", &st2), "DBeaver");
	CHECK_STR(param_of(outp, n, "options", &st2), "-c search_path=x");
	CHECK(st2.protocol == PG_PROTOCOL_3_0 && st2.nparams == 4);
}

static void
startup_keeps_another_database_of_the_same_target_only(void)
{
	const char *const same[] = { "user", "demo", "database", "orders/reports", NULL };
	const char *const other[] = { "user", "demo", "database", "payroll/main", NULL };
	const char *const prefix[] = { "user", "demo", "database", "ordersX/main", NULL };
	uint8_t in[512], outp[512];
	struct pg_startup st, st2;
	size_t n;

	startup_of(same, in, sizeof(in), &st);
	n = connect_pg_startup_rewrite(&st, "orders", "orders", "alice", outp, sizeof(outp));
	CHECK_STR(param_of(outp, n, "database", &st2), "orders/reports");
	startup_of(other, in, sizeof(in), &st);
	n = connect_pg_startup_rewrite(&st, "orders", "orders/x", "alice", outp, sizeof(outp));
	CHECK_STR(param_of(outp, n, "database", &st2), "orders/x");
	startup_of(prefix, in, sizeof(in), &st);
	n = connect_pg_startup_rewrite(&st, "orders", "orders", "alice", outp, sizeof(outp));
	CHECK_STR(param_of(outp, n, "database", &st2), "orders");
}

static void
startup_without_database_or_user_gets_them(void)
{
	const char *const kv[] = { "user", "", "client_encoding", "UTF8", NULL };
	uint8_t in[512], outp[512];
	struct pg_startup st, st2;
	size_t n;

	startup_of(kv, in, sizeof(in), &st);
	n = connect_pg_startup_rewrite(&st, "orders", "orders", "alice", outp, sizeof(outp));
	CHECK_STR(param_of(outp, n, "database", &st2), "orders");
	CHECK_STR(param_of(outp, n, "user", &st2), "alice");
	CHECK_STR(param_of(outp, n, "client_encoding", &st2), "UTF8");
}

static void
startup_that_does_not_fit_is_refused(void)
{
	const char *const kv[] = { "user", "demo", NULL };
	uint8_t in[512], outp[32];
	struct pg_startup st;

	startup_of(kv, in, sizeof(in), &st);
	CHECK(connect_pg_startup_rewrite(&st, "orders", "orders-with-a-long-name", "alice", outp, sizeof(outp)) == 0);
}

static void
only_loopback_addresses_may_be_bound(void)
{
	CHECK(connect_is_loopback("127.0.0.1"));
	CHECK(connect_is_loopback("127.3.2.1"));
	CHECK(connect_is_loopback("::1"));
	CHECK(!connect_is_loopback("0.0.0.0"));
	CHECK(!connect_is_loopback("::"));
	CHECK(!connect_is_loopback("10.0.0.1"));
	CHECK(!connect_is_loopback("::ffff:10.0.0.1"));
	CHECK(!connect_is_loopback("localhost"));
}

static void
owner_of_a_local_connection_is_read_from_the_socket_table(void)
{
	char dir[256], path[300];
	struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(51234) };
	struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons(15432) };
	struct sockaddr_in other = { .sin_family = AF_INET, .sin_port = htons(40000) };
	FILE *f;
	uid_t uid = 0;

	inet_pton(AF_INET, "127.0.0.1", &peer.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &other.sin_addr);
	snprintf(dir, sizeof(dir), "%s/net", root);
	CHECK(mkdir(dir, 0700) == 0);
	/* As the kernel writes them on a little-endian host (the test builds the same on big-endian). */
	snprintf(path, sizeof(path), "%s/tcp", dir);
	f = fopen(path, "w");
	fprintf(f, "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
	{
		char a[64], b[64];

		CHECK(connect_proc_addr((struct sockaddr *)&local, false, a, sizeof(a)) == 0);
		fprintf(f, "   0: %s 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1\n", a);
		CHECK(connect_proc_addr((struct sockaddr *)&peer, false, a, sizeof(a)) == 0);
		CHECK(connect_proc_addr((struct sockaddr *)&local, false, b, sizeof(b)) == 0);
		fprintf(f, "   1: %s %s 01 00000000:00000000 00:00000000 00000000  1001        0 2 1\n", a, b);
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/tcp6", dir);
	f = fopen(path, "w");
	fprintf(f, "  sl  local_address                         remote_address                        st\n");
	{
		char a[64], b[64];

		CHECK(connect_proc_addr((struct sockaddr *)&other, true, a, sizeof(a)) == 0);
		CHECK(connect_proc_addr((struct sockaddr *)&local, true, b, sizeof(b)) == 0);
		fprintf(f, "   0: %s %s 01 00000000:00000000 00:00000000 00000000  1002        0 3 1\n", a, b);
	}
	fclose(f);
	CHECK(connect_peer_uid(dir, (struct sockaddr *)&peer, (struct sockaddr *)&local, &uid) == 0 && uid == 1001);
	/* A dual-stack client shows up in tcp6 with an IPv4-mapped address. */
	CHECK(connect_peer_uid(dir, (struct sockaddr *)&other, (struct sockaddr *)&local, &uid) == 0 && uid == 1002);
	/* Nobody listed: not "anybody". */
	other.sin_port = htons(40001);
	CHECK(connect_peer_uid(dir, (struct sockaddr *)&other, (struct sockaddr *)&local, &uid) != 0);
	{
		char a[64];

		CHECK(connect_proc_addr((struct sockaddr *)&local, false, a, sizeof(a)) == 0);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		CHECK_STR(a, "0100007F:3C48");
#endif
	}
}

int
main(void)
{
	int r;

	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	setenv("TZ", "UTC", 1);
	TEST(no_home_is_not_logged_in_exit_4);
	TEST(home_without_a_session_says_run_postern_login);
	TEST(expired_session_is_one_line_and_exit_4);
	TEST(certificate_that_ends_before_the_session_counts);
	TEST(missing_key_is_an_incomplete_session);
	TEST(key_others_may_read_is_refused_exit_1);
	TEST(valid_credentials_give_absolute_paths);
	TEST(fresh_cached_list_is_used_without_the_relay);
	TEST(stale_or_foreign_cache_goes_to_the_relay);
	TEST(targets_are_reached_at_the_relay_urls_host);
	TEST(addr_port_takes_the_last_colon);
	TEST(ls_cached_lists_names_for_completion);
	TEST(ls_without_a_relay_shows_the_saved_list_with_a_warning);
	TEST(env_prints_exports_a_shell_can_eval);
	TEST(psql_and_env_refuse_a_tcp_target);
	TEST(unreachable_relay_exits_3);
	TEST(usage_errors_exit_2_and_help_exits_0);
	TEST(conninfo_and_shell_quoting_survive_quotes_and_backslashes);
	TEST(target_spec_is_a_name_and_an_optional_database);
	TEST(startup_gets_the_target_as_database_and_keeps_the_rest);
	TEST(startup_keeps_another_database_of_the_same_target_only);
	TEST(startup_without_database_or_user_gets_them);
	TEST(startup_that_does_not_fit_is_refused);
	TEST(only_loopback_addresses_may_be_bound);
	TEST(owner_of_a_local_connection_is_read_from_the_socket_table);
	r = CHECK_DONE();
	if (r == 0) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
		if (system(cmd) != 0)
			r = 1;
	}
	return r;
}
