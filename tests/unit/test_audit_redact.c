/* Unit tests of audit/redact.c: passwords never reach a recording, everything else does. */
#include <string.h>

#include "audit/redact.h"
#include "check.h"

static const char *
pg(const char *sql)
{
	static char out[1024];

	audit_redact_string(sql, strlen(sql), AUDIT_DIALECT_POSTGRES, out, sizeof(out));
	return out;
}

static const char *
my(const char *sql)
{
	static char out[1024];

	audit_redact_string(sql, strlen(sql), AUDIT_DIALECT_MYSQL, out, sizeof(out));
	return out;
}

static void
test_alter_role_password_is_redacted(void)
{
	CHECK_STR(pg("ALTER ROLE app PASSWORD 's3cret'"), "ALTER ROLE app PASSWORD '***'");
	CHECK_STR(pg("alter user app with encrypted password 'a''b'"), "alter user app with encrypted password '***'");
	CHECK_STR(pg("ALTER USER \"app\" PASSWORD 'SCRAM-SHA-256$4096:abc'"), "ALTER USER \"app\" PASSWORD '***'");
}

static void
test_create_role_keeps_what_follows_the_password(void)
{
	CHECK_STR(pg("CREATE ROLE app LOGIN PASSWORD 'pw' VALID UNTIL '2030-01-01'"),
	    "CREATE ROLE app LOGIN PASSWORD '***' VALID UNTIL '2030-01-01'");
}

static void
test_escape_and_dollar_quoted_passwords_are_redacted_whole(void)
{
	CHECK_STR(pg("ALTER ROLE a PASSWORD E'x\\'y'"), "ALTER ROLE a PASSWORD '***'");
	CHECK_STR(pg("ALTER ROLE a PASSWORD $$p'w$$"), "ALTER ROLE a PASSWORD '***'");
	CHECK_STR(pg("ALTER ROLE a PASSWORD $t$p$$w$t$; select 1"), "ALTER ROLE a PASSWORD '***'; select 1");
}

static void
test_standard_strings_end_at_the_quote_in_postgres(void)
{
	/* Backslash is not an escape in a standard string: the password is 'x\', then more text. */
	CHECK_STR(pg("ALTER ROLE a PASSWORD 'x\\' ; select 'visible'"), "ALTER ROLE a PASSWORD '***' ; select 'visible'");
}

static void
test_mysql_identified_by_is_redacted(void)
{
	CHECK_STR(my("CREATE USER 'bob'@'%' IDENTIFIED BY 'hunter2'"), "CREATE USER 'bob'@'%' IDENTIFIED BY '***'");
	CHECK_STR(my("ALTER USER bob IDENTIFIED WITH mysql_native_password BY 'p\\'w' REQUIRE SSL"),
	    "ALTER USER bob IDENTIFIED WITH mysql_native_password BY '***' REQUIRE SSL");
	CHECK_STR(my("CREATE USER a IDENTIFIED BY 'x', b IDENTIFIED BY \"y\""),
	    "CREATE USER a IDENTIFIED BY '***', b IDENTIFIED BY '***'");
	CHECK_STR(my("GRANT ALL ON *.* TO u IDENTIFIED BY PASSWORD '*ABCDEF'"), "GRANT ALL ON *.* TO u IDENTIFIED BY PASSWORD '***'");
}

static void
test_set_password_forms_are_redacted(void)
{
	CHECK_STR(my("SET PASSWORD = 'pw'"), "SET PASSWORD = '***'");
	CHECK_STR(my("SET PASSWORD FOR 'bob'@'localhost' = PASSWORD('pw')"), "SET PASSWORD FOR 'bob'@'localhost' = PASSWORD('***')");
	CHECK_STR(my("set password for bob = 'pw'"), "set password for bob = '***'");
}

static void
test_keywords_in_comments_and_strings_do_not_trigger(void)
{
	CHECK_STR(pg("select 'password' as x, 'kept'"), "select 'password' as x, 'kept'");
	CHECK_STR(pg("/* password */ select 'kept'"), "/* password */ select 'kept'");
	CHECK_STR(pg("-- identified by\nselect 'kept'"), "-- identified by\nselect 'kept'");
	CHECK_STR(pg("/* /* nested password */ */ select 'kept'"), "/* /* nested password */ */ select 'kept'");
}

static void
test_a_password_after_a_comment_is_still_found(void)
{
	CHECK_STR(pg("ALTER ROLE a /* hm */ PASSWORD /* x */ 'pw'"), "ALTER ROLE a /* hm */ PASSWORD /* x */ '***'");
	CHECK_STR(my("ALTER USER a IDENTIFIED BY # c\n 'pw'"), "ALTER USER a IDENTIFIED BY # c\n '***'");
}

static void
test_password_null_and_plain_statements_are_untouched(void)
{
	CHECK_STR(pg("ALTER ROLE a PASSWORD NULL"), "ALTER ROLE a PASSWORD NULL");
	CHECK_STR(pg("select * from t where name = 'x'"), "select * from t where name = 'x'");
	CHECK_STR(pg("set password_encryption = 'md5'"), "set password_encryption = 'md5'");
}

static void
test_a_column_named_password_is_redacted_too(void)
{
	/* Over-redaction is the safe side: a password column's value is a secret as well. */
	CHECK_STR(pg("update users set password = 'h' where id = 1"), "update users set password = '***' where id = 1");
}

static void
test_connection_string_passwords_are_redacted(void)
{
	CHECK_STR(pg("select dblink_connect('host=db user=u password=pw dbname=x')"),
	    "select dblink_connect('host=db user=u password=*** dbname=x')");
	CHECK_STR(pg("CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password 'pw')"),
	    "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'u', password '***')");
}

static void
test_unterminated_literal_is_redacted_to_the_end(void)
{
	CHECK_STR(pg("ALTER ROLE a PASSWORD 'pw and the rest"), "ALTER ROLE a PASSWORD '***'");
}

static void
test_many_passwords_beyond_the_span_limit_redact_the_rest(void)
{
	char sql[4096] = "", out[4096];
	size_t o = 0;

	for (int i = 0; i < AUDIT_REDACT_SPANS_MAX + 4; i++)
		o += (size_t)snprintf(sql + o, sizeof(sql) - o, "ALTER ROLE r%d PASSWORD 'pw%d';", i, i);
	audit_redact_string(sql, strlen(sql), AUDIT_DIALECT_POSTGRES, out, sizeof(out));
	CHECK(strstr(out, "pw") == NULL);
	CHECK(strncmp(out, "ALTER ROLE r0 PASSWORD '***';", 29) == 0);
}

static void
test_mysql_executable_comments_are_code(void)
{
	CHECK_STR(my("/*! ALTER USER u IDENTIFIED BY 'hunter2' */"), "/*! ALTER USER u IDENTIFIED BY '***' */");
	CHECK_STR(my("/*!50700 SET PASSWORD = 'hunter2' */"), "/*!50700 SET PASSWORD = '***' */");
	CHECK_STR(my("/*M! ALTER USER u IDENTIFIED BY 'hunter2' */"), "/*M! ALTER USER u IDENTIFIED BY '***' */");
}

static void
test_mysql_double_dash_needs_a_space_to_be_a_comment(void)
{
	CHECK_STR(my("SELECT 1--1; ALTER USER u IDENTIFIED BY 'hunter2'"), "SELECT 1--1; ALTER USER u IDENTIFIED BY '***'");
	CHECK_STR(my("SELECT 1 -- ALTER USER u IDENTIFIED BY 'x'"), "SELECT 1 -- ALTER USER u IDENTIFIED BY 'x'");
}

static void
test_mysql_hash_comment_ends_at_nul(void)
{
	static const char sql[] = "#\0\nALTER USER u IDENTIFIED BY 'hunter2'";
	char out[128];
	size_t n = audit_redact_string(sql, sizeof(sql) - 1, AUDIT_DIALECT_MYSQL, out, sizeof(out));

	CHECK(n == sizeof(sql) - 1 - strlen("hunter2") + 3);
	CHECK(memmem(out, n, "hunter2", 7) == NULL);
}

static void
test_quoted_connection_string_passwords_are_redacted(void)
{
	CHECK_STR(pg("select dblink_connect('host=db password=''hunter 2'' user=x')"),
	    "select dblink_connect('host=db password=*** user=x')");
}

static void
test_postgres_literal_continued_on_the_next_line_is_redacted_whole(void)
{
	CHECK_STR(pg("ALTER ROLE x PASSWORD 'abc'\n'def'"), "ALTER ROLE x PASSWORD '***'\n'***'");
	CHECK_STR(pg("ALTER ROLE x PASSWORD 'abc' VALID UNTIL 'infinity'"), "ALTER ROLE x PASSWORD '***' VALID UNTIL 'infinity'");
}

int
main(void)
{
	TEST(test_alter_role_password_is_redacted);
	TEST(test_create_role_keeps_what_follows_the_password);
	TEST(test_escape_and_dollar_quoted_passwords_are_redacted_whole);
	TEST(test_standard_strings_end_at_the_quote_in_postgres);
	TEST(test_mysql_identified_by_is_redacted);
	TEST(test_set_password_forms_are_redacted);
	TEST(test_keywords_in_comments_and_strings_do_not_trigger);
	TEST(test_a_password_after_a_comment_is_still_found);
	TEST(test_password_null_and_plain_statements_are_untouched);
	TEST(test_a_column_named_password_is_redacted_too);
	TEST(test_connection_string_passwords_are_redacted);
	TEST(test_unterminated_literal_is_redacted_to_the_end);
	TEST(test_many_passwords_beyond_the_span_limit_redact_the_rest);
	TEST(test_mysql_executable_comments_are_code);
	TEST(test_mysql_double_dash_needs_a_space_to_be_a_comment);
	TEST(test_mysql_hash_comment_ends_at_nul);
	TEST(test_quoted_connection_string_passwords_are_redacted);
	TEST(test_postgres_literal_continued_on_the_next_line_is_redacted_whole);
	return CHECK_DONE();
}
