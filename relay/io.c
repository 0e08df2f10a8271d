/*
 * The I/O table: what every transport shares. Bytes move between two ios by handing evbuffer
 * chains from one to the other (evbuffer_add_buffer), so the relay copies nothing beyond the
 * kernel's read and write (and, for TLS, the cipher); only pieces under IO_COPY_MAX are
 * copied, into the free end of a chain already queued, so that trickling input cannot pile up
 * mostly-empty chains.
 *
 * Both transports drive the socket themselves, an event per direction (io_tcp.c: recvmsg and
 * sendmsg; io_tls.c: SSL_read and SSL_write). Reads fill the input evbuffer in place
 * (evbuffer_reserve_space), in blocks that grow to IO_READ_MAX while reads come back full.
 * Writes go out before the worker waits again, and without waiting for the socket to be
 * reported writable: bytes queued inside an io callback when that callback returns (so that
 * the messages a protocol forwards one by one in a callback leave in one write, and over TLS
 * in one record), bytes queued anywhere else at once. The socket's write event is armed only
 * while the kernel's buffer is full. libevent 2.1's bufferevents did neither: its socket
 * bufferevent reads 4 KiB per wakeup, its OpenSSL one a record, and both write only on the
 * loop turn after the write was asked for (epoll_ctl to add EPOLLOUT, epoll_wait, write,
 * epoll_ctl to remove it: three system calls and a loop turn per forwarded message).
 */
#include "relay/io_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

/* Forwarded pieces smaller than this are copied onto the end of a non-empty output. */
#define IO_COPY_MAX		2048u
/* Chains looked at per round when copying a small piece. */
#define IO_COPY_IOV		4

void
io_set_error(struct io *io, const char *what, int err)
{
	if (err != 0)
		snprintf(io->error, sizeof(io->error), "%s: %s", what, strerror(err));
	else
		snprintf(io->error, sizeof(io->error), "%s", what);
}

void
io_set_tls_error(struct io *io, const char *what, unsigned long e)
{
	char buf[96];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(io->error, sizeof(io->error), "%s: TLS: %s", what, buf);
}

/* --- callbacks, and the writes they queue -------------------------------------------------- */

/*
 * While an io callback runs, an io that gets bytes to send goes on this list instead of
 * writing at once, and the list is flushed when the callback returns: a protocol that forwards
 * a reply message by message (PostgreSQL's RowDescription, DataRows, CommandComplete,
 * ReadyForQuery) sends it in one write, as PgBouncer does after a read. Per worker thread,
 * since each worker runs its own loop; callbacks do not nest (never from inside an io_* call).
 */
static _Thread_local struct io *io_corked;
static _Thread_local unsigned io_cb_depth;
static _Thread_local unsigned long io_callbacks;	/* for io_activity() */

static void
io_kick(struct io *io)
{
	if (io->ops == &io_ops_tcp)
		io_tcp_kick(io);
	else
		io_tls_kick(io);
}

static void
io_out_added(struct io *io)
{
	if (io_cb_depth == 0) {
		io_kick(io);
		return;
	}
	if (!io->sock.corked) {
		io->sock.corked = true;
		io->sock.cork_next = io_corked;
		io_corked = io;
	}
}

void
io_uncork(struct io *io)
{
	struct io **p;

	if (!io->sock.corked)
		return;
	for (p = &io_corked; *p != NULL; p = &(*p)->sock.cork_next) {
		if (*p == io) {
			*p = io->sock.cork_next;
			break;
		}
	}
	io->sock.corked = false;
	io->sock.cork_next = NULL;
}

void
io_flush(struct io *io)
{
	io_uncork(io);
	io_kick(io);
}

static void
io_cb_begin(void)
{
	io_cb_depth++;
	io_callbacks++;
}

unsigned long
io_activity(void)
{
	return io_callbacks;
}

/* A callback returned: send what it queued (kicks call nothing back, so the list holds). */
static void
io_cb_end(void)
{
	struct io *io;

	if (--io_cb_depth != 0)
		return;
	while ((io = io_corked) != NULL) {
		io_corked = io->sock.cork_next;
		io->sock.corked = false;
		io->sock.cork_next = NULL;
		io_kick(io);
	}
}

void
io_call_read(struct io *io)
{
	if (io->cb.on_read == NULL)
		return;
	io_cb_begin();
	io->cb.on_read(io, io->arg);	/* may free IO */
	io_cb_end();
}

void
io_call_drain(struct io *io)
{
	io->sock.drain_armed = false;
	if (io->cb.on_drain == NULL)
		return;
	io_cb_begin();
	io->cb.on_drain(io, io->arg);
	io_cb_end();
}

void
io_call_event(struct io *io, enum io_event ev)
{
	if (io->cb.on_event == NULL)
		return;
	io_cb_begin();
	io->cb.on_event(io, ev, io->arg);
	io_cb_end();
}

/* --- the buffer calls, the same over TCP and TLS ---------------------------------------- */

size_t
io_buf_readable(struct io *io)
{
	return evbuffer_get_length(io->in);
}

size_t
io_buf_peek(struct io *io, void *buf, size_t len)
{
	ev_ssize_t n = evbuffer_copyout(io->in, buf, len);

	return n < 0 ? 0 : (size_t)n;
}

const uint8_t *
io_buf_pullup(struct io *io, size_t len)
{
	if (evbuffer_get_length(io->in) < len)
		return NULL;
	return evbuffer_pullup(io->in, (ev_ssize_t)len);
}

size_t
io_buf_recv(struct io *io, void *buf, size_t len)
{
	int n = evbuffer_remove(io->in, buf, len);

	return n < 0 ? 0 : (size_t)n;
}

void
io_buf_skip(struct io *io, size_t len)
{
	evbuffer_drain(io->in, len);
}

int
io_buf_send(struct io *io, const void *buf, size_t len)
{
	if (evbuffer_add(io->out, buf, len) != 0)
		return -ENOMEM;
	io_out_added(io);
	return 0;
}

/* Copy the first LEN bytes of IN onto the end of OUT, then drop them from IN. */
static size_t
io_copy_small(struct evbuffer *in, struct evbuffer *out, size_t len)
{
	struct evbuffer_iovec v[IO_COPY_IOV];
	size_t done = 0;

	while (done < len) {
		size_t round = 0;
		int n = evbuffer_peek(in, (ev_ssize_t)(len - done), NULL, v, IO_COPY_IOV);

		if (n <= 0)
			break;
		if (n > IO_COPY_IOV)
			n = IO_COPY_IOV;
		for (int i = 0; i < n && done + round < len; i++) {
			size_t take = v[i].iov_len < len - done - round ? v[i].iov_len : len - done - round;

			if (evbuffer_add(out, v[i].iov_base, take) != 0)
				break;
			round += take;
		}
		if (round == 0)
			break;
		evbuffer_drain(in, round);	/* after the adds: V points into IN's chains */
		done += round;
	}
	return done;
}

size_t
io_buf_forward(struct io *from, struct io *to, size_t len)
{
	size_t avail = evbuffer_get_length(from->in), moved;

	if (len == 0 || len > avail)
		len = avail;
	if (len == 0)
		return 0;
	if (len < IO_COPY_MAX && evbuffer_get_length(to->out) != 0) {
		moved = io_copy_small(from->in, to->out, len);
	} else if (len == avail) {
		/* Whole buffer: moves every chain, no copy. */
		if (evbuffer_add_buffer(to->out, from->in) != 0)
			return 0;
		moved = len;
	} else {
		int n = evbuffer_remove_buffer(from->in, to->out, len);

		moved = n < 0 ? 0 : (size_t)n;
	}
	if (moved > 0)
		io_out_added(to);
	return moved;
}

size_t
io_buf_unsent(struct io *io)
{
	size_t n = evbuffer_get_length(io->out);

	if (n > 0)
		io->sock.drain_armed = true;
	return n;
}

bool
io_backlogged(struct io *io, size_t limit)
{
	if (evbuffer_get_length(io->out) < limit)
		return false;
	io->sock.drain_armed = true;
	return true;
}

/* --- the socket under both transports ---------------------------------------------------- */

/* REV, WEV and DEV for FD with these callbacks; NULL-free on failure. */
static int
io_sock_events(struct io *io, struct event_base *base, int fd, event_callback_fn on_readable,
    event_callback_fn on_writable, event_callback_fn on_deferred, struct event *ev[3])
{
	ev[0] = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, io);
	ev[1] = event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, io);
	ev[2] = event_new(base, -1, 0, on_deferred, io);
	if (ev[0] != NULL && ev[1] != NULL && ev[2] != NULL)
		return 0;
	for (int i = 0; i < 3; i++)
		if (ev[i] != NULL)
			event_free(ev[i]);
	return -ENOMEM;
}

int
io_sock_init(struct io *io, struct event_base *base, int fd, event_callback_fn on_readable,
    event_callback_fn on_writable, event_callback_fn on_deferred)
{
	struct io_sock *s = &io->sock;
	struct event *ev[3];

	s->fd = fd;
	if (io->in == NULL && (io->in = evbuffer_new()) == NULL)
		return -ENOMEM;
	if (io->out == NULL && (io->out = evbuffer_new()) == NULL)
		return -ENOMEM;
	if (io_sock_events(io, base, fd, on_readable, on_writable, on_deferred, ev) != 0)
		return -ENOMEM;
	s->rev = ev[0];
	s->wev = ev[1];
	s->dev = ev[2];
	return 0;
}

int
io_sock_switch(struct io *io, event_callback_fn on_readable, event_callback_fn on_writable,
    event_callback_fn on_deferred)
{
	struct io_sock *s = &io->sock;
	struct event *ev[3];

	if (io_sock_events(io, event_get_base(s->rev), s->fd, on_readable, on_writable, on_deferred, ev) != 0)
		return -ENOMEM;
	io_sock_release(io, false);
	s->rev = ev[0];
	s->wev = ev[1];
	s->dev = ev[2];
	return 0;
}

void
io_sock_release(struct io *io, bool buffers)
{
	struct io_sock *s = &io->sock;

	if (s->alive != NULL)
		*s->alive = false;
	s->alive = NULL;
	io_uncork(io);
	if (s->rev != NULL)
		event_free(s->rev);
	if (s->wev != NULL)
		event_free(s->wev);
	if (s->dev != NULL)
		event_free(s->dev);
	s->rev = s->wev = s->dev = NULL;
	s->rev_on = s->wev_on = false;
	if (buffers) {
		if (io->in != NULL)
			evbuffer_free(io->in);
		if (io->out != NULL)
			evbuffer_free(io->out);
		io->in = io->out = NULL;
	}
}

void
io_sock_arm_read(struct io *io, bool want)
{
	struct io_sock *s = &io->sock;

	if (want == s->rev_on)
		return;
	if (want ? event_add(s->rev, NULL) == 0 : event_del(s->rev) == 0)
		s->rev_on = want;
}

void
io_sock_arm_write(struct io *io, bool want, const struct timeval *timeout)
{
	struct io_sock *s = &io->sock;

	if (want == s->wev_on && timeout == NULL)
		return;
	if (want ? event_add(s->wev, timeout) == 0 : event_del(s->wev) == 0)
		s->wev_on = want;
}

/* (DEV, not REV or WEV: libevent does not hand an event that is active to epoll when it is
 * added, so activating those by hand could lose their next readiness.) */
void
io_sock_defer(struct io *io)
{
	event_active(io->sock.dev, EV_WRITE, 1);
}

void
io_sock_release_reserve(struct io *io)
{
	/* evbuffer_drain frees all chains only when it drains bytes: give it one. */
	if (evbuffer_get_length(io->in) == 0 && evbuffer_add(io->in, "", 1) == 0)
		evbuffer_drain(io->in, 1);
}

void
io_sock_commit(struct io *io, struct evbuffer_iovec *v, int nv, size_t n)
{
	/* Hand back what the read used: the first vector, then the rest in the second. */
	if (n <= v[0].iov_len) {
		v[0].iov_len = n;
		nv = 1;
	} else {
		v[1].iov_len = n - v[0].iov_len;
	}
	evbuffer_commit_space(io->in, v, nv);
}

void
io_sock_next_read_size(struct io *io, size_t n, size_t space)
{
	struct io_sock *s = &io->sock;

	if (n >= space) {
		s->rsize = s->rsize >= IO_READ_MAX / 4 ? IO_READ_MAX : s->rsize * 4;
		return;
	}
	while (s->rsize > IO_READ_MIN && n < s->rsize / 4)
		s->rsize /= 2;
}

struct timeval
io_timeval(double seconds)
{
	struct timeval tv;

	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	return tv;
}

/* --- the rest of the API -------------------------------------------------------------------- */

void
io_set_limit(struct io *io, size_t limit)
{
	io->limit = limit;
	io->sock.low = limit / 2;
}

void
io_clear_timeout(struct io *io)
{
	if (io->ops == &io_ops_tls) {
		io_tls_clear_timeout(io);
		return;
	}
	/* Only a connect has a timeout (event_add without one would keep it). */
	if (io->sock.connecting && io->sock.wev_on && event_del(io->sock.wev) == 0)
		io->sock.wev_on = event_add(io->sock.wev, NULL) == 0;
}

int
io_fd(struct io *io)
{
	return io->sock.fd;
}

SSL *
io_ssl(struct io *io)
{
	return io->ops == &io_ops_tls ? io->tls.ssl : NULL;
}

const char *
io_error(struct io *io)
{
	return io->error[0] ? io->error : "unknown error";
}
