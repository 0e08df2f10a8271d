/*
 * Cancel keys. The client gets posternd's own BackendKeyData (a random pid and secret); a
 * CancelRequest carrying them, on any worker, finds the session's libpq cancel object and
 * sends the real cancel to the target from a short-lived thread, since PQcancel blocks.
 * Cancels are rare; a list under a mutex is plenty.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "protocols/pg/session.h"
#include "relay/log.h"

struct pg_cancel_key {
	uint32_t pid, secret;
	PGcancel *cancel;		/* libpq's, for the target backend */
	int refs;			/* the session, and each cancel thread running */
	char sid[17];
	struct pg_cancel_key *next;
};

#define PG_CANCEL_THREADS_MAX	32	/* cancels in flight; more are refused (each blocks a thread) */

static pthread_mutex_t cancel_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pg_cancel_key *cancel_keys;
static int cancel_threads;		/* under cancel_mu */

static void
pg_cancel_key_unref(struct pg_cancel_key *k)
{
	bool last;

	pthread_mutex_lock(&cancel_mu);
	last = --k->refs == 0;
	pthread_mutex_unlock(&cancel_mu);
	if (last) {
		PQfreeCancel(k->cancel);
		free(k);
	}
}

void
pg_cancel_register(struct pg_session *p)
{
	struct pg_cancel_key *k = calloc(1, sizeof(*k));
	uint32_t rnd[2];

	/* A client answered from the parameter cache got its key before the target was connected. */
	if (p->key_pid == 0) {
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			memset(rnd, 0, sizeof(rnd));
		p->key_pid = (rnd[0] & 0x7fffffff) | 1;	/* positive, like a real pid */
		p->key_secret = rnd[1];
	}
	if (p->conn == NULL || k == NULL || (k->cancel = PQgetCancel(p->conn)) == NULL) {
		free(k);
		return;
	}
	k->pid = p->key_pid;
	k->secret = p->key_secret;
	k->refs = 1;
	memcpy(k->sid, p->s->idstr, sizeof(k->sid));
	pthread_mutex_lock(&cancel_mu);
	k->next = cancel_keys;
	cancel_keys = k;
	pthread_mutex_unlock(&cancel_mu);
}

void
pg_cancel_unregister(struct pg_session *p)
{
	struct pg_cancel_key **pp, *k = NULL;

	if (p->key_pid == 0)
		return;
	pthread_mutex_lock(&cancel_mu);
	for (pp = &cancel_keys; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->pid == p->key_pid && (*pp)->secret == p->key_secret) {
			k = *pp;
			*pp = k->next;
			break;
		}
	}
	pthread_mutex_unlock(&cancel_mu);
	p->key_pid = 0;
	if (k != NULL)
		pg_cancel_key_unref(k);
}

static void *
pg_cancel_thread(void *arg)
{
	struct pg_cancel_key *k = arg;
	char err[256];

	if (PQcancel(k->cancel, err, sizeof(err)))
		log_info("query cancel sent", "sid=%s", k->sid);
	else
		log_warn("query cancel failed", "sid=%s error=\"%.200s\"", k->sid, err);
	pthread_mutex_lock(&cancel_mu);
	cancel_threads--;
	pthread_mutex_unlock(&cancel_mu);
	pg_cancel_key_unref(k);
	return NULL;
}

void
pg_cancel_request(uint32_t pid, uint32_t secret, const char *client_addr)
{
	struct pg_cancel_key *k;
	pthread_attr_t attr;
	pthread_t th;

	pthread_mutex_lock(&cancel_mu);
	for (k = cancel_keys; k != NULL; k = k->next)
		if (k->pid == pid && k->secret == secret)
			break;
	if (k != NULL && cancel_threads >= PG_CANCEL_THREADS_MAX) {
		pthread_mutex_unlock(&cancel_mu);
		log_warn("cancel request refused: too many in flight", "client=%s", client_addr);
		return;
	}
	if (k != NULL) {
		k->refs++;
		cancel_threads++;
	}
	pthread_mutex_unlock(&cancel_mu);
	if (k == NULL) {
		log_warn("cancel request with an unknown key ignored", "client=%s", client_addr);
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, pg_cancel_thread, k) != 0) {
		pthread_mutex_lock(&cancel_mu);
		cancel_threads--;
		pthread_mutex_unlock(&cancel_mu);
		pg_cancel_key_unref(k);
	}
	pthread_attr_destroy(&attr);
}
