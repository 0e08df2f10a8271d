/*
 * The I/O table. Bytes move between two ios by handing evbuffer chains from one to the other
 * (evbuffer_add_buffer), so the relay copies nothing beyond the kernel's read and write; only
 * pieces under IO_COPY_MAX are copied, into the free end of a chain already queued, so that
 * trickling input cannot pile up mostly-empty chains.
 *
 * Plain TCP drives its socket itself: an event per direction, reads into the input evbuffer
 * (evbuffer_reserve_space + recvmsg) whose size grows to IO_READ_MAX while the kernel fills
 * them, and writes of the output's chains with sendmsg, first at once from the io_* call that
 * queued them and then whenever the socket is writable. libevent 2.1's socket bufferevent
 * caps every read at 4 KiB (EVBUFFER_MAX_READ) with an ioctl per read and one read per
 * wakeup, which held the relay to a seventh of loopback speed.
 *
 * TLS stays on libevent's OpenSSL bufferevent: it reads one TLS record (at most 16 KiB) per
 * wakeup, and reading further behind its back (SSL_read, or OpenSSL's read-ahead) would leave
 * decrypted or buffered bytes it does not know about, so the TLS table only shares the buffer
 * calls.
 */
#include "relay/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

/* Reads: the first one on a connection is IO_READ_MIN bytes; a read the kernel fills makes the
 * next four times larger, up to IO_READ_MAX, and a read under a quarter of its size halves it,
 * so bulk streams get few large reads and an interactive one small chains. */
#define IO_READ_MIN		(4u << 10)
#define IO_READ_MAX		(256u << 10)
/* Bytes read per readiness before the loop serves other sockets. */
#define IO_READ_BUDGET		(1u << 20)
/* evbuffer rounds a new chain (its header included) up to a power of two: reserving
 * 2^n - IO_CHAIN_SLACK bytes takes one 2^n block. */
#define IO_CHAIN_SLACK		128u
/* Chains handed to one sendmsg. */
#define IO_WRITE_IOV		64
/* Forwarded pieces smaller than this are copied onto the end of a non-empty output. */
#define IO_COPY_MAX		2048u
/* Chains looked at per round when copying a small piece. */
#define IO_COPY_IOV		4

static const struct io_ops io_ops_tcp;
static const struct io_ops io_ops_tls;

static void
io_set_error(struct io *io, const char *what, int err)
{
	unsigned long e;

	if (io->bev != NULL && (e = bufferevent_get_openssl_error(io->bev)) != 0) {
		char buf[96];

		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(io->error, sizeof(io->error), "%s: TLS: %s", what, buf);
	} else if (err != 0) {
		snprintf(io->error, sizeof(io->error), "%s: %s", what, strerror(err));
	} else {
		snprintf(io->error, sizeof(io->error), "%s", what);
	}
}

/* --- the buffer calls, the same over TCP and TLS ---------------------------------------- */

static void io_out_added(struct io *io);

static size_t
io_buf_readable(struct io *io)
{
	return evbuffer_get_length(io->in);
}

static size_t
io_buf_peek(struct io *io, void *buf, size_t len)
{
	ev_ssize_t n = evbuffer_copyout(io->in, buf, len);

	return n < 0 ? 0 : (size_t)n;
}

static const uint8_t *
io_buf_pullup(struct io *io, size_t len)
{
	if (evbuffer_get_length(io->in) < len)
		return NULL;
	return evbuffer_pullup(io->in, (ev_ssize_t)len);
}

static size_t
io_buf_recv(struct io *io, void *buf, size_t len)
{
	int n = evbuffer_remove(io->in, buf, len);

	return n < 0 ? 0 : (size_t)n;
}

static void
io_buf_skip(struct io *io, size_t len)
{
	evbuffer_drain(io->in, len);
}

static int
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

static size_t
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

static size_t
io_buf_unsent(struct io *io)
{
	return evbuffer_get_length(io->out);
}

/* --- plain TCP --------------------------------------------------------------------------- */

static void
io_tcp_arm_read(struct io *io)
{
	bool want = io->tcp.reading && !io->tcp.eof && !io->tcp.connecting && !io->tcp.failed;

	if (want == io->tcp.rev_on)
		return;
	if (want ? event_add(io->tcp.rev, NULL) == 0 : event_del(io->tcp.rev) == 0)
		io->tcp.rev_on = want;
}

static void
io_tcp_arm_write(struct io *io, bool want, const struct timeval *timeout)
{
	if (want == io->tcp.wev_on && timeout == NULL)
		return;
	if (want ? event_add(io->tcp.wev, timeout) == 0 : event_del(io->tcp.wev) == 0)
		io->tcp.wev_on = want;
}

/* Report the end of the io's transport: no more reading or writing, then on_event. The
 * caller returns at once (the callback may have freed the io). */
static void
io_tcp_fail(struct io *io, enum io_event ev, const char *what, int err)
{
	io->tcp.failed = true;
	io_tcp_arm_read(io);
	io_tcp_arm_write(io, false, NULL);
	io_set_error(io, what, err);
	if (io->cb.on_event != NULL)
		io->cb.on_event(io, ev, io->arg);
}

/* Report an error found inside an io_* call from the loop instead. (DEV, not WEV: libevent
 * does not hand an event that is active to epoll when it is added.) */
static void
io_tcp_defer_error(struct io *io, int err)
{
	if (io->tcp.werr == 0)
		io->tcp.werr = err != 0 ? err : EIO;
	event_active(io->tcp.dev, EV_WRITE, 1);
}

/*
 * Send what the output holds, as far as the socket takes it; then wait for writability if
 * bytes are left, or half-close if asked and all is out. 0, or a negative errno.
 */
static int
io_tcp_flush(struct io *io, size_t *sent)
{
	struct evbuffer_iovec v[IO_WRITE_IOV];
	struct iovec iov[IO_WRITE_IOV];
	struct msghdr msg = { .msg_iov = iov };
	size_t total;
	ssize_t n;
	int nv;

	*sent = 0;
	while (evbuffer_get_length(io->out) > 0) {
		nv = evbuffer_peek(io->out, -1, NULL, v, IO_WRITE_IOV);
		if (nv > IO_WRITE_IOV)
			nv = IO_WRITE_IOV;
		total = 0;
		for (int i = 0; i < nv; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
			total += v[i].iov_len;
		}
		msg.msg_iovlen = (size_t)nv;
		/* MSG_NOSIGNAL: a peer that went away is an error to report, not a SIGPIPE. */
		n = sendmsg(io->tcp.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -errno;
		}
		evbuffer_drain(io->out, (size_t)n);
		*sent += (size_t)n;
		if ((size_t)n < total)
			break;		/* the socket buffer is full */
	}
	if (evbuffer_get_length(io->out) > 0) {
		io_tcp_arm_write(io, true, NULL);
		return 0;
	}
	io_tcp_arm_write(io, false, NULL);
	if (io->want_shutdown && !io->tcp.shut) {
		io->want_shutdown = false;
		io->tcp.shut = true;
		shutdown(io->tcp.fd, SHUT_WR);
	}
	return 0;
}

/* Bytes were queued: send them now if the socket may take them (no callback from here). */
static void
io_tcp_kick(struct io *io)
{
	size_t sent;
	int r;

	/* While WEV waits, the socket was full: the writable callback goes on from there. */
	if (io->tcp.connecting || io->tcp.failed || io->tcp.werr != 0 || io->tcp.wev_on)
		return;
	if ((r = io_tcp_flush(io, &sent)) < 0) {
		io_tcp_defer_error(io, -r);
		return;
	}
	if (sent > 0 && !io->tcp.wev_on && evbuffer_get_length(io->out) <= io->tcp.low && io->cb.on_drain != NULL) {
		io->tcp.drain_pending = true;
		event_active(io->tcp.dev, EV_WRITE, 1);
	}
}

static void
io_out_added(struct io *io)
{
	/* A bufferevent's output schedules its own writes. */
	if (io->ops == &io_ops_tcp)
		io_tcp_kick(io);
}

/* Drop an empty chain a read reserved and did not fill: an idle connection keeps nothing. */
static void
io_tcp_release_reserve(struct io *io)
{
	/* evbuffer_drain frees all chains only when it drains bytes: give it one. */
	if (evbuffer_get_length(io->in) == 0 && evbuffer_add(io->in, "", 1) == 0)
		evbuffer_drain(io->in, 1);
}

/* After a read of N bytes into SPACE: four times larger next time if the kernel filled it,
 * smaller while reads come back under a quarter full. */
static void
io_tcp_next_read_size(struct io *io, size_t n, size_t space)
{
	if (n >= space) {
		io->tcp.rsize = io->tcp.rsize >= IO_READ_MAX / 4 ? IO_READ_MAX : io->tcp.rsize * 4;
		return;
	}
	while (io->tcp.rsize > IO_READ_MIN && n < io->tcp.rsize / 4)
		io->tcp.rsize /= 2;
}

/* Read while the kernel fills the reads, up to IO_READ_BUDGET; on_read after each. */
static void
io_tcp_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;
	size_t budget = IO_READ_BUDGET;
	bool alive = true;

	io->tcp.alive = &alive;
	while (io->tcp.reading && !io->tcp.failed && !io->tcp.eof) {
		struct evbuffer_iovec v[2];
		struct iovec iov[2];
		struct msghdr msg = { .msg_iov = iov };
		size_t space = 0;
		ssize_t n;
		int nv = evbuffer_reserve_space(io->in, (ev_ssize_t)(io->tcp.rsize - IO_CHAIN_SLACK), v, 2);

		if (nv <= 0) {
			io->tcp.alive = NULL;
			io_tcp_fail(io, IO_EVENT_ERROR, "read failed", ENOMEM);
			return;
		}
		for (int i = 0; i < nv; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
			space += v[i].iov_len;
		}
		msg.msg_iovlen = (size_t)nv;
		n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : 0;

			io_tcp_release_reserve(io);
			io->tcp.alive = NULL;
			if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK))
				return;
			if (n == 0) {
				io->tcp.eof = true;
				io_tcp_arm_read(io);
				if (io->cb.on_event != NULL)
					io->cb.on_event(io, IO_EVENT_EOF, io->arg);
				return;
			}
			io_tcp_fail(io, IO_EVENT_ERROR, "read failed", err);
			return;
		}
		/* Hand back what the read used: the first vector, then the rest in the second. */
		if ((size_t)n <= v[0].iov_len) {
			v[0].iov_len = (size_t)n;
			nv = 1;
		} else {
			v[1].iov_len = (size_t)n - v[0].iov_len;
		}
		evbuffer_commit_space(io->in, v, nv);
		io_tcp_next_read_size(io, (size_t)n, space);
		if (io->cb.on_read != NULL) {
			io->cb.on_read(io, io->arg);
			if (!alive)
				return;		/* closed, or upgraded to TLS */
		}
		if ((size_t)n < space || budget <= (size_t)n)
			break;		/* the kernel had no more, or other sockets' turn */
		budget -= (size_t)n;
	}
	io->tcp.alive = NULL;
}

static int
io_so_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return errno;
	return err;
}

static void
io_tcp_on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;
	bool alive = true;
	size_t sent;
	int r;

	if (io->tcp.failed)
		return;
	if (io->tcp.connecting) {
		if (what & EV_TIMEOUT) {
			io_tcp_fail(io, IO_EVENT_TIMEOUT, "connect timed out", 0);
			return;
		}
		if ((r = io->tcp.werr != 0 ? io->tcp.werr : io_so_error(fd)) != 0) {
			io_tcp_fail(io, IO_EVENT_ERROR, "connect failed", r);
			return;
		}
		io->tcp.connecting = false;
		io_tcp_arm_write(io, false, NULL);	/* drops the connect timeout */
		io_tcp_arm_read(io);
		if (io->cb.on_event != NULL) {
			io->tcp.alive = &alive;
			io->cb.on_event(io, IO_EVENT_CONNECTED, io->arg);
			if (!alive)
				return;
			io->tcp.alive = NULL;
		}
		if (io->tcp.failed)
			return;
		/* Then send what was queued before or during the connect, and any half-close. */
	}
	if (io->tcp.werr != 0) {
		io_tcp_fail(io, IO_EVENT_ERROR, "write failed", io->tcp.werr);
		return;
	}
	if ((r = io_tcp_flush(io, &sent)) < 0) {
		io_tcp_fail(io, IO_EVENT_ERROR, "write failed", -r);
		return;
	}
	if ((sent > 0 || io->tcp.drain_pending) && evbuffer_get_length(io->out) <= io->tcp.low) {
		io->tcp.drain_pending = false;
		if (io->cb.on_drain != NULL)
			io->cb.on_drain(io, io->arg);
	}
}

/* What an io_* call left to report (an error, a drain, an immediate connect result): the same
 * steps as when the socket is writable. */
static void
io_tcp_on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;

	io_tcp_on_writable(io->tcp.fd, EV_WRITE, io);
}

static void
io_tcp_set_reading(struct io *io, bool on)
{
	io->tcp.reading = on;
	io_tcp_arm_read(io);
}

static void
io_tcp_shutdown_write(struct io *io)
{
	/* Never call back from here: the caller may be inside a callback of its own. */
	if (io->tcp.shut)
		return;
	io->want_shutdown = true;
	if (!io->tcp.connecting && !io->tcp.failed && evbuffer_get_length(io->out) == 0) {
		io->want_shutdown = false;
		io->tcp.shut = true;
		shutdown(io->tcp.fd, SHUT_WR);
	}
}

/* Free the TCP side (events, buffers), not the socket. */
static void
io_tcp_release(struct io *io)
{
	if (io->tcp.alive != NULL)
		*io->tcp.alive = false;
	io->tcp.alive = NULL;
	event_free(io->tcp.rev);
	event_free(io->tcp.wev);
	event_free(io->tcp.dev);
	evbuffer_free(io->in);
	evbuffer_free(io->out);
	io->tcp.rev = io->tcp.wev = io->tcp.dev = NULL;
	io->in = io->out = NULL;
}

static void
io_tcp_close(struct io *io)
{
	io_tcp_release(io);
	if (io->tcp.own_fd)
		close(io->tcp.fd);
	free(io);
}

static struct io *
io_tcp_wrap(struct event_base *base, int fd, bool own_fd, const struct io_callbacks *cb, void *arg)
{
	struct io *io;

	if ((io = calloc(1, sizeof(*io))) == NULL)
		return NULL;
	io->ops = &io_ops_tcp;
	io->cb = *cb;
	io->arg = arg;
	io->tcp.fd = fd;
	io->tcp.own_fd = own_fd;
	io->tcp.reading = true;
	io->tcp.rsize = IO_READ_MIN;
	io->in = evbuffer_new();
	io->out = evbuffer_new();
	io->tcp.rev = event_new(base, fd, EV_READ | EV_PERSIST, io_tcp_on_readable, io);
	io->tcp.wev = event_new(base, fd, EV_WRITE | EV_PERSIST, io_tcp_on_writable, io);
	io->tcp.dev = event_new(base, -1, 0, io_tcp_on_deferred, io);
	if (io->in == NULL || io->out == NULL || io->tcp.rev == NULL || io->tcp.wev == NULL || io->tcp.dev == NULL) {
		if (io->tcp.rev != NULL)
			event_free(io->tcp.rev);
		if (io->tcp.wev != NULL)
			event_free(io->tcp.wev);
		if (io->tcp.dev != NULL)
			event_free(io->tcp.dev);
		if (io->in != NULL)
			evbuffer_free(io->in);
		if (io->out != NULL)
			evbuffer_free(io->out);
		free(io);
		return NULL;
	}
	return io;
}

/* --- TLS (libevent's OpenSSL bufferevent) ------------------------------------------------ */

static void
io_bev_read(struct bufferevent *bev, void *ctx)
{
	struct io *io = ctx;

	if (io->cb.on_read != NULL)
		io->cb.on_read(io, io->arg);
}

static void
io_bev_write(struct bufferevent *bev, void *ctx)
{
	struct io *io = ctx;

	if (io->cb.on_drain != NULL)
		io->cb.on_drain(io, io->arg);
}

static void
io_bev_event(struct bufferevent *bev, short what, void *ctx)
{
	struct io *io = ctx;
	enum io_event ev;

	if (what & BEV_EVENT_CONNECTED) {
		ev = IO_EVENT_CONNECTED;
	} else if (what & BEV_EVENT_TIMEOUT) {
		io_set_error(io, (what & BEV_EVENT_READING) ? "timed out reading" : "timed out", 0);
		ev = IO_EVENT_TIMEOUT;
	} else if (what & BEV_EVENT_EOF) {
		ev = IO_EVENT_EOF;
	} else {
		io_set_error(io, (what & BEV_EVENT_READING) ? "read failed" : "write failed", EVUTIL_SOCKET_ERROR());
		ev = IO_EVENT_ERROR;
	}
	if (io->cb.on_event != NULL)
		io->cb.on_event(io, ev, io->arg);
}

static void
io_bev_set_reading(struct io *io, bool on)
{
	if (on)
		bufferevent_enable(io->bev, EV_READ);
	else
		bufferevent_disable(io->bev, EV_READ);
}

static void
io_tls_shutdown_write(struct io *io)
{
	/* TLS has no half-close that every peer honours; the session ends when both sides are done. */
	io->want_shutdown = false;
}

static void
io_bev_close(struct io *io)
{
	bufferevent_setcb(io->bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(io->bev, EV_READ | EV_WRITE);
	/* BEV_OPT_CLOSE_ON_FREE closes the socket and, for TLS, frees the SSL object. */
	bufferevent_free(io->bev);
	free(io);
}

static const struct io_ops io_ops_tcp = {
	.name = "tcp",
	.readable = io_buf_readable,
	.peek = io_buf_peek,
	.pullup = io_buf_pullup,
	.recv = io_buf_recv,
	.skip = io_buf_skip,
	.send = io_buf_send,
	.forward = io_buf_forward,
	.unsent = io_buf_unsent,
	.set_reading = io_tcp_set_reading,
	.shutdown_write = io_tcp_shutdown_write,
	.close = io_tcp_close,
};

static const struct io_ops io_ops_tls = {
	.name = "tls",
	.readable = io_buf_readable,
	.peek = io_buf_peek,
	.pullup = io_buf_pullup,
	.recv = io_buf_recv,
	.skip = io_buf_skip,
	.send = io_buf_send,
	.forward = io_buf_forward,
	.unsent = io_buf_unsent,
	.set_reading = io_bev_set_reading,
	.shutdown_write = io_tls_shutdown_write,
	.close = io_bev_close,
};

static void
io_set_timeout(struct bufferevent *bev, double seconds)
{
	struct timeval tv;

	if (seconds <= 0)
		return;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	bufferevent_set_timeouts(bev, &tv, &tv);
}

/* Make IO the TLS table over BEV (callbacks, buffers, limits). */
static void
io_bev_attach(struct io *io, struct bufferevent *bev)
{
	io->ops = &io_ops_tls;
	io->bev = bev;
	io->in = bufferevent_get_input(bev);
	io->out = bufferevent_get_output(bev);
	bufferevent_setcb(bev, io_bev_read, io_bev_write, io_bev_event, io);
}

static struct io *
io_bev_wrap(struct bufferevent *bev, const struct io_callbacks *cb, void *arg)
{
	struct io *io;

	if (bev == NULL)
		return NULL;
	if ((io = calloc(1, sizeof(*io))) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	io->cb = *cb;
	io->arg = arg;
	io->tcp.fd = -1;
	io_bev_attach(io, bev);
	return io;
}

/* --- constructors and the rest of the API ------------------------------------------------- */

struct io *
io_tcp_new(struct event_base *base, int fd, const struct io_callbacks *cb, void *arg)
{
	struct io *io = io_tcp_wrap(base, fd, true, cb, arg);

	if (io != NULL)
		io_tcp_arm_read(io);
	return io;
}

struct io *
io_tcp_adopt(struct event_base *base, int fd, const struct io_callbacks *cb, void *arg)
{
	struct io *io = io_tcp_wrap(base, fd, false, cb, arg);

	if (io != NULL)
		io_tcp_arm_read(io);
	return io;
}

int
io_upgrade_tls_accept(struct io *io, SSL_CTX *ctx, double timeout)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (io->ops != &io_ops_tcp || io->tcp.connecting || io->tcp.failed || io->tcp.eof ||
	    evbuffer_get_length(io->in) != 0 || evbuffer_get_length(io->out) != 0)
		return -1;
	if ((ssl = SSL_new(ctx)) == NULL)
		return -1;
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	bev = bufferevent_openssl_socket_new(event_get_base(io->tcp.rev), io->tcp.fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, io->tcp.own_fd ? BEV_OPT_CLOSE_ON_FREE : 0);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	/* The TCP side gives up the socket without closing it (a read callback that is running
	 * sees the io gone and returns). */
	io_tcp_release(io);
	io->tcp.fd = -1;
	io_bev_attach(io, bev);
	bufferevent_set_max_single_read(bev, IO_READ_MAX);
	bufferevent_set_max_single_write(bev, IO_READ_MAX);
	io_set_timeout(bev, timeout);
	if (io->limit != 0)
		io_set_limit(io, io->limit);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return 0;
}

struct io *
io_tcp_connect(struct event_base *base, const struct net_addr *addr, double timeout,
    const struct io_callbacks *cb, void *arg)
{
	struct timeval tv;
	struct io *io;
	int fd;

	fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if ((io = io_tcp_wrap(base, fd, true, cb, arg)) == NULL) {
		close(fd);
		return NULL;
	}
	io->tcp.connecting = true;
	if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) == 0 || errno == EINPROGRESS ||
	    errno == EINTR) {
		if (timeout > 0) {
			tv.tv_sec = (time_t)timeout;
			tv.tv_usec = (suseconds_t)((timeout - (double)tv.tv_sec) * 1e6);
		}
		io_tcp_arm_write(io, true, timeout > 0 ? &tv : NULL);
		if (!io->tcp.wev_on)
			io_tcp_defer_error(io, errno);
	} else {
		/* Refused at once (loopback can): say so from the loop, as for a later failure. */
		io_tcp_defer_error(io, errno);
	}
	return io;
}

struct io *
io_tls_accept(struct event_base *base, int fd, SSL_CTX *ctx, double timeout,
    const struct io_callbacks *cb, void *arg)
{
	struct bufferevent *bev;
	SSL *ssl;
	struct io *io;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	io = io_bev_wrap(bev, cb, arg);
	if (io != NULL) {
		bufferevent_set_max_single_read(bev, IO_READ_MAX);
		bufferevent_set_max_single_write(bev, IO_READ_MAX);
		io_set_timeout(io->bev, timeout);
		bufferevent_enable(io->bev, EV_READ | EV_WRITE);
	}
	return io;
}

struct io *
io_tls_adopt(struct event_base *base, int fd, SSL *ssl, bool own_fd,
    const struct io_callbacks *cb, void *arg)
{
	struct bufferevent *bev;
	struct io *io;

	bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_OPEN,
	    own_fd ? BEV_OPT_CLOSE_ON_FREE : 0);
	if (bev == NULL)
		return NULL;
	io = io_bev_wrap(bev, cb, arg);
	if (io != NULL) {
		bufferevent_set_max_single_read(bev, IO_READ_MAX);
		bufferevent_set_max_single_write(bev, IO_READ_MAX);
		bufferevent_enable(io->bev, EV_READ | EV_WRITE);
	}
	return io;
}

void
io_set_limit(struct io *io, size_t limit)
{
	io->limit = limit;
	if (io->ops == &io_ops_tcp)
		io->tcp.low = limit / 2;
	else
		bufferevent_setwatermark(io->bev, EV_WRITE, limit / 2, 0);
}

void
io_clear_timeout(struct io *io)
{
	if (io->ops != &io_ops_tcp) {
		bufferevent_set_timeouts(io->bev, NULL, NULL);
		return;
	}
	/* Only a connect has a timeout (event_add without one would keep it). */
	if (io->tcp.connecting && io->tcp.wev_on && event_del(io->tcp.wev) == 0)
		io->tcp.wev_on = event_add(io->tcp.wev, NULL) == 0;
}

int
io_fd(struct io *io)
{
	if (io->ops == &io_ops_tcp)
		return io->tcp.fd;
	return (int)bufferevent_getfd(io->bev);
}

SSL *
io_ssl(struct io *io)
{
	if (io->ops != &io_ops_tls)
		return NULL;
	return bufferevent_openssl_get_ssl(io->bev);
}

const char *
io_error(struct io *io)
{
	return io->error[0] ? io->error : "unknown error";
}
