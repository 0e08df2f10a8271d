/*
 * Plain TCP under the I/O table: the socket with an event per direction. Reads go into the
 * input evbuffer (evbuffer_reserve_space + recvmsg) in blocks that grow to IO_READ_MAX while
 * the kernel fills them; writes send the output's chains with one sendmsg, as soon as bytes are
 * queued (see io.c) and then whenever the socket is writable. libevent 2.1's socket
 * bufferevent caps every read at 4 KiB (EVBUFFER_MAX_READ) with an ioctl per read and one read
 * per wakeup, which held the relay to a seventh of loopback speed.
 */
#include "relay/io_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Bytes read per readiness before the loop serves other sockets. */
#define IO_TCP_READ_BUDGET	(1u << 20)
/* Chains handed to one sendmsg. */
#define IO_TCP_WRITE_IOV	64

static void
io_tcp_arm_read(struct io *io)
{
	struct io_sock *s = &io->sock;

	io_sock_arm_read(io, s->reading && !s->eof && !s->connecting && !s->failed);
}

/* Report the end of the io's transport: no more reading or writing, then on_event. The
 * caller returns at once (the callback may have freed the io). */
static void
io_tcp_fail(struct io *io, enum io_event ev, const char *what, int err)
{
	io->sock.failed = true;
	io_tcp_arm_read(io);
	io_sock_arm_write(io, false, NULL);
	io_set_error(io, what, err);
	io_call_event(io, ev);
}

/* Report an error found inside an io_* call from the loop instead. */
static void
io_tcp_defer_error(struct io *io, int err)
{
	if (io->sock.werr == 0)
		io->sock.werr = err != 0 ? err : EIO;
	io_sock_defer(io);
}

/*
 * Send what the output holds, as far as the socket takes it; then wait for writability if
 * bytes are left, or half-close if asked and all is out. 0, or a negative errno.
 */
static int
io_tcp_flush(struct io *io, size_t *sent)
{
	struct evbuffer_iovec v[IO_TCP_WRITE_IOV];
	struct iovec iov[IO_TCP_WRITE_IOV];
	struct msghdr msg = { .msg_iov = iov };
	size_t total;
	ssize_t n;
	int nv;

	*sent = 0;
	while (evbuffer_get_length(io->out) > 0) {
		nv = evbuffer_peek(io->out, -1, NULL, v, IO_TCP_WRITE_IOV);
		if (nv > IO_TCP_WRITE_IOV)
			nv = IO_TCP_WRITE_IOV;
		total = 0;
		for (int i = 0; i < nv; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
			total += v[i].iov_len;
		}
		msg.msg_iovlen = (size_t)nv;
		/* MSG_NOSIGNAL: a peer that went away is an error to report, not a SIGPIPE. */
		n = sendmsg(io->sock.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
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
			break;		/* the socket is full */
	}
	if (evbuffer_get_length(io->out) > 0) {
		io_sock_arm_write(io, true, NULL);
		return 0;
	}
	io_sock_arm_write(io, false, NULL);
	if (io->want_shutdown && !io->sock.shut) {
		io->want_shutdown = false;
		io->sock.shut = true;
		shutdown(io->sock.fd, SHUT_WR);
	}
	return 0;
}

/* Bytes were queued: send what the socket takes now (no callback from here). */
void
io_tcp_kick(struct io *io)
{
	struct io_sock *s = &io->sock;
	size_t sent;
	int r;

	/* While WEV waits, the socket was full: the writable callback goes on from there. */
	if (s->connecting || s->failed || s->werr != 0 || s->wev_on)
		return;
	if ((r = io_tcp_flush(io, &sent)) < 0) {
		io_tcp_defer_error(io, -r);
		return;
	}
	if (sent > 0 && s->drain_armed && !s->wev_on && evbuffer_get_length(io->out) <= s->low &&
	    io->cb.on_drain != NULL) {
		s->drain_pending = true;
		io_sock_defer(io);
	}
}

/* Read while the kernel fills the reads, up to IO_TCP_READ_BUDGET; on_read after each. */
static void
io_tcp_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;
	struct io_sock *s = &io->sock;
	size_t budget = IO_TCP_READ_BUDGET;
	bool alive = true;

	s->alive = &alive;
	while (s->reading && !s->failed && !s->eof) {
		struct evbuffer_iovec v[2];
		struct iovec iov[2];
		struct msghdr msg = { .msg_iov = iov };
		size_t space = 0;
		ssize_t n;
		int nv = evbuffer_reserve_space(io->in, (ev_ssize_t)(s->rsize - IO_CHAIN_SLACK), v, 2);

		if (nv <= 0) {
			s->alive = NULL;
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

			io_sock_release_reserve(io);
			s->alive = NULL;
			if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK))
				return;
			if (n == 0) {
				s->eof = true;
				io_tcp_arm_read(io);
				io_call_event(io, IO_EVENT_EOF);
				return;
			}
			io_tcp_fail(io, IO_EVENT_ERROR, "read failed", err);
			return;
		}
		io_sock_commit(io, v, nv, (size_t)n);
		io_sock_next_read_size(io, (size_t)n, space);
		io_call_read(io);
		if (!alive)
			return;		/* closed, or upgraded to TLS */
		if ((size_t)n < space || budget <= (size_t)n)
			break;		/* the kernel had no more, or other sockets' turn */
		budget -= (size_t)n;
	}
	s->alive = NULL;
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
	struct io_sock *s = &io->sock;
	bool alive = true;
	size_t sent;
	int r;

	if (s->failed)
		return;
	if (s->connecting) {
		if (what & EV_TIMEOUT) {
			io_tcp_fail(io, IO_EVENT_TIMEOUT, "connect timed out", 0);
			return;
		}
		if ((r = s->werr != 0 ? s->werr : io_so_error(fd)) != 0) {
			io_tcp_fail(io, IO_EVENT_ERROR, "connect failed", r);
			return;
		}
		s->connecting = false;
		io_sock_arm_write(io, false, NULL);	/* drops the connect timeout */
		io_tcp_arm_read(io);
		s->alive = &alive;
		io_call_event(io, IO_EVENT_CONNECTED);
		if (!alive)
			return;
		s->alive = NULL;
		if (s->failed)
			return;
		/* Then send what was queued before or during the connect, and any half-close. */
	}
	if (s->werr != 0) {
		io_tcp_fail(io, IO_EVENT_ERROR, "write failed", s->werr);
		return;
	}
	if ((r = io_tcp_flush(io, &sent)) < 0) {
		io_tcp_fail(io, IO_EVENT_ERROR, "write failed", -r);
		return;
	}
	if ((sent > 0 || s->drain_pending) && evbuffer_get_length(io->out) <= s->low) {
		s->drain_pending = false;
		io_call_drain(io);
	}
}

/* What an io_* call left to report (an error, a drain, an immediate connect result): the same
 * steps as when the socket is writable. */
static void
io_tcp_on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;

	io_tcp_on_writable(io->sock.fd, EV_WRITE, io);
}

static void
io_tcp_set_reading(struct io *io, bool on)
{
	io->sock.reading = on;
	io_tcp_arm_read(io);
}

static void
io_tcp_shutdown_write(struct io *io)
{
	struct io_sock *s = &io->sock;

	/* Never call back from here: the caller may be inside a callback of its own. */
	if (s->shut)
		return;
	io->want_shutdown = true;
	if (!s->connecting && !s->failed && !s->corked && evbuffer_get_length(io->out) == 0) {
		io->want_shutdown = false;
		s->shut = true;
		shutdown(s->fd, SHUT_WR);
	}
}

static void
io_tcp_close(struct io *io)
{
	io_sock_release(io, true);
	if (io->sock.own_fd)
		close(io->sock.fd);
	free(io);
}

const struct io_ops io_ops_tcp = {
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

/* Switch IO's events over to the TCP callbacks (a new io). */
static int
io_tcp_events(struct io *io, struct event_base *base, int fd)
{
	return io_sock_init(io, base, fd, io_tcp_on_readable, io_tcp_on_writable, io_tcp_on_deferred);
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
	io->sock.own_fd = own_fd;
	io->sock.reading = true;
	io->sock.rsize = IO_READ_MIN;
	if (io_tcp_events(io, base, fd) != 0) {
		io_sock_release(io, true);
		free(io);
		return NULL;
	}
	return io;
}

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
	io->sock.connecting = true;
	if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) == 0 || errno == EINPROGRESS ||
	    errno == EINTR) {
		if (timeout > 0)
			tv = io_timeval(timeout);
		io_sock_arm_write(io, true, timeout > 0 ? &tv : NULL);
		if (!io->sock.wev_on)
			io_tcp_defer_error(io, errno);
	} else {
		/* Refused at once (loopback can): say so from the loop, as for a later failure. */
		io_tcp_defer_error(io, errno);
	}
	return io;
}
