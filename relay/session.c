/*
 * Sessions and their registry. The registry is a list under one mutex: it changes once per
 * session start and end, and is read only by the admin socket, so a lock is cheaper than
 * anything cleverer. Kill requests cross threads through event_active(), which libevent makes
 * safe once evthread_use_pthreads() has run.
 */
#include "relay/session.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "audit/audit.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct session *registry_head;
static size_t registry_count;

static const char *const session_state_names[] = { "handshake", "connecting", "active", "closing" };

const char *
session_state_name(enum session_state state)
{
	if ((unsigned)state >= sizeof(session_state_names) / sizeof(session_state_names[0]))
		return "unknown";
	return session_state_names[state];
}

static void
session_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	const char *reason;

	pthread_mutex_lock(&registry_lock);
	reason = s->kill_reason ? s->kill_reason : "session ended by an administrator";
	pthread_mutex_unlock(&registry_lock);
	s->ops->kill(s, reason);
}

static uint64_t
session_new_id(void)
{
	uint64_t id = 0;

	while (id == 0) {
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			abort();	/* the kernel's CSPRNG failing is not something to run on */
	}
	return id;
}

struct session *
session_new(struct event_base *base, int worker, struct config *cfg,
    enum config_protocol protocol, const char *target_name, const struct sockaddr *client,
    const struct session_ops *ops, void *proto)
{
	struct session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->kill_ev = event_new(base, -1, 0, session_kill_cb, s)) == NULL) {
		free(s);
		return NULL;
	}
	s->id = session_new_id();
	snprintf(s->idstr, sizeof(s->idstr), "%016llx", (unsigned long long)s->id);
	s->protocol = protocol;
	snprintf(s->target, sizeof(s->target), "%s", target_name ? target_name : "");
	util_addr_format(client, s->client_addr, sizeof(s->client_addr));
	s->started = util_now_wall();
	atomic_init(&s->state, SESSION_STATE_HANDSHAKE);
	s->worker = worker;
	s->base = base;
	s->cfg = config_ref(cfg);
	s->ops = ops;
	s->proto = proto;

	pthread_mutex_lock(&registry_lock);
	s->reg_next = registry_head;
	if (registry_head != NULL)
		registry_head->reg_prev = s;
	registry_head = s;
	registry_count++;
	s->registered = true;
	pthread_mutex_unlock(&registry_lock);
	return s;
}

void
session_set_state(struct session *s, enum session_state state)
{
	atomic_store(&s->state, (int)state);
}

void
session_set_user(struct session *s, const char *user, uint64_t serial)
{
	pthread_mutex_lock(&registry_lock);
	snprintf(s->user, sizeof(s->user), "%s", user);
	s->serial = serial;
	pthread_mutex_unlock(&registry_lock);
}

static void
session_unregister(struct session *s)
{
	pthread_mutex_lock(&registry_lock);
	if (s->registered) {
		if (s->reg_prev != NULL)
			s->reg_prev->reg_next = s->reg_next;
		else
			registry_head = s->reg_next;
		if (s->reg_next != NULL)
			s->reg_next->reg_prev = s->reg_prev;
		registry_count--;
		s->registered = false;
	}
	pthread_mutex_unlock(&registry_lock);
}

static void
session_free_later(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	config_unref(s->cfg);
	free(s);
}

void
session_free(struct session *s)
{
	/* A front that did not close its recording leaves it here, still finished properly. */
	audit_session_close(s, "session ended");
	session_unregister(s);
	/* Unregistered: no thread can activate kill_ev any more, so it can go now. */
	event_free(s->kill_ev);
	s->kill_ev = NULL;
	if (event_base_once(s->base, -1, EV_TIMEOUT, session_free_later, s, NULL) != 0)
		session_free_later(-1, 0, s);
}

static void
session_info_fill(const struct session *s, struct session_info *info)
{
	memcpy(info->id, s->idstr, sizeof(info->id));
	info->protocol = s->protocol;
	memcpy(info->user, s->user, sizeof(info->user));
	info->serial = s->serial;
	memcpy(info->target, s->target, sizeof(info->target));
	memcpy(info->client_addr, s->client_addr, sizeof(info->client_addr));
	info->started = s->started;
	info->bytes_up = atomic_load_explicit(&s->bytes_up, memory_order_relaxed);
	info->bytes_down = atomic_load_explicit(&s->bytes_down, memory_order_relaxed);
	info->state = (enum session_state)atomic_load(&s->state);
	info->worker = s->worker;
}

void
session_registry_each(void (*fn)(const struct session_info *info, void *arg), void *arg)
{
	struct session_info info;

	pthread_mutex_lock(&registry_lock);
	for (struct session *s = registry_head; s != NULL; s = s->reg_next) {
		session_info_fill(s, &info);
		fn(&info, arg);
	}
	pthread_mutex_unlock(&registry_lock);
}

size_t
session_registry_kill_if(const char *(*pred)(const struct session_info *info, void *arg), void *arg)
{
	struct session_info info;
	const char *reason;
	size_t n = 0;

	pthread_mutex_lock(&registry_lock);
	for (struct session *s = registry_head; s != NULL; s = s->reg_next) {
		session_info_fill(s, &info);
		if ((reason = pred(&info, arg)) != NULL) {
			s->kill_reason = reason;
			event_active(s->kill_ev, EV_TIMEOUT, 0);
			n++;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return n;
}

size_t
session_registry_count(void)
{
	size_t n;

	pthread_mutex_lock(&registry_lock);
	n = registry_count;
	pthread_mutex_unlock(&registry_lock);
	return n;
}

int
session_registry_kill(const char *id, const char *reason)
{
	int r = -ENOENT;

	pthread_mutex_lock(&registry_lock);
	for (struct session *s = registry_head; s != NULL; s = s->reg_next) {
		if (strcmp(s->idstr, id) == 0) {
			s->kill_reason = reason;
			event_active(s->kill_ev, EV_TIMEOUT, 0);
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return r;
}

size_t
session_registry_kill_all(const char *reason)
{
	size_t n = 0;

	pthread_mutex_lock(&registry_lock);
	for (struct session *s = registry_head; s != NULL; s = s->reg_next, n++) {
		s->kill_reason = reason;
		event_active(s->kill_ev, EV_TIMEOUT, 0);
	}
	pthread_mutex_unlock(&registry_lock);
	return n;
}
