/*
 * Unit tests of the session registry: registration, listing, kill requests that cross to the
 * owning loop, and removal on free.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "relay/session.h"
#include "tests/unit/check.h"

static struct config *cfg;
static int killed;
static const char *killed_reason;

static void
fake_kill(struct session *s, const char *reason)
{
	killed++;
	killed_reason = reason;
	session_free(s);
}

static const struct session_ops fake_ops = { .kill = fake_kill };

static struct session *
make(struct event_base *base, const char *target)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(4242), .sin_addr.s_addr = htonl(0x7f000001) };

	return session_new(base, 0, cfg, CONFIG_PROTOCOL_TCP, target, (struct sockaddr *)&sin, &fake_ops, NULL);
}

static void
count_each(const struct session_info *info, void *arg)
{
	int *n = arg;

	CHECK(strlen(info->id) == 16);
	CHECK_STR(info->client_addr, "127.0.0.1:4242");
	CHECK(info->state == SESSION_STATE_HANDSHAKE || info->state == SESSION_STATE_ACTIVE);
	(*n)++;
}

static void
new_sessions_are_listed_with_unique_ids(void)
{
	struct event_base *base = event_base_new();
	struct session *a = make(base, "t1"), *b = make(base, "t2");
	int n = 0;

	CHECK(session_registry_count() == 2);
	CHECK(strcmp(a->idstr, b->idstr) != 0);
	session_set_state(b, SESSION_STATE_ACTIVE);
	session_count_up(b, 10);
	session_count_down(b, 20);
	session_registry_each(count_each, &n);
	CHECK(n == 2);
	session_free(a);
	session_free(b);
	CHECK(session_registry_count() == 0);
	event_base_loop(base, EVLOOP_NONBLOCK);	/* runs the deferred frees */
	event_base_free(base);
}

static void
kill_of_unknown_id_is_enoent(void)
{
	CHECK(session_registry_kill("0123456789abcdef", "x") == -ENOENT);
}

struct killer {
	char id[17];
	int r;
};

static void *
kill_from_other_thread(void *arg)
{
	struct killer *k = arg;

	k->r = session_registry_kill(k->id, "test kill");
	return NULL;
}

static void
kill_runs_on_the_owning_loop_with_the_reason(void)
{
	struct event_base *base = event_base_new();
	struct session *a = make(base, "t1"), *b = make(base, "t2");
	struct killer k;
	pthread_t th;

	killed = 0;
	memcpy(k.id, a->idstr, sizeof(k.id));
	pthread_create(&th, NULL, kill_from_other_thread, &k);
	pthread_join(th, NULL);
	CHECK(k.r == 0);
	CHECK(killed == 0);	/* nothing happens until the owner's loop runs */
	event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK(killed == 1);
	CHECK_STR(killed_reason, "test kill");
	CHECK(session_registry_count() == 1);
	CHECK(session_registry_kill_all("shutdown") == 1);
	event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK(killed == 2);
	CHECK_STR(killed_reason, "shutdown");
	CHECK(session_registry_count() == 0);
	(void)b;
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
}

int
main(void)
{
	char dir[] = "/tmp/postern-test-registry-XXXXXX", path[128], *errors = NULL;
	FILE *f;
	int r;

	evthread_use_pthreads();
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/c.lua", dir);
	f = fopen(path, "w");
	fputs("state_dir = 's'\n", f);
	fclose(f);
	if (config_load(path, &cfg, &errors) != 0) {
		printf("# %s\n", errors);
		return 1;
	}
	TEST(new_sessions_are_listed_with_unique_ids);
	TEST(kill_of_unknown_id_is_enoent);
	TEST(kill_runs_on_the_owning_loop_with_the_reason);
	config_unref(cfg);
	unlink(path);
	rmdir(dir);
	r = CHECK_DONE();
	return r;
}
