/*
 * What the transports of the I/O table share (io.c) and what io.c asks of each of them
 * (io_tcp.c, io_tls.c). Private to those files: protocol code includes relay/io.h only.
 */
#ifndef POSTERN_IO_IMPL_H
#define POSTERN_IO_IMPL_H

#include <event2/buffer.h>
#include <event2/event.h>

#include "relay/io.h"

/* Reads: the first one on a connection is IO_READ_MIN bytes; a read that comes back full makes
 * the next four times larger, up to IO_READ_MAX, and a read under a quarter of its size halves
 * it, so bulk streams get few large reads and an interactive one small chains. */
#define IO_READ_MIN		(4u << 10)
#define IO_READ_MAX		(256u << 10)
/* evbuffer rounds a new chain (its header included) up to a power of two: reserving
 * 2^n - IO_CHAIN_SLACK bytes takes one 2^n block. */
#define IO_CHAIN_SLACK		128u

extern const struct io_ops io_ops_tcp;
extern const struct io_ops io_ops_tls;

/* The buffer calls, the same over every transport (io.c). */
size_t io_buf_readable(struct io *io);
size_t io_buf_peek(struct io *io, void *buf, size_t len);
const uint8_t *io_buf_pullup(struct io *io, size_t len);
size_t io_buf_recv(struct io *io, void *buf, size_t len);
void io_buf_skip(struct io *io, size_t len);
int io_buf_send(struct io *io, const void *buf, size_t len);
size_t io_buf_forward(struct io *from, struct io *to, size_t len);
size_t io_buf_unsent(struct io *io);

/* io->error: "WHAT: strerror(ERR)", or WHAT alone when ERR is 0. */
void io_set_error(struct io *io, const char *what, int err);
/* io->error: "WHAT: TLS: " and OpenSSL's text for E. */
void io_set_tls_error(struct io *io, const char *what, unsigned long e);

/* Run IO's callback (if it has one). Bytes that the callback queues on any io are sent when it
 * returns; the callback may free IO. */
void io_call_read(struct io *io);
void io_call_drain(struct io *io);
void io_call_event(struct io *io, enum io_event ev);
/* Take IO off the list of ios to flush when the running callback returns. */
void io_uncork(struct io *io);

/* The socket's events and buffers for a new io (buffers only when IO has none yet). On
 * failure, io_sock_release frees what was made. */
int io_sock_init(struct io *io, struct event_base *base, int fd, event_callback_fn on_readable,
    event_callback_fn on_writable, event_callback_fn on_deferred) __attribute__((warn_unused_result));
/* New events for the same socket and buffers (a TLS upgrade): the old ones go, and a callback
 * of the old transport that is running sees the io gone. On failure IO is unchanged. */
int io_sock_switch(struct io *io, event_callback_fn on_readable, event_callback_fn on_writable,
    event_callback_fn on_deferred) __attribute__((warn_unused_result));
/* Free the events; with BUFFERS also the evbuffers. Never the socket. */
void io_sock_release(struct io *io, bool buffers);
void io_sock_arm_read(struct io *io, bool want);
void io_sock_arm_write(struct io *io, bool want, const struct timeval *timeout);
/* Have the deferred event run once from the loop. */
void io_sock_defer(struct io *io);
/* Drop an empty chain a read reserved and did not fill: an idle connection keeps nothing. */
void io_sock_release_reserve(struct io *io);
/* Commit N bytes read into the NV vectors V (N at most their total). */
void io_sock_commit(struct io *io, struct evbuffer_iovec *v, int nv, size_t n);
/* After a read of N bytes into SPACE: adjust the next read's size. */
void io_sock_next_read_size(struct io *io, size_t n, size_t space);
/* A timeval of SECONDS. */
struct timeval io_timeval(double seconds);

/* Bytes were queued on IO's output: send what the socket takes now, no callback. */
void io_tcp_kick(struct io *io);
void io_tls_kick(struct io *io);
/* io_clear_timeout for TLS. */
void io_tls_clear_timeout(struct io *io);

#endif
