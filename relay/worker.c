/*
 * The worker pool: one thread and one event_base per worker, sessions pinned to the worker
 * that accepted them. Hand-off is a short mutex-protected queue per worker plus a wakeup
 * event; the listener deals connections round robin.
 */
#include "relay/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "policy/policy.h"
#include "relay/io.h"
#include "relay/log.h"

struct worker_job {
	int fd;
	struct sockaddr_storage peer;
	struct config *cfg;		/* one reference, released after the accept */
	enum config_protocol protocol;
	char target[64];		/* "" for protocol fronts */
	struct worker_job *next;
};

struct worker {
	int index;
	pthread_t thread;
	struct event_base *base;
	struct event *wakeup;		/* activated from the listener thread */
	pthread_mutex_t lock;		/* protects queue */
	struct worker_job *queue, *queue_tail;
	bool started;
	atomic_bool stop;		/* set by worker_stop_all */
	int schedstat_fd;		/* this thread's /proc/thread-self/schedstat, or -1 */
	long long spare_checked;	/* ns, monotonic: when worker_core_spare last looked */
	long long waited;		/* ns this thread had waited for a CPU then */
	bool spare;			/* what it saw */
	int slice;			/* µs of the slice this thread last asked for; 0: none */
};

static struct worker *workers;
static int nworkers;
static unsigned next_worker;
static atomic_int busy_poll;		/* µs; 0: never poll */
static atomic_int worker_slice;		/* µs; 0: the kernel's default */
static worker_accept_fn accept_fns[CONFIG_PROTOCOL_SSH + 1];

void
worker_set_protocol(enum config_protocol protocol, worker_accept_fn fn)
{
	accept_fns[protocol] = fn;
}

int
worker_count(void)
{
	return nworkers;
}

static void
worker_wakeup(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct worker_job *job;

	pthread_mutex_lock(&w->lock);
	job = w->queue;
	w->queue = w->queue_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	while (job != NULL) {
		struct worker_job *next = job->next;
		const struct config_target *t = job->target[0] ? config_target_find(job->cfg, job->target) : NULL;

		if ((job->target[0] && t == NULL) || accept_fns[job->protocol] == NULL) {
			/* The target went away in a reload between accept and now. */
			log_warn("connection refused", "target=%s reason=\"target no longer configured\"", job->target);
			close(job->fd);
		} else {
			accept_fns[job->protocol](w->base, w->index, job->fd, (struct sockaddr *)&job->peer, job->cfg, t);
		}
		config_unref(job->cfg);
		free(job);
		job = next;
	}
}

/*
 * Busy polling. A worker that sleeps in epoll_wait is woken for each message that arrives,
 * and a wakeup costs 10-20 µs on a virtual machine: twice per relayed round trip (the request
 * in, the reply back). So after work a worker polls its loop without sleeping, for up to
 * busy_poll µs, as long as it does not take a core someone else wants: it looks at its own
 * thread's time spent waiting for a CPU (the second field of /proc/thread-self/schedstat)
 * at most once per millisecond, and while that waiting is over 1/WORKER_CONTENDED of the
 * time since the last look, the cores are busy and the worker sleeps at once, as it always
 * did. Polling then costs only the look.
 */
#define WORKER_SPARE_CHECK_NS	1000000LL
#define WORKER_CONTENDED	32

static long long
worker_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static bool
worker_core_spare(struct worker *w, long long now)
{
	char buf[128], *p;
	ssize_t n;
	long long waited;

	if (now - w->spare_checked < WORKER_SPARE_CHECK_NS)
		return w->spare;
	/* "run_ns wait_ns timeslices" */
	if ((n = pread(w->schedstat_fd, buf, sizeof(buf) - 1, 0)) <= 0)
		return w->spare = false;
	buf[n] = '\0';
	if ((p = strchr(buf, ' ')) == NULL)
		return w->spare = false;
	waited = strtoll(p + 1, NULL, 10);
	w->spare = (waited - w->waited) * WORKER_CONTENDED < now - w->spare_checked;
	w->waited = waited;
	w->spare_checked = now;
	return w->spare;
}

/*
 * The scheduler slice. A worker relays for many sessions: while it waits for a CPU, or is
 * preempted just after a write woke the process it wrote to (a backend, a client), every one
 * of its sessions waits. Linux's EEVDF scheduler (6.12 and later) lets a thread ask for a
 * shorter slice than its default (sched_attr.sched_runtime for SCHED_OTHER, 0.1 to 100 ms):
 * its deadline comes sooner, so it runs sooner when woken and is preempted less by the tasks
 * it wakes. Its share of the CPU stays what it was. Older kernels ignore the field.
 */
struct worker_sched_attr {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
	uint32_t sched_util_min, sched_util_max;
};

#define WORKER_SCHED_OTHER	0
#define WORKER_SCHED_BATCH	3

static void
worker_apply_slice(struct worker *w, int us)
{
	struct worker_sched_attr a;

	w->slice = us;
	/* Only a fair thread's slice: a worker an operator made real-time (chrt, systemd's
	 * CPUSchedulingPolicy) or idle keeps its policy; policy, nice and flags stay as they are. */
	memset(&a, 0, sizeof(a));
	if (syscall(SYS_sched_getattr, 0, &a, sizeof(a), 0) != 0 ||
	    (a.sched_policy != WORKER_SCHED_OTHER && a.sched_policy != WORKER_SCHED_BATCH)) {
		log_debug("worker slice left alone", "worker=%d policy=%u", w->index, a.sched_policy);
		return;
	}
	a.size = sizeof(a);
	a.sched_runtime = (uint64_t)us * 1000u;	/* 0: the kernel's default slice */
	if (syscall(SYS_sched_setattr, 0, &a, 0) != 0)
		log_debug("worker slice not set", "worker=%d slice_us=%d errno=%d", w->index, us, errno);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "pst-worker-%d", w->index);
	(void)pthread_setname_np(pthread_self(), name);
	w->slice = 0;	/* the kernel's default: a worker_slice of 0 never calls sched_setattr */

	/* Without it, no busy polling: the worker could not tell whether it takes a wanted core. */
	w->schedstat_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	/* Not event_base_got_break(): each event_base_loop() call forgets an earlier loopbreak. */
	while (!atomic_load(&w->stop)) {
		unsigned long seen = io_activity();
		int poll_us = atomic_load_explicit(&busy_poll, memory_order_relaxed);
		long long now;

		if (w->slice != atomic_load_explicit(&worker_slice, memory_order_relaxed))
			worker_apply_slice(w, atomic_load(&worker_slice));
		if (poll_us > 0 && w->schedstat_fd >= 0 && worker_core_spare(w, now = worker_now_ns())) {
			long long until = now + poll_us * 1000LL;

			do
				event_base_loop(w->base, EVLOOP_NONBLOCK);
			while (io_activity() == seen && !atomic_load(&w->stop) && worker_now_ns() < until);
			/* Work, or a stop whose wakeup the polling ran: the loop must not sleep now. */
			if (io_activity() != seen || atomic_load(&w->stop))
				continue;
		}
		event_base_loop(w->base, EVLOOP_ONCE | EVLOOP_NO_EXIT_ON_EMPTY);
	}
	if (w->schedstat_fd >= 0)
		close(w->schedstat_fd);
	policy_thread_end();
	return NULL;
}

void
worker_set_busy_poll(int us)
{
	atomic_store(&busy_poll, us);
}

void
worker_set_slice(int us)
{
	if (atomic_exchange(&worker_slice, us) == us)
		return;
	/* A sleeping worker takes the new value when it wakes: wake it now. */
	for (int i = 0; i < nworkers; i++)
		if (workers[i].started)
			event_active(workers[i].wakeup, EV_TIMEOUT, 0);
}

int
worker_start_all(int n)
{
	workers = calloc((size_t)n, sizeof(*workers));
	if (workers == NULL)
		return -1;
	nworkers = n;
	for (int i = 0; i < n; i++) {
		struct worker *w = &workers[i];

		w->index = i;
		pthread_mutex_init(&w->lock, NULL);
		if ((w->base = event_base_new()) == NULL ||
		    (w->wakeup = event_new(w->base, -1, EV_PERSIST, worker_wakeup, w)) == NULL)
			return -1;
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			return -1;
		w->started = true;
	}
	return 0;
}

void
worker_dispatch(int fd, const struct sockaddr *peer, socklen_t peerlen, struct config *cfg,
    enum config_protocol protocol, const char *target_name)
{
	struct worker_job *job;
	struct worker *w;

	/* Round robin: sessions are long and similar; the kernel already spreads them evenly. */
	w = &workers[next_worker++ % (unsigned)nworkers];
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		close(fd);
		log_error("connection refused", "reason=\"out of memory\"");
		return;
	}
	job->fd = fd;
	if (peerlen > sizeof(job->peer))
		peerlen = sizeof(job->peer);
	memcpy(&job->peer, peer, peerlen);
	job->cfg = config_ref(cfg);
	job->protocol = protocol;
	snprintf(job->target, sizeof(job->target), "%s", target_name ? target_name : "");
	pthread_mutex_lock(&w->lock);
	if (w->queue_tail != NULL)
		w->queue_tail->next = job;
	else
		w->queue = job;
	w->queue_tail = job;
	pthread_mutex_unlock(&w->lock);
	event_active(w->wakeup, EV_TIMEOUT, 0);
}

void
worker_stop_all(void)
{
	/* The active wakeup event ends the loop's wait even if it is not in event_base_loop now. */
	for (int i = 0; i < nworkers; i++)
		if (workers[i].started) {
			atomic_store(&workers[i].stop, true);
			event_active(workers[i].wakeup, EV_TIMEOUT, 0);
		}
	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];

		if (!w->started)
			continue;
		pthread_join(w->thread, NULL);
		/* Run what is still due, such as the frees sessions scheduled one loop later. */
		event_base_loop(w->base, EVLOOP_NONBLOCK);
		/* Jobs never picked up: close their sockets. */
		for (struct worker_job *job = w->queue, *next; job != NULL; job = next) {
			next = job->next;
			close(job->fd);
			config_unref(job->cfg);
			free(job);
		}
		event_free(w->wakeup);
		event_base_free(w->base);
		pthread_mutex_destroy(&w->lock);
	}
	free(workers);
	workers = NULL;
	nworkers = 0;
}
