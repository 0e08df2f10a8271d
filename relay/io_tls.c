/*
 * TLS under the I/O table: an OpenSSL SSL object over the socket, driven by the socket's own
 * events as plain TCP is (io_tcp.c). libevent's OpenSSL bufferevent, which this replaces,
 * decrypted one record per wakeup and wrote only on the loop turn after a write was asked for.
 *
 * Reads: when the socket is readable, SSL_read into the input evbuffer in place
 * (evbuffer_reserve_space), several records per wakeup up to IO_TLS_READ_BUDGET, on_read after
 * each block. OpenSSL reads ahead (one read(2) takes a record's header, its body and whatever
 * follows), and bytes it holds, decrypted or not, do not make the socket readable again: a
 * pass that stops at the budget, and an io_set_reading(true), schedule the next pass from the
 * loop itself. A pass ends without another read(2) after a record shorter than the largest with
 * nothing behind it, as an interactive peer sends them; epoll says when more comes.
 *
 * Writes: SSL_write of the output when bytes are queued (io.c says when exactly), a record
 * (16 KiB) per call, small chains copied together first so that a message is one record, and
 * then whenever the socket is writable after OpenSSL said SSL_ERROR_WANT_WRITE. OpenSSL's rule
 * that a retried SSL_write must pass the same bytes again holds because the output's head stays
 * where it is until a write takes it (and never shrinks, so a retry passes at least as many);
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets it pass them from another address.
 *
 * Every SSL, adopted ones included, gets SSL_MODE_RELEASE_BUFFERS: an idle connection keeps no
 * record buffers (libpq's SSL otherwise keeps 16 KiB in and 16 KiB out per connection).
 */
#include "relay/io_impl.h"

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

/* TLS's largest record payload (2^14): a write per record, a short record ends a read pass. */
#define IO_TLS_RECORD		16384u
/* Plaintext bytes per read pass before the loop serves other sockets. */
#define IO_TLS_READ_BUDGET	(256u << 10)
/* Writes: a record at a time, retried from wherever the bytes are; no idle record buffers. */
#define IO_TLS_MODES		(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | \
				 SSL_MODE_RELEASE_BUFFERS)

/* How an SSL_* call that did not succeed ended. */
enum io_tls_status {
	IO_TLS_WANT_READ,		/* OpenSSL waits for the socket to be readable */
	IO_TLS_WANT_WRITE,		/* ... writable */
	IO_TLS_PAUSED,			/* a read pass found the peer paused (see above) */
	IO_TLS_EOF,			/* the peer closed, with or without close_notify */
	IO_TLS_ERROR,			/* io->error says why */
};

/* Before an SSL call: its errors must be its own. A queue is nearly always empty, and checking
 * that costs less than OpenSSL 3's clearing all sixteen slots on every record. */
static inline void
io_tls_err_reset(void)
{
	if (ERR_peek_error() != 0)
		ERR_clear_error();
}
static bool io_tls_read(struct io *io);

/* What SSL_* returning R means; ERR is errno after the call. Leaves OpenSSL's queue empty. */
static enum io_tls_status
io_tls_status(struct io *io, int r, int err, const char *what)
{
	unsigned long e;
	size_t n;

	switch (SSL_get_error(io->tls.ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return IO_TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return IO_TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return IO_TLS_EOF;			/* close_notify */
	case SSL_ERROR_SYSCALL:
		if (err != 0) {
			io_set_error(io, what, err);
			ERR_clear_error();
			return IO_TLS_ERROR;
		}
		if ((e = ERR_peek_error()) == 0)
			return IO_TLS_EOF;		/* OpenSSL 1.1's word for an EOF without close_notify */
		break;
	default:
		e = ERR_peek_error();
		/* A TCP EOF without close_notify: most clients just close, so it is the end of the
		 * stream, not an error (libevent's allow_dirty_shutdown). */
		if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			return IO_TLS_EOF;
		}
		break;
	}
	if (e == 0) {
		io_set_error(io, what, EPROTO);
		return IO_TLS_ERROR;
	}
	io_set_tls_error(io, what, e);
	if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
	    SSL_get_verify_result(io->tls.ssl) != X509_V_OK) {
		n = strlen(io->error);
		snprintf(io->error + n, sizeof(io->error) - n, " (%s)",
		    X509_verify_cert_error_string(SSL_get_verify_result(io->tls.ssl)));
	}
	ERR_clear_error();
	return IO_TLS_ERROR;
}

/* Add or remove the socket's events for what the io waits for now. */
static void
io_tls_arm(struct io *io)
{
	const struct io_sock *s = &io->sock;
	const struct io_tls *t = &io->tls;
	bool rd = false, wr = false;

	if (s->failed || s->werr != 0) {
		/* nothing more from the socket */
	} else if (t->handshaking) {
		rd = !t->hs_want_write;
		wr = t->hs_want_write;
	} else {
		rd = (s->reading && !s->eof && !t->read_wants_write) || t->write_wants_read;
		wr = t->wblocked || t->read_wants_write;
	}
	io_sock_arm_read(io, rd);
	io_sock_arm_write(io, wr, NULL);
}

static void
io_tls_stop_timer(struct io *io)
{
	if (io->tls.timer != NULL)
		event_free(io->tls.timer);
	io->tls.timer = NULL;
}

void
io_tls_clear_timeout(struct io *io)
{
	io_tls_stop_timer(io);
}

/* Report the end of the io's transport (io->error is set): nothing more from the socket, then
 * on_event. The caller returns at once (the callback may have freed the io). */
static void
io_tls_fail(struct io *io, enum io_event ev)
{
	io->sock.failed = true;
	io_tls_stop_timer(io);
	io_tls_arm(io);
	io_call_event(io, ev);
}

/*
 * SSL_write what the output holds, a record per call, until it is empty or OpenSSL waits for
 * the socket (then the matching event is armed). No callback. 0, or -1 with io->error set.
 */
static int
io_tls_flush(struct io *io, size_t *sent)
{
	struct io_tls *t = &io->tls;
	uint8_t block[IO_TLS_RECORD];
	size_t total;

	*sent = 0;
	t->wblocked = t->write_wants_read = false;
	while ((total = evbuffer_get_length(io->out)) > 0) {
		size_t len = total < IO_TLS_RECORD ? total : IO_TLS_RECORD;
		struct evbuffer_iovec v;
		const void *p = block;
		int n, err;

		/* The first chain holds the record's bytes, or small chains are copied together. */
		if (evbuffer_peek(io->out, (ev_ssize_t)len, NULL, &v, 1) == 1 && v.iov_len >= len)
			p = v.iov_base;
		else if (evbuffer_copyout(io->out, block, len) != (ev_ssize_t)len) {
			io_set_error(io, "write failed", EIO);
			return -1;
		}
		io_tls_err_reset();
		errno = 0;
		n = SSL_write(t->ssl, p, (int)len);
		err = errno;
		if (n > 0) {
			t->wlen = 0;
			evbuffer_drain(io->out, (size_t)n);
			*sent += (size_t)n;
			continue;
		}
		t->wlen = (uint32_t)len;
		switch (io_tls_status(io, n, err, "write failed")) {
		case IO_TLS_WANT_WRITE:
			t->wblocked = true;
			io_tls_arm(io);
			return 0;
		case IO_TLS_WANT_READ:
			/* The peer's post-handshake messages (TLS 1.2 renegotiation) first. */
			t->write_wants_read = true;
			io_tls_arm(io);
			return 0;
		case IO_TLS_PAUSED:
		case IO_TLS_EOF:
			io_set_error(io, "write failed: the peer closed the connection", 0);
			return -1;
		case IO_TLS_ERROR:
			return -1;
		}
	}
	/* TLS has no half-close that every peer honours: the session ends when both sides are done. */
	io->want_shutdown = false;
	io_tls_arm(io);
	return 0;
}

/* Bytes were queued: write what OpenSSL and the socket take now (no callback from here). */
void
io_tls_kick(struct io *io)
{
	struct io_sock *s = &io->sock;
	struct io_tls *t = &io->tls;
	size_t sent;

	/* During the handshake the bytes wait for it; while a write waits, its event goes on. */
	if (s->failed || s->werr != 0 || t->handshaking || t->wblocked || t->write_wants_read)
		return;
	if (io_tls_flush(io, &sent) < 0) {
		s->werr = EIO;		/* reported from the loop; io->error says why */
		io_tls_arm(io);
		io_sock_defer(io);
		return;
	}
	if (sent > 0 && s->drain_armed && !t->wblocked && !t->write_wants_read &&
	    evbuffer_get_length(io->out) <= s->low && io->cb.on_drain != NULL) {
		s->drain_pending = true;
		io_sock_defer(io);
	}
}

/* From the loop: send what the output holds, then on_drain if the output is at most the low
 * mark. False when the io failed or is gone. */
static bool
io_tls_write_ready(struct io *io)
{
	struct io_sock *s = &io->sock;
	bool alive = true;
	size_t sent;

	if (io_tls_flush(io, &sent) < 0) {
		io_tls_fail(io, IO_EVENT_ERROR);
		return false;
	}
	if ((sent > 0 || s->drain_pending) && evbuffer_get_length(io->out) <= s->low) {
		s->drain_pending = false;
		s->alive = &alive;
		io_call_drain(io);
		if (!alive)
			return false;
		s->alive = NULL;
	}
	return !s->failed;
}

/*
 * SSL_read into the NV vectors V, counting into *GOT. True when they are full (more may
 * follow); false with *ST saying why it stopped. IO_TLS_PAUSED: a record shorter than the
 * largest, read whole, with nothing behind it in OpenSSL, which had read ahead as far as the
 * socket went: another SSL_read would only find the socket empty (a read(2) for EAGAIN).
 */
static bool
io_tls_fill(struct io *io, struct evbuffer_iovec *v, int nv, size_t *got, enum io_tls_status *st)
{
	SSL *ssl = io->tls.ssl;

	for (int i = 0; i < nv; i++) {
		uint8_t *p = v[i].iov_base;
		size_t off = 0;

		while (off < v[i].iov_len) {
			size_t want = v[i].iov_len - off;
			/* The rest of a record a full block cut: short, but no sign of a pause. */
			bool tail = SSL_pending(ssl) > 0;
			int n, err;

			if (want > INT_MAX)
				want = INT_MAX;
			io_tls_err_reset();
			errno = 0;
			n = SSL_read(ssl, p + off, (int)want);
			err = errno;
			if (n <= 0) {
				*st = io_tls_status(io, n, err, "read failed");
				return false;
			}
			off += (size_t)n;
			*got += (size_t)n;
			if ((size_t)n < want && (size_t)n < IO_TLS_RECORD && !tail && !SSL_has_pending(ssl)) {
				*st = IO_TLS_PAUSED;
				return false;
			}
		}
	}
	return true;
}

/*
 * The blocks of a read pass: decrypt into the input while more comes, up to IO_TLS_READ_BUDGET,
 * on_read after each block, then EOF or an error if that is how it ended. Counts into *TOTAL.
 * False when the io failed or is gone.
 */
static bool
io_tls_read_blocks(struct io *io, size_t *total)
{
	struct io_sock *s = &io->sock;
	struct io_tls *t = &io->tls;
	size_t budget = IO_TLS_READ_BUDGET;
	bool alive = true, more = true;

	while (more && s->reading && !s->eof && !s->failed && s->werr == 0 && !t->read_wants_write) {
		struct evbuffer_iovec v[2];
		enum io_tls_status st = IO_TLS_PAUSED;
		size_t space = 0, got = 0;
		int nv = evbuffer_reserve_space(io->in, (ev_ssize_t)(s->rsize - IO_CHAIN_SLACK), v, 2);

		if (nv <= 0) {
			io_set_error(io, "read failed", ENOMEM);
			io_tls_fail(io, IO_EVENT_ERROR);
			return false;
		}
		for (int i = 0; i < nv; i++)
			space += v[i].iov_len;
		more = io_tls_fill(io, v, nv, &got, &st);
		*total += got;
		if (got == 0) {
			io_sock_release_reserve(io);
		} else {
			io_sock_commit(io, v, nv, got);
			if (got >= space)
				io_sock_next_read_size(io, got, space);	/* larger blocks while they fill */
			s->alive = &alive;
			io_call_read(io);
			if (!alive)
				return false;
			s->alive = NULL;
		}
		if (!more) {
			switch (st) {
			case IO_TLS_WANT_READ:
			case IO_TLS_PAUSED:
				return !s->failed;
			case IO_TLS_WANT_WRITE:
				t->read_wants_write = true;	/* a post-handshake answer waits for room */
				io_tls_arm(io);
				return !s->failed;
			case IO_TLS_EOF:
				if (s->failed)
					return false;
				s->eof = true;
				io_tls_arm(io);
				s->alive = &alive;
				io_call_event(io, IO_EVENT_EOF);
				if (!alive)
					return false;
				s->alive = NULL;
				return !s->failed;
			case IO_TLS_ERROR:
				if (!s->failed)
					io_tls_fail(io, IO_EVENT_ERROR);
				return false;
			}
		}
		if (budget <= got) {
			/* Other sockets' turn. What OpenSSL holds does not wake the loop: ask it to. */
			if (SSL_has_pending(t->ssl)) {
				t->read_again = true;
				io_sock_defer(io);
			}
			break;
		}
		budget -= got;
	}
	return !s->failed;
}

/* A read pass. False when the io failed or is gone. */
static bool
io_tls_read(struct io *io)
{
	size_t total = 0;

	if (!io_tls_read_blocks(io, &total))
		return false;
	/* Smaller blocks again when a whole pass brought less than a quarter of one (the last
	 * block of a pass is seldom full: it says nothing about the stream). */
	if (total > 0)
		io_sock_next_read_size(io, total, SIZE_MAX);
	return true;
}

/* Go on with the handshake; once done, IO_EVENT_CONNECTED, then what waited for it. */
static void
io_tls_handshake(struct io *io)
{
	struct io_sock *s = &io->sock;
	struct io_tls *t = &io->tls;
	bool alive = true;
	int r, err;

	ERR_clear_error();
	errno = 0;
	r = SSL_do_handshake(t->ssl);
	err = errno;
	if (r != 1) {
		switch (io_tls_status(io, r, err, "handshake failed")) {
		case IO_TLS_WANT_READ:
		case IO_TLS_PAUSED:
			t->hs_want_write = false;
			io_tls_arm(io);
			return;
		case IO_TLS_WANT_WRITE:
			t->hs_want_write = true;
			io_tls_arm(io);
			return;
		case IO_TLS_EOF:
			io_set_error(io, "the peer closed the connection during the TLS handshake", 0);
			s->eof = true;
			io_tls_fail(io, IO_EVENT_EOF);
			return;
		case IO_TLS_ERROR:
			io_tls_fail(io, IO_EVENT_ERROR);
			return;
		}
	}
	t->handshaking = false;
	io_tls_stop_timer(io);
	io_tls_arm(io);
	s->alive = &alive;
	io_call_event(io, IO_EVENT_CONNECTED);
	if (!alive)
		return;
	s->alive = NULL;
	/* Then the bytes queued during the handshake, and those the client sent right behind its
	 * last flight, which OpenSSL may have read ahead. */
	if (s->failed || !io_tls_write_ready(io))
		return;
	if (SSL_has_pending(t->ssl))
		(void)io_tls_read(io);
}

static void
io_tls_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;

	if (io->sock.failed)
		return;
	if (io->sock.werr != 0) {
		io_tls_fail(io, IO_EVENT_ERROR);
		return;
	}
	if (io->tls.handshaking) {
		io_tls_handshake(io);
		return;
	}
	if (io->tls.write_wants_read && !io_tls_write_ready(io))
		return;
	(void)io_tls_read(io);
}

static void
io_tls_on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;
	struct io_tls *t = &io->tls;

	if (io->sock.failed)
		return;
	if (io->sock.werr != 0) {
		io_tls_fail(io, IO_EVENT_ERROR);
		return;
	}
	if (t->handshaking) {
		io_tls_handshake(io);
		return;
	}
	if (t->read_wants_write) {
		t->read_wants_write = false;
		io_tls_arm(io);
		if (!io_tls_read(io))
			return;
	}
	(void)io_tls_write_ready(io);
}

/* What an io_* call or a read pass left for the loop: an error, a read pass, a drain. */
static void
io_tls_on_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;
	struct io_sock *s = &io->sock;
	struct io_tls *t = &io->tls;

	if (s->failed)
		return;
	if (s->werr != 0) {
		io_tls_fail(io, IO_EVENT_ERROR);
		return;
	}
	if (t->handshaking)
		return;
	if (t->read_again) {
		t->read_again = false;
		if (SSL_has_pending(t->ssl) && !io_tls_read(io))
			return;
	}
	if (s->drain_pending && !t->wblocked && !t->write_wants_read)
		(void)io_tls_write_ready(io);
}

static void
io_tls_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct io *io = arg;

	if (!io->tls.handshaking || io->sock.failed)
		return;
	io_set_error(io, "TLS handshake timed out", 0);
	io_tls_fail(io, IO_EVENT_TIMEOUT);
}

static void
io_tls_set_reading(struct io *io, bool on)
{
	struct io_sock *s = &io->sock;
	struct io_tls *t = &io->tls;

	s->reading = on;
	io_tls_arm(io);
	/* Bytes OpenSSL already holds do not make the socket readable: read them from the loop. */
	if (on && !t->handshaking && !s->failed && !s->eof && !t->read_again && SSL_has_pending(t->ssl)) {
		t->read_again = true;
		io_sock_defer(io);
	}
}

static void
io_tls_shutdown_write(struct io *io)
{
	/* TLS has no half-close that every peer honours; the session ends when both sides are done. */
	io->want_shutdown = false;
}

static void
io_tls_close(struct io *io)
{
	struct io_sock *s = &io->sock;
	struct io_tls *t = &io->tls;

	io_tls_stop_timer(io);
	io_sock_release(io, true);
	if (s->own_fd) {
		/* close_notify when the session is up and no record is half-written: one try, no wait. */
		if (!t->handshaking && !s->failed && t->wlen == 0) {
			ERR_clear_error();
			(void)SSL_shutdown(t->ssl);
		}
		SSL_free(t->ssl);
		close(s->fd);
	}
	ERR_clear_error();
	free(io);
}

const struct io_ops io_ops_tls = {
	.name = "tls",
	.readable = io_buf_readable,
	.peek = io_buf_peek,
	.pullup = io_buf_pullup,
	.recv = io_buf_recv,
	.skip = io_buf_skip,
	.send = io_buf_send,
	.forward = io_buf_forward,
	.unsent = io_buf_unsent,
	.set_reading = io_tls_set_reading,
	.shutdown_write = io_tls_shutdown_write,
	.close = io_tls_close,
};

/* The modes every SSL under an io gets; read-ahead, since only this file reads from it. */
static void
io_tls_prepare(SSL *ssl)
{
	SSL_set_mode(ssl, IO_TLS_MODES);
	SSL_set_read_ahead(ssl, 1);
}

/* A handshake deadline TIMEOUT seconds from now (none when TIMEOUT is 0). */
static int
io_tls_start_timer(struct io *io, struct event_base *base, double timeout)
{
	struct timeval tv;

	if (timeout <= 0)
		return 0;
	tv = io_timeval(timeout);
	if ((io->tls.timer = evtimer_new(base, io_tls_on_timeout, io)) == NULL)
		return -ENOMEM;
	if (evtimer_add(io->tls.timer, &tv) != 0) {
		io_tls_stop_timer(io);
		return -ENOMEM;
	}
	return 0;
}

/* A TLS io over FD and SSL; NULL on failure, with FD and SSL left to the caller. */
static struct io *
io_tls_wrap(struct event_base *base, int fd, SSL *ssl, bool own_fd, const struct io_callbacks *cb, void *arg)
{
	struct io *io;

	if ((io = calloc(1, sizeof(*io))) == NULL)
		return NULL;
	io->ops = &io_ops_tls;
	io->cb = *cb;
	io->arg = arg;
	io->sock.own_fd = own_fd;
	io->sock.reading = true;
	io->sock.rsize = IO_READ_MIN;
	io->tls.ssl = ssl;
	if (io_sock_init(io, base, fd, io_tls_on_readable, io_tls_on_writable, io_tls_on_deferred) != 0) {
		io_sock_release(io, true);
		free(io);
		return NULL;
	}
	return io;
}

struct io *
io_tls_accept(struct event_base *base, int fd, SSL_CTX *ctx, double timeout,
    const struct io_callbacks *cb, void *arg)
{
	struct io *io = NULL;
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1 || (io = io_tls_wrap(base, fd, ssl, true, cb, arg)) == NULL)
		goto fail;
	if (io_tls_start_timer(io, base, timeout) != 0)
		goto fail;
	io_tls_prepare(ssl);
	SSL_set_accept_state(ssl);
	io->tls.handshaking = true;
	io_tls_arm(io);		/* the client speaks first */
	return io;
fail:
	if (io != NULL) {
		io_sock_release(io, true);
		free(io);
	}
	SSL_free(ssl);
	ERR_clear_error();
	return NULL;
}

struct io *
io_tls_adopt(struct event_base *base, int fd, SSL *ssl, bool own_fd,
    const struct io_callbacks *cb, void *arg)
{
	struct io *io;

	/* SSL keeps its BIO: libpq's reads and writes the socket its own way. */
	if ((io = io_tls_wrap(base, fd, ssl, own_fd, cb, arg)) == NULL)
		return NULL;
	io_tls_prepare(ssl);
	io_tls_arm(io);
	if (SSL_has_pending(ssl)) {
		io->tls.read_again = true;
		io_sock_defer(io);
	}
	return io;
}

int
io_upgrade_tls_accept(struct io *io, SSL_CTX *ctx, double timeout)
{
	struct io_sock *s = &io->sock;
	struct event_base *base;
	SSL *ssl;

	if (io->ops != &io_ops_tcp || s->connecting || s->failed || s->eof || s->werr != 0 ||
	    evbuffer_get_length(io->in) != 0 || evbuffer_get_length(io->out) != 0)
		return -1;
	base = event_get_base(s->rev);
	if ((ssl = SSL_new(ctx)) == NULL)
		return -1;
	if (SSL_set_fd(ssl, s->fd) != 1 || io_tls_start_timer(io, base, timeout) != 0)
		goto fail;
	/* The TCP events make way for TLS ones on the same socket; a TCP read callback that is
	 * running sees the io gone and returns. */
	if (io_sock_switch(io, io_tls_on_readable, io_tls_on_writable, io_tls_on_deferred) != 0)
		goto fail;
	io->ops = &io_ops_tls;
	s->drain_pending = false;
	io->tls.ssl = ssl;
	io_tls_prepare(ssl);
	SSL_set_accept_state(ssl);
	io->tls.handshaking = true;
	io_tls_arm(io);
	return 0;
fail:
	io_tls_stop_timer(io);
	SSL_free(ssl);
	ERR_clear_error();
	return -1;
}
