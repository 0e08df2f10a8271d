/*
 * The cost of one policy call: on_query with lexing and classification of a 200-character
 * statement, through the same code posternd runs (policy_on_query), with a realistic
 * ten-rule policy. Prints the median and the 99th percentile over many calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy.h"

#define CALLS		200000
#define WARMUP		10000

/* The smallest policy: what the call itself costs (lexing, classifying, q, the Lua call). */
static const char trivial_text[] = "function on_query(s, q) return allow() end\n";

/* A realistic one. */
static const char policy_text[] =
    "local ro = { select = true, explain = true, set = true, tcl = true }\n"
    "local blocked = { secrets = true, ['public.secrets'] = true, payroll = true }\n"
    "function on_query(s, q)\n"
    "  if q.unterminated or q.ambiguous then return deny('malformed') end\n"
    "  if q.truncated then return deny('too long') end\n"
    "  if q.opaque and not s.roles.dba then return deny('opaque code') end\n"
    "  if (q.kinds.ddl or q.kinds.dcl) and not s.roles.dba then return deny('ddl needs dba') end\n"
    "  if q.where == false then return deny('needs WHERE') end\n"
    "  if q.explain_analyze and not s.roles.dba then return deny('no explain analyze') end\n"
    "  for _, t in ipairs(q.tables) do if blocked[t] then return deny('blocked table') end end\n"
    "  if q.kinds.delete then s.state.d = (s.state.d or 0) + 1; if s.state.d > 1000000 then return deny('rate') end end\n"
    "  if s.roles.readonly and not ro[q.kind] then return deny('read-only') end\n"
    "  if q.count > 20 then return deny('too many statements') end\n"
    "  return allow()\n"
    "end\n";

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double
bench(struct policy_session *s, const struct policy_query *q, const char *label)
{
	static double t[CALLS];
	char reason[POLICY_REASON_MAX];

	for (int i = 0; i < WARMUP; i++)
		if (policy_on_query(s, q, reason, sizeof(reason)) != POLICY_ALLOW) {
			fprintf(stderr, "unexpected verdict: %s\n", reason);
			exit(1);
		}
	for (int i = 0; i < CALLS; i++) {
		double t0 = now_ns();

		(void)policy_on_query(s, q, reason, sizeof(reason));
		t[i] = now_ns() - t0;
	}
	qsort(t, CALLS, sizeof(t[0]), cmp_double);
	printf("policy=%s statement_bytes=%zu calls=%d median_us=%.2f p99_us=%.2f\n", label, q->len, CALLS,
	    t[CALLS / 2] / 1000, t[CALLS * 99 / 100] / 1000);
	return t[CALLS / 2];
}

int
main(void)
{
	const char *roles[] = { "dev" };
	const char *sql = "SELECT o.id, o.customer_id, o.total, c.name, c.email FROM orders o JOIN customers c "
	    "ON c.id = o.customer_id WHERE o.created_at > now() - interval '7 days' AND o.status = 'paid' "
	    "ORDER BY o.total DESC LIMIT 50";
	struct policy_session s = {
		.id = "0123456789abcdef", .user = "alice", .target = "orders-db", .protocol = "postgres",
		.login = "app", .client_addr = "127.0.0.1:5555", .roles = roles, .nroles = 1,
		.policy_file = "bench.lua", .policy_source = policy_text, .policy_len = sizeof(policy_text) - 1,
		.config_generation = 1, .step_limit = 1000000, .mem_limit = 32u << 20,
	};
	struct policy_query q = { .text = sql, .len = strlen(sql) };

	s.policy_file = "trivial.lua";
	s.policy_source = trivial_text;
	s.policy_len = sizeof(trivial_text) - 1;
	(void)bench(&s, &q, "trivial");
	s.policy_file = "ten-rules.lua";
	s.policy_source = policy_text;
	s.policy_len = sizeof(policy_text) - 1;
	(void)bench(&s, &q, "ten-rules");
	return 0;
}
