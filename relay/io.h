/*
 * The I/O table every protocol talks through: recv, peek, send, forward and close over a
 * connection, whatever carries it. Protocol code never touches a socket or an SSL object:
 * plain TCP (io_tcp.c) and TLS (io_tls.c), each driving the socket with an event per
 * direction and evbuffers, share every line of protocol logic, and an SSH channel becomes one
 * more table later.
 *
 * Callback rule: callbacks run on the owning worker's loop, never from inside an io_*
 * call (so a callback may close the io it was called for). When a constructor fails, no
 * callback is ever called. After io_close() no callback is called again; io_close() frees
 * the io and closes what it owns of its transport (socket, SSL object).
 */
#ifndef POSTERN_IO_H
#define POSTERN_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "relay/util.h"

struct io;

enum io_event {
	IO_EVENT_CONNECTED = 1,		/* an outgoing connection or TLS handshake completed */
	IO_EVENT_EOF,			/* the peer closed its sending side */
	IO_EVENT_ERROR,			/* the transport failed; io_error() says why */
	IO_EVENT_TIMEOUT,		/* connect or handshake did not finish in time */
};

struct io_callbacks {
	void (*on_read)(struct io *io, void *arg);		/* new bytes are readable */
	/* Unsent bytes fell to the low mark or below, after someone could have waited for it: a
	 * write waited for the socket, or io_unsent() said bytes were waiting, or io_backlogged()
	 * said true. Output that leaves at once, unobserved, owes no call (the common case: a
	 * reply forwarded and written in the same turn). */
	void (*on_drain)(struct io *io, void *arg);
	void (*on_event)(struct io *io, enum io_event ev, void *arg);
};

struct io_ops {
	const char *name;					/* "tcp", "tls" */
	size_t (*readable)(struct io *io);			/* bytes buffered for reading */
	size_t (*peek)(struct io *io, void *buf, size_t len);	/* copy without consuming */
	/* The first LEN buffered bytes as one contiguous block (rearranging, not consuming),
	 * or NULL when fewer are buffered. Only for the few messages a protocol must read whole. */
	const uint8_t *(*pullup)(struct io *io, size_t len);
	size_t (*recv)(struct io *io, void *buf, size_t len);	/* copy and consume */
	void (*skip)(struct io *io, size_t len);		/* consume without copying */
	int (*send)(struct io *io, const void *buf, size_t len);
	/* Move LEN buffered bytes (all when LEN is 0) to TO without copying them. */
	size_t (*forward)(struct io *from, struct io *to, size_t len);
	size_t (*unsent)(struct io *io);			/* bytes queued for sending */
	void (*set_reading)(struct io *io, bool on);		/* stop or resume reading (backpressure) */
	void (*shutdown_write)(struct io *io);			/* half-close once unsent bytes are out */
	void (*close)(struct io *io);
};

/* The socket under an io. TCP and TLS both drive it with their own events (io_tcp.c,
 * io_tls.c): libevent 2.1's bufferevents read 4 KiB (TCP) or one TLS record per wakeup and
 * write only on the loop turn after a write was asked for. */
struct io_sock {
	int fd;				/* the socket */
	bool own_fd;			/* close FD (and free a TLS io's SSL) in io_close */
	bool reading;			/* the protocol wants bytes (io_set_reading) */
	bool rev_on, wev_on;		/* REV / WEV are added to the loop */
	bool connecting;		/* io_tcp_connect has not finished */
	bool eof;			/* the peer closed its sending side */
	bool failed;			/* an error or timeout was reported; the socket is left alone */
	bool shut;			/* shutdown(SHUT_WR) done */
	bool drain_pending;		/* a write inside an io_* call owes on_drain */
	bool drain_armed;		/* someone saw bytes waiting: the next drain owes on_drain */
	bool corked;			/* on the list of ios to flush when the running callback returns */
	struct io *cork_next;		/* the next io on that list */
	int werr;			/* a failed connect or write to report from the loop: its errno (TCP),
					 * or nonzero with io->error already set (TLS) */
	uint32_t rsize;			/* next read's size: grows while reads come back full */
	size_t low;			/* on_drain once unsent is at most this (io_set_limit) */
	struct event *rev, *wev;	/* readable; writable (output waits, or connect) */
	struct event *dev;		/* activated to do from the loop what an io_* call found */
	bool *alive;			/* set while a callback runs; cleared when the io goes */
};

/* TLS over the socket: OpenSSL's SSL object, driven by the socket's events. */
struct io_tls {
	SSL *ssl;			/* ours (SSL_free in io_close) unless adopted with !own_fd */
	bool handshaking;		/* SSL_do_handshake has not finished (accept side) */
	bool hs_want_write;		/* the handshake waits for writability, else readability */
	bool wblocked;			/* an SSL_write waits for writability */
	bool write_wants_read;		/* an SSL_write waits for readability (post-handshake messages) */
	bool read_wants_write;		/* an SSL_read waits for writability */
	bool read_again;		/* DEV: a read pass, for bytes OpenSSL holds and the socket does not */
	uint32_t wlen;			/* length of the SSL_write to retry (OpenSSL's retry rule), else 0 */
	struct event *timer;		/* handshake deadline; NULL without one */
};

struct io {
	const struct io_ops *ops;
	struct evbuffer *in, *out;	/* bytes read and not consumed; bytes queued for sending */
	struct io_sock sock;		/* the socket, TCP and TLS */
	struct io_tls tls;		/* TLS only */
	struct io_callbacks cb;
	void *arg;
	bool want_shutdown;		/* half-close when unsent reaches zero */
	size_t limit;			/* from io_set_limit, kept across a TLS upgrade */
	char error[128];		/* why the last IO_EVENT_ERROR happened */
};

/* Wrap an accepted or connected socket FD (nonblocking; the io owns it). NULL on failure. */
struct io *io_tcp_new(struct event_base *base, int fd, const struct io_callbacks *cb, void *arg);
/* Wrap FD without owning it (a library such as libpq keeps it and closes it). */
struct io *io_tcp_adopt(struct event_base *base, int fd, const struct io_callbacks *cb, void *arg);
/*
 * Turn a plain io into server-side TLS on the same socket (PostgreSQL's SSLRequest, MySQL's
 * SSL request): nothing may be buffered unread. IO_EVENT_CONNECTED follows the handshake, as
 * for io_tls_accept. 0, or -1 (the io is unchanged).
 */
int io_upgrade_tls_accept(struct io *io, SSL_CTX *ctx, double timeout) __attribute__((warn_unused_result));
/* Connect to ADDR; IO_EVENT_CONNECTED or IO_EVENT_ERROR/TIMEOUT follows. TIMEOUT bounds the
 * connect only. Bytes sent before IO_EVENT_CONNECTED wait for it, and so does a half-close. */
struct io *io_tcp_connect(struct event_base *base, const struct net_addr *addr, double timeout,
    const struct io_callbacks *cb, void *arg);
/* Server side TLS on an accepted FD (the io owns it); IO_EVENT_CONNECTED follows the handshake,
 * IO_EVENT_TIMEOUT when it takes longer than TIMEOUT seconds (0: no limit). */
struct io *io_tls_accept(struct event_base *base, int fd, SSL_CTX *ctx, double timeout,
    const struct io_callbacks *cb, void *arg);
/* Adopt an established TLS connection (e.g. libpq's) over FD, keeping SSL's own BIO. With OWN_FD the
 * io owns both FD and SSL; without, neither (their owner frees them after io_close). */
struct io *io_tls_adopt(struct event_base *base, int fd, SSL *ssl, bool own_fd,
    const struct io_callbacks *cb, void *arg);

/* Bytes that may wait to be sent before on_drain is wanted: sets the low mark to LIMIT/2. */
void io_set_limit(struct io *io, size_t limit);
/* Clear both timeouts once a handshake or connect is done. */
void io_clear_timeout(struct io *io);
/* The socket under IO (for the one-byte answers some protocols give before TLS starts). */
int io_fd(struct io *io);
/* The SSL object under a TLS io, NULL for TCP. */
SSL *io_ssl(struct io *io);
const char *io_error(struct io *io);

static inline size_t io_readable(struct io *io) { return io->ops->readable(io); }
static inline size_t io_peek(struct io *io, void *buf, size_t len) { return io->ops->peek(io, buf, len); }
static inline const uint8_t *io_pullup(struct io *io, size_t len) { return io->ops->pullup(io, len); }
static inline size_t io_recv(struct io *io, void *buf, size_t len) { return io->ops->recv(io, buf, len); }
static inline void io_skip(struct io *io, size_t len) { io->ops->skip(io, len); }
static inline int io_send(struct io *io, const void *buf, size_t len) { return io->ops->send(io, buf, len); }
static inline size_t io_forward(struct io *from, struct io *to, size_t len) { return from->ops->forward(from, to, len); }
/* Bytes queued and not yet written; when some are, on_drain comes once they are written. */
static inline size_t io_unsent(struct io *io) { return io->ops->unsent(io); }
/* Whether LIMIT or more bytes wait to be written (then on_drain comes as for io_unsent). For
 * backpressure checks made on every message: a check that finds room arms nothing. */
bool io_backlogged(struct io *io, size_t limit);
static inline void io_set_reading(struct io *io, bool on) { io->ops->set_reading(io, on); }
static inline void io_shutdown_write(struct io *io) { io->ops->shutdown_write(io); }
static inline void io_close(struct io *io) { io->ops->close(io); }

/* Write what the output holds now, inside a callback too (where writes wait for its end), as
 * far as the socket takes it without waiting; nothing is called back. For a last message
 * before io_close, which drops what is left. */
void io_flush(struct io *io);
/* A count of the io callbacks this thread has run: it moves when work came in. */
unsigned long io_activity(void);

#endif
