/*
 * Unit tests of posternd.lua evaluation: defaults, every kind of value, and that each error
 * names the file and the line that caused it.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay/config.h"
#include "tests/unit/check.h"

static char dir[] = "/tmp/postern-test-config-XXXXXX";

/* Write TEXT to DIR/NAME and return its path (static buffer). */
static const char *
write_config(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static char *
load_errors(const char *text)
{
	struct config *cfg = NULL;
	char *errors = NULL;

	if (config_load(write_config("bad.lua", text), &cfg, &errors) == 0) {
		config_unref(cfg);
		return NULL;
	}
	CHECK(cfg == NULL);
	return errors;
}

static void
minimal_config_gets_defaults(void)
{
	struct config *cfg = NULL;
	char *errors = NULL;

	CHECK(config_load(write_config("min.lua", "state_dir = \"state\"\n"), &cfg, &errors) == 0);
	if (cfg == NULL)
		return;
	CHECK_CONTAINS(cfg->state_dir, "/state");
	CHECK(cfg->state_dir[0] == '/');
	CHECK_CONTAINS(cfg->admin_socket, "/state/admin.sock");
	CHECK(cfg->workers == 0);
	CHECK(cfg->busy_poll == 100);
	CHECK(cfg->log_file == NULL);
	CHECK(cfg->log_level == LOG_LEVEL_INFO);
	CHECK(cfg->buffer_limit == 256u << 10);
	CHECK(cfg->ntargets == 0);
	config_unref(cfg);
}

static void
full_config_is_read_into_fields(void)
{
	struct config *cfg = NULL;
	char *errors = NULL;
	const struct config_target *t;

	chmod(write_config("pw", "secret\n"), 0600);
	CHECK(config_load(write_config("full.lua",
	    "node = 'relay-' .. 'a'\n"
	    "workers = 3\n"
	    "busy_poll = 0\n"
	    "state_dir = '/var/lib/postern'\n"
	    "admin_socket = 'admin.sock'\n"
	    "log_level = 'debug'\n"
	    "shutdown_grace = 2.5\n"
	    "buffer_limit = 65536\n"
	    "local base = 17000\n"
	    "for i = 1, 2 do\n"
	    "  target('echo' .. i) { protocol = 'tcp', listen = '127.0.0.1:' .. (base + i), address = '127.0.0.1:' .. base }\n"
	    "end\n"
	    "target 'pg' { protocol = 'postgres', address = 'localhost:5432', user = 'app', password_file = 'pw',\n"
	    "  database = 'appdb', sslmode = 'verify-full' }\n"
	    "target 'web1' { protocol = 'ssh', address = '[::1]:22', login = 'deploy' }\n"),
	    &cfg, &errors) == 0);
	if (cfg == NULL) {
		printf("# %s\n", errors);
		free(errors);
		return;
	}
	CHECK_STR(cfg->node, "relay-a");
	CHECK(cfg->workers == 3);
	CHECK(cfg->busy_poll == 0);
	CHECK_STR(cfg->state_dir, "/var/lib/postern");
	CHECK_CONTAINS(cfg->admin_socket, "/admin.sock");
	CHECK(cfg->log_level == LOG_LEVEL_DEBUG);
	CHECK(cfg->shutdown_grace == 2.5);
	CHECK(cfg->buffer_limit == 65536);
	CHECK(cfg->ntargets == 4);
	t = config_target_find(cfg, "echo2");
	CHECK(t != NULL && t->protocol == CONFIG_PROTOCOL_TCP);
	CHECK(t != NULL && strcmp(t->listen, "127.0.0.1:17002") == 0);
	t = config_target_find(cfg, "pg");
	CHECK(t != NULL && t->protocol == CONFIG_PROTOCOL_POSTGRES && t->line == 13);
	CHECK(t != NULL && t->password_file[0] == '/');
	CHECK(t != NULL && strcmp(t->sslmode, "verify-full") == 0);
	CHECK(t != NULL && t->password != NULL && strcmp(t->password, "secret") == 0);
	t = config_target_find(cfg, "web1");
	CHECK(t != NULL && t->addr.ss.ss_family == AF_INET6);
	CHECK(config_target_find(cfg, "nope") == NULL);
	config_unref(cfg);
}

static void
unknown_setting_names_its_line(void)
{
	char *e = load_errors("state_dir = 's'\n\nwokers = 2\n");

	CHECK_CONTAINS(e, "bad.lua:3: unknown setting \"wokers\"");
	free(e);
}

static void
syntax_error_names_its_line(void)
{
	char *e = load_errors("state_dir = 's'\nx = = 1\n");

	CHECK_CONTAINS(e, "bad.lua:2:");
	free(e);
}

static void
wrong_types_are_reported_with_what_is_expected(void)
{
	char *e = load_errors("state_dir = 's'\nworkers = 'two'\nlog_level = 'loud'\nbuffer_limit = 10\nbusy_poll = -1\n");

	CHECK_CONTAINS(e, "bad.lua:2: workers must be a whole number from 0 to 256");
	CHECK_CONTAINS(e, "bad.lua:3: log_level \"loud\" is not one of debug, info, warn, error");
	CHECK_CONTAINS(e, "bad.lua:4: buffer_limit must be a whole number");
	CHECK_CONTAINS(e, "bad.lua:5: busy_poll must be a whole number from 0 to 10000");
	free(e);
}

static void
target_errors_name_the_target_and_line(void)
{
	char *e = load_errors(
	    "state_dir = 's'\n"
	    "target 'a' { protocol = 'tcp', listen = '127.0.0.1:1', adress = 'x' }\n"
	    "target 'b' { protocol = 'gopher', address = '127.0.0.1:1' }\n"
	    "target 'c' { protocol = 'postgres', address = '127.0.0.1:99999', user = 'u' }\n"
	    "target 'a' { protocol = 'tcp', listen = '127.0.0.1:1', address = '127.0.0.1:2' }\n"
	    "target 'd'\n"
	    "target 'e' { protocol = 'postgres', address = '127.0.0.1:5432', user = 'u', password_file = '/nonexistent' }\n");

	CHECK_CONTAINS(e, "bad.lua:2: target \"a\": unknown field \"adress\"");
	CHECK_CONTAINS(e, "bad.lua:2: target \"a\": address is missing");
	CHECK_CONTAINS(e, "bad.lua:3: target \"b\": unknown protocol \"gopher\"");
	CHECK_CONTAINS(e, "bad.lua:4: target \"c\": address: address \"127.0.0.1:99999\" has no valid port");
	CHECK_CONTAINS(e, "bad.lua:5: target \"a\" is declared twice (first on line 2)");
	CHECK_CONTAINS(e, "bad.lua:5: target \"a\" listens on 127.0.0.1:1 like target \"a\"");
	CHECK_CONTAINS(e, "bad.lua:6: target \"d\" has no definition");
	CHECK_CONTAINS(e, "bad.lua:7: target \"e\": password_file: cannot read \"/nonexistent\"");
	free(e);
}

static void
postgres_target_takes_an_address_list_and_listen_table(void)
{
	struct config *cfg = NULL;
	char *errors = NULL;
	const struct config_target *t;

	CHECK(config_load(write_config("list.lua",
	    "state_dir = 's'\n"
	    "listen = { postgres = '127.0.0.1:15432' }\n"
	    "target 'pg' { protocol = 'postgres', address = '127.0.0.1:5432, 127.0.0.2:5433', user = 'u',\n"
	    "  target_session_attrs = 'read-write', sslmode = 'require' }\n"), &cfg, &errors) == 0);
	if (cfg == NULL) {
		printf("# %s\n", errors);
		free(errors);
		return;
	}
	t = config_target_find(cfg, "pg");
	CHECK(t != NULL && t->naddrs == 2);
	CHECK(t != NULL && strcmp(t->target_session_attrs, "read-write") == 0);
	CHECK(cfg->listen[CONFIG_PROTOCOL_POSTGRES] != NULL);
	config_unref(cfg);
}

static void
readable_password_file_is_refused(void)
{
	char *e;

	chmod(write_config("pw644", "x\n"), 0644);
	e = load_errors("state_dir = 's'\ntarget 'pg' { protocol = 'postgres', address = '127.0.0.1:1', user = 'u', password_file = 'pw644' }\n");
	CHECK_CONTAINS(e, "bad.lua:2: target \"pg\": password_file");
	CHECK_CONTAINS(e, "chmod 600");
	free(e);
}

static void
unknown_listen_protocol_is_an_error(void)
{
	char *e = load_errors("state_dir = 's'\nlisten = { gopher = '127.0.0.1:70' }\n");

	CHECK_CONTAINS(e, "bad.lua:2: listen: no front for protocol \"gopher\"");
	free(e);
}

static void
missing_state_dir_is_an_error(void)
{
	char *e = load_errors("node = 'x'\n");

	CHECK_CONTAINS(e, "state_dir is missing");
	free(e);
}

static void
sandbox_has_no_io_os_or_load(void)
{
	char *e;

	e = load_errors("state_dir = 's'\nio.open('/etc/passwd')\n");
	CHECK_CONTAINS(e, "bad.lua:2:");
	free(e);
	e = load_errors("state_dir = 's'\nos.execute('true')\n");
	CHECK_CONTAINS(e, "bad.lua:2:");
	free(e);
	e = load_errors("state_dir = 's'\nload('x=1')()\n");
	CHECK_CONTAINS(e, "bad.lua:2:");
	free(e);
	e = load_errors("state_dir = 's'\ndofile('/etc/passwd')\n");
	CHECK_CONTAINS(e, "bad.lua:2:");
	free(e);
	e = load_errors("state_dir = 's'\nrequire('os')\n");
	CHECK_CONTAINS(e, "bad.lua:2:");
	free(e);
}

static void
endless_loop_is_stopped_with_its_line(void)
{
	char *e = load_errors("state_dir = 's'\nwhile true do end\n");

	CHECK_CONTAINS(e, "bad.lua:2: script takes too long");
	free(e);
}

static void
memory_bomb_is_stopped(void)
{
	char *e = load_errors("local t = {}\nfor i = 1, 1e9 do t[i] = string.rep('x', 4096) .. i end\n");

	CHECK_CONTAINS(e, "too much memory");
	free(e);
}

static void
bytecode_is_refused(void)
{
	char *e = load_errors("\x1bLua\x54\x00garbage");

	CHECK(e != NULL);
	free(e);
}

static void
missing_file_is_one_clear_error(void)
{
	struct config *cfg = NULL;
	char *errors = NULL;

	CHECK(config_load("/nonexistent/posternd.lua", &cfg, &errors) != 0);
	CHECK_CONTAINS(errors, "cannot open /nonexistent/posternd.lua");
	free(errors);
}

static void
reference_counting_keeps_config_alive(void)
{
	struct config *cfg = NULL;
	char *errors = NULL;

	CHECK(config_load(write_config("ref.lua", "state_dir = 's'\n"), &cfg, &errors) == 0);
	if (cfg == NULL)
		return;
	config_ref(cfg);
	config_unref(cfg);
	CHECK(atomic_load(&cfg->refs) == 1);
	CHECK_CONTAINS(cfg->state_dir, "/s");
	config_unref(cfg);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	TEST(minimal_config_gets_defaults);
	TEST(full_config_is_read_into_fields);
	TEST(unknown_setting_names_its_line);
	TEST(syntax_error_names_its_line);
	TEST(wrong_types_are_reported_with_what_is_expected);
	TEST(target_errors_name_the_target_and_line);
	TEST(postgres_target_takes_an_address_list_and_listen_table);
	TEST(readable_password_file_is_refused);
	TEST(unknown_listen_protocol_is_an_error);
	TEST(missing_state_dir_is_an_error);
	TEST(sandbox_has_no_io_os_or_load);
	TEST(endless_loop_is_stopped_with_its_line);
	TEST(memory_bomb_is_stopped);
	TEST(bytecode_is_refused);
	TEST(missing_file_is_one_clear_error);
	TEST(reference_counting_keeps_config_alive);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
	return CHECK_DONE();
}
