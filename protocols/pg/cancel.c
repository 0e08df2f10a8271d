/*
 * Cancel keys. The client gets posternd's own BackendKeyData (a random pid and secret); a
 * CancelRequest carrying them, on any worker, finds the session's libpq cancel object and
 * sends the real cancel to the target from a short-lived thread, since PQcancel blocks.
 * A session answered from the parameter cache (connect = "lazy") has its key before it has a
 * target: a cancel that comes meanwhile is kept pending and sent once the target is connected
 * and the client's first messages are on their way to it. Cancels are rare; a list under a
 * mutex is plenty.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "protocols/pg/session.h"
#include "relay/log.h"

struct pg_cancel_key {
	uint32_t pid, secret;
	PGcancel *cancel;		/* libpq's, for the target backend; NULL until it is connected */
	bool pending;			/* a cancel came while cancel was NULL */
	int refs;			/* the session, and each cancel thread running */
	char sid[17];
	struct pg_cancel_key *next;
};

#define PG_CANCEL_THREADS_MAX	32	/* cancels in flight; more are refused (each blocks a thread) */

static pthread_mutex_t cancel_mu = PTHREAD_MUTEX_INITIALIZER;
static struct pg_cancel_key *cancel_keys;
static int cancel_threads;		/* under cancel_mu */

static void *pg_cancel_thread(void *arg);

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

/* The entry for P's key, or NULL (under cancel_mu). */
static struct pg_cancel_key *
pg_cancel_find(uint32_t pid, uint32_t secret)
{
	for (struct pg_cancel_key *k = cancel_keys; k != NULL; k = k->next)
		if (k->pid == pid && k->secret == secret)
			return k;
	return NULL;
}

bool
pg_cancel_register(struct pg_session *p)
{
	struct pg_cancel_key *k, *fresh = NULL;
	PGcancel *cancel = NULL;
	uint32_t rnd[2];
	bool pending = false;

	if (p->key_pid == 0) {
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			memset(rnd, 0, sizeof(rnd));
		p->key_pid = (rnd[0] & 0x7fffffff) | 1;	/* positive, like a real pid */
		p->key_secret = rnd[1];
	}
	if (p->conn != NULL && (cancel = PQgetCancel(p->conn)) == NULL)
		return false;
	pthread_mutex_lock(&cancel_mu);
	if ((k = pg_cancel_find(p->key_pid, p->key_secret)) != NULL) {
		/* Registered when the client was answered from the cache: now it has its target. */
		if (k->cancel == NULL) {
			k->cancel = cancel;
			cancel = NULL;
			pending = k->pending;
			k->pending = false;
		}
	} else if ((fresh = calloc(1, sizeof(*fresh))) != NULL) {
		fresh->pid = p->key_pid;
		fresh->secret = p->key_secret;
		fresh->cancel = cancel;
		cancel = NULL;	/* transferred */
		fresh->refs = 1;
		memcpy(fresh->sid, p->s->idstr, sizeof(fresh->sid));
		fresh->next = cancel_keys;
		cancel_keys = fresh;
	}
	pthread_mutex_unlock(&cancel_mu);
	PQfreeCancel(cancel);
	return pending;
}

/* Send K's cancel from a thread of its own (PQcancel blocks); takes a reference. Under the
 * limit only; K->cancel must be set. */
static void
pg_cancel_spawn(struct pg_cancel_key *k, const char *client_addr)
{
	pthread_attr_t attr;
	pthread_t th;

	pthread_mutex_lock(&cancel_mu);
	if (cancel_threads >= PG_CANCEL_THREADS_MAX) {
		pthread_mutex_unlock(&cancel_mu);
		log_warn("cancel request refused: too many in flight", "client=%s", client_addr);
		return;
	}
	k->refs++;
	cancel_threads++;
	pthread_mutex_unlock(&cancel_mu);
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

void
pg_cancel_pending_send(struct pg_session *p)
{
	struct pg_cancel_key *k;

	pthread_mutex_lock(&cancel_mu);
	k = pg_cancel_find(p->key_pid, p->key_secret);
	pthread_mutex_unlock(&cancel_mu);
	/* Only this session's worker removes its entry, so K stays valid here. */
	if (k != NULL && k->cancel != NULL) {
		log_info("cancel request sent now that the target is connected", "sid=%s", p->s->idstr);
		pg_cancel_spawn(k, p->s->client_addr);
	}
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

	pthread_mutex_lock(&cancel_mu);
	if ((k = pg_cancel_find(pid, secret)) != NULL && k->cancel == NULL) {
		k->pending = true;
		pthread_mutex_unlock(&cancel_mu);
		log_info("cancel request kept until the target is connected", "sid=%s client=%s", k->sid, client_addr);
		return;
	}
	if (k != NULL)
		k->refs++;	/* held across the unlock; pg_cancel_spawn takes its own */
	pthread_mutex_unlock(&cancel_mu);
	if (k == NULL) {
		log_warn("cancel request with an unknown key ignored", "client=%s", client_addr);
		return;
	}
	pg_cancel_spawn(k, client_addr);
	pg_cancel_key_unref(k);
}
