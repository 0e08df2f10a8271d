/*
 * The I/O table over libevent bufferevents. Bytes move between two ios by handing
 * evbuffer chains from one bufferevent to the other (evbuffer_remove_buffer), so the relay
 * copies nothing beyond the kernel's read and write. The TCP and TLS tables differ only in
 * how the transport is built and torn down.
 */
#include "relay/io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

/* Large single reads keep syscalls per byte low on bulk transfers. */
#define IO_MAX_SINGLE_READ	(128u << 10)
#define IO_MAX_SINGLE_WRITE	(128u << 10)

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

static void
io_bev_read(struct bufferevent *bev, void *ctx)
{
	struct io *io = ctx;

	if (io->cb.on_read != NULL)
		io->cb.on_read(io, io->arg);
}

static void
io_bev_half_close(struct io *io)
{
	evutil_socket_t fd = bufferevent_getfd(io->bev);

	io->want_shutdown = false;
	if (fd >= 0)
		shutdown(fd, SHUT_WR);
}

static void
io_bev_write(struct bufferevent *bev, void *ctx)
{
	struct io *io = ctx;

	if (io->want_shutdown && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		io_bev_half_close(io);
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

static size_t
io_bev_readable(struct io *io)
{
	return evbuffer_get_length(bufferevent_get_input(io->bev));
}

static size_t
io_bev_peek(struct io *io, void *buf, size_t len)
{
	ev_ssize_t n = evbuffer_copyout(bufferevent_get_input(io->bev), buf, len);

	return n < 0 ? 0 : (size_t)n;
}

static const uint8_t *
io_bev_pullup(struct io *io, size_t len)
{
	struct evbuffer *in = bufferevent_get_input(io->bev);

	if (evbuffer_get_length(in) < len)
		return NULL;
	return evbuffer_pullup(in, (ev_ssize_t)len);
}

static size_t
io_bev_recv(struct io *io, void *buf, size_t len)
{
	int n = evbuffer_remove(bufferevent_get_input(io->bev), buf, len);

	return n < 0 ? 0 : (size_t)n;
}

static void
io_bev_skip(struct io *io, size_t len)
{
	evbuffer_drain(bufferevent_get_input(io->bev), len);
}

static int
io_bev_send(struct io *io, const void *buf, size_t len)
{
	return bufferevent_write(io->bev, buf, len) == 0 ? 0 : -ENOMEM;
}

static size_t
io_bev_forward(struct io *from, struct io *to, size_t len)
{
	struct evbuffer *in = bufferevent_get_input(from->bev);
	size_t avail = evbuffer_get_length(in);

	if (len == 0 || len > avail)
		len = avail;
	if (len == avail) {
		/* Whole buffer: moves every chain, no copy. */
		if (bufferevent_write_buffer(to->bev, in) != 0)
			return 0;
		return len;
	}
	return (size_t)evbuffer_remove_buffer(in, bufferevent_get_output(to->bev), len);
}

static size_t
io_bev_unsent(struct io *io)
{
	return evbuffer_get_length(bufferevent_get_output(io->bev));
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
io_bev_shutdown_write(struct io *io)
{
	/* Never call back from here: the caller may be inside a callback of its own. */
	io->want_shutdown = true;
	if (io_bev_unsent(io) == 0)
		io_bev_half_close(io);
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

static void
io_tls_shutdown_write(struct io *io)
{
	/* TLS has no half-close that every peer honours; the session ends when both sides are done. */
	io->want_shutdown = false;
}

static const struct io_ops io_ops_tcp = {
	.name = "tcp",
	.readable = io_bev_readable,
	.peek = io_bev_peek,
	.pullup = io_bev_pullup,
	.recv = io_bev_recv,
	.skip = io_bev_skip,
	.send = io_bev_send,
	.forward = io_bev_forward,
	.unsent = io_bev_unsent,
	.set_reading = io_bev_set_reading,
	.shutdown_write = io_bev_shutdown_write,
	.close = io_bev_close,
};

static const struct io_ops io_ops_tls = {
	.name = "tls",
	.readable = io_bev_readable,
	.peek = io_bev_peek,
	.pullup = io_bev_pullup,
	.recv = io_bev_recv,
	.skip = io_bev_skip,
	.send = io_bev_send,
	.forward = io_bev_forward,
	.unsent = io_bev_unsent,
	.set_reading = io_bev_set_reading,
	.shutdown_write = io_tls_shutdown_write,
	.close = io_bev_close,
};

static struct io *
io_wrap(struct bufferevent *bev, const struct io_ops *ops, const struct io_callbacks *cb, void *arg)
{
	struct io *io;

	if (bev == NULL)
		return NULL;
	if ((io = calloc(1, sizeof(*io))) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	io->ops = ops;
	io->bev = bev;
	io->cb = *cb;
	io->arg = arg;
	bufferevent_set_max_single_read(bev, IO_MAX_SINGLE_READ);
	bufferevent_set_max_single_write(bev, IO_MAX_SINGLE_WRITE);
	bufferevent_setcb(bev, io_bev_read, io_bev_write, io_bev_event, io);
	return io;
}

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

struct io *
io_tcp_new(struct event_base *base, int fd, const struct io_callbacks *cb, void *arg)
{
	struct io *io;

	io = io_wrap(bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE), &io_ops_tcp, cb, arg);
	if (io != NULL)
		bufferevent_enable(io->bev, EV_READ | EV_WRITE);
	return io;
}

struct io *
io_tcp_adopt(struct event_base *base, int fd, const struct io_callbacks *cb, void *arg)
{
	struct io *io;

	io = io_wrap(bufferevent_socket_new(base, fd, 0), &io_ops_tcp, cb, arg);
	if (io != NULL)
		bufferevent_enable(io->bev, EV_READ | EV_WRITE);
	return io;
}

int
io_upgrade_tls_accept(struct io *io, SSL_CTX *ctx, double timeout)
{
	struct bufferevent *bev;
	evutil_socket_t fd = bufferevent_getfd(io->bev);
	SSL *ssl;

	if (io->ops != &io_ops_tcp || io_bev_readable(io) != 0 || io_bev_unsent(io) != 0 || fd < 0)
		return -1;
	if ((ssl = SSL_new(ctx)) == NULL)
		return -1;
	SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
	bev = bufferevent_openssl_socket_new(bufferevent_get_base(io->bev), fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	/* The plain bufferevent gives up the socket without closing it. */
	bufferevent_setcb(io->bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(io->bev, EV_READ | EV_WRITE);
	bufferevent_setfd(io->bev, -1);
	bufferevent_free(io->bev);
	io->bev = bev;
	io->ops = &io_ops_tls;
	bufferevent_set_max_single_read(bev, IO_MAX_SINGLE_READ);
	bufferevent_set_max_single_write(bev, IO_MAX_SINGLE_WRITE);
	bufferevent_setcb(bev, io_bev_read, io_bev_write, io_bev_event, io);
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
	struct io *io;

	io = io_wrap(bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE), &io_ops_tcp, cb, arg);
	if (io == NULL)
		return NULL;
	io_set_timeout(io->bev, timeout);
	if (bufferevent_socket_connect(io->bev, (const struct sockaddr *)&addr->ss, (int)addr->len) != 0) {
		/* No callback has run: the rule above holds. */
		bufferevent_setcb(io->bev, NULL, NULL, NULL, NULL);
		bufferevent_free(io->bev);
		free(io);
		return NULL;
	}
	bufferevent_enable(io->bev, EV_READ | EV_WRITE);
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
	io = io_wrap(bev, &io_ops_tls, cb, arg);
	if (io != NULL) {
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
	io = io_wrap(bev, &io_ops_tls, cb, arg);
	if (io != NULL)
		bufferevent_enable(io->bev, EV_READ | EV_WRITE);
	return io;
}

void
io_set_limit(struct io *io, size_t limit)
{
	io->limit = limit;
	bufferevent_setwatermark(io->bev, EV_WRITE, limit / 2, 0);
}

void
io_clear_timeout(struct io *io)
{
	bufferevent_set_timeouts(io->bev, NULL, NULL);
}

int
io_fd(struct io *io)
{
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
