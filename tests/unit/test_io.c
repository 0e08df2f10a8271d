/*
 * Unit tests of the I/O table over real sockets: send, peek, recv, skip and forward over TCP,
 * backpressure through set_reading, half-close, and the same calls over TLS.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "relay/io.h"
#include "tests/unit/check.h"

struct probe {
	int reads, drains, eofs, errors, connected;
};

static void probe_read(struct io *io, void *arg) { ((struct probe *)arg)->reads++; }
static void probe_drain(struct io *io, void *arg) { ((struct probe *)arg)->drains++; }

static void
probe_event(struct io *io, enum io_event ev, void *arg)
{
	struct probe *p = arg;

	if (ev == IO_EVENT_EOF)
		p->eofs++;
	else if (ev == IO_EVENT_CONNECTED)
		p->connected++;
	else
		p->errors++;
}

static const struct io_callbacks probe_cb = { probe_read, probe_drain, probe_event };

static void
pair(int fds[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
		abort();
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
}

/* Run BASE until COND holds or a second passes. */
#define RUN_UNTIL(base, cond) do { \
	for (int run_i_ = 0; run_i_ < 1000 && !(cond); run_i_++) \
		event_base_loop(base, EVLOOP_NONBLOCK), usleep(1000); \
} while (0)

static void
tcp_send_peek_recv_skip(void)
{
	struct event_base *base = event_base_new();
	struct probe pa = { 0 }, pb = { 0 };
	int fds[2];
	struct io *a, *b;
	char buf[16] = { 0 };

	pair(fds);
	a = io_tcp_new(base, fds[0], &probe_cb, &pa);
	b = io_tcp_new(base, fds[1], &probe_cb, &pb);
	CHECK(strcmp(a->ops->name, "tcp") == 0 && io_ssl(a) == NULL);
	CHECK(io_send(a, "hello world", 11) == 0);
	RUN_UNTIL(base, io_readable(b) == 11);
	CHECK(pb.reads >= 1);
	CHECK(io_readable(b) == 11);
	CHECK(io_peek(b, buf, 5) == 5 && memcmp(buf, "hello", 5) == 0);
	CHECK(io_readable(b) == 11);
	io_skip(b, 6);
	CHECK(io_recv(b, buf, sizeof(buf)) == 5 && memcmp(buf, "world", 5) == 0);
	CHECK(io_readable(b) == 0);
	CHECK(pa.drains >= 1);	/* the write buffer emptied */
	io_close(a);
	RUN_UNTIL(base, pb.eofs == 1);
	CHECK(pb.eofs == 1);
	io_close(b);
	event_base_free(base);
}

static void
forward_moves_bytes_between_connections(void)
{
	struct event_base *base = event_base_new();
	struct probe p[4] = { 0 };
	int f1[2], f2[2];
	struct io *src, *mid_in, *mid_out, *dst;
	char buf[64];

	pair(f1);
	pair(f2);
	src = io_tcp_new(base, f1[0], &probe_cb, &p[0]);
	mid_in = io_tcp_new(base, f1[1], &probe_cb, &p[1]);
	mid_out = io_tcp_new(base, f2[0], &probe_cb, &p[2]);
	dst = io_tcp_new(base, f2[1], &probe_cb, &p[3]);
	io_send(src, "0123456789", 10);
	RUN_UNTIL(base, io_readable(mid_in) == 10);
	CHECK(io_forward(mid_in, mid_out, 4) == 4);
	CHECK(io_readable(mid_in) == 6);
	CHECK(io_forward(mid_in, mid_out, 0) == 6);
	RUN_UNTIL(base, io_readable(dst) == 10);
	CHECK(io_recv(dst, buf, sizeof(buf)) == 10 && memcmp(buf, "0123456789", 10) == 0);
	io_close(src);
	io_close(mid_in);
	io_close(mid_out);
	io_close(dst);
	event_base_free(base);
}

static void
set_reading_off_stops_reading(void)
{
	struct event_base *base = event_base_new();
	struct probe pa = { 0 }, pb = { 0 };
	int fds[2];
	struct io *a, *b;

	pair(fds);
	a = io_tcp_new(base, fds[0], &probe_cb, &pa);
	b = io_tcp_new(base, fds[1], &probe_cb, &pb);
	io_set_reading(b, false);
	io_send(a, "x", 1);
	for (int i = 0; i < 50; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK(io_readable(b) == 0 && pb.reads == 0);
	io_set_reading(b, true);
	RUN_UNTIL(base, io_readable(b) == 1);
	CHECK(io_readable(b) == 1);
	io_close(a);
	io_close(b);
	event_base_free(base);
}

static void
shutdown_write_sends_eof_after_unsent_bytes(void)
{
	struct event_base *base = event_base_new();
	struct probe pa = { 0 }, pb = { 0 };
	int fds[2];
	struct io *a, *b;

	pair(fds);
	a = io_tcp_new(base, fds[0], &probe_cb, &pa);
	b = io_tcp_new(base, fds[1], &probe_cb, &pb);
	io_send(a, "last words", 10);
	io_shutdown_write(a);
	RUN_UNTIL(base, pb.eofs == 1);
	CHECK(pb.eofs == 1);
	CHECK(io_readable(b) == 10);
	/* The other direction still works after a half-close. */
	io_send(b, "reply", 5);
	RUN_UNTIL(base, io_readable(a) == 5);
	CHECK(io_readable(a) == 5);
	io_close(a);
	io_close(b);
	event_base_free(base);
}

static void
connect_to_closed_port_reports_error(void)
{
	struct event_base *base = event_base_new();
	struct probe p = { 0 };
	struct net_addr addr;
	char err[128];
	struct io *io;

	CHECK(util_addr_parse("127.0.0.1:1", false, &addr, err, sizeof(err)) == 0);
	io = io_tcp_connect(base, &addr, 2, &probe_cb, &p);
	CHECK(io != NULL);
	RUN_UNTIL(base, p.errors == 1);
	CHECK(p.errors == 1 && p.connected == 0);
	CHECK_CONTAINS(io_error(io), "refused");
	io_close(io);
	event_base_free(base);
}

/* A throwaway self-signed P-256 certificate for the TLS test. */
static SSL_CTX *
server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();

	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, key, EVP_sha256());
	SSL_CTX_use_certificate(ctx, x);
	SSL_CTX_use_PrivateKey(ctx, key);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

struct tls_peer {
	SSL_CTX *ctx;
	int fd;
	bool server;
	char got[16];
};

/* The other end, in blocking OpenSSL on its own thread: read 8 bytes, answer "back". */
static void *
tls_peer_main(void *arg)
{
	struct tls_peer *p = arg;
	SSL *ssl = SSL_new(p->ctx);
	int n;

	fcntl(p->fd, F_SETFL, 0);
	SSL_set_fd(ssl, p->fd);
	if ((p->server ? SSL_accept(ssl) : SSL_connect(ssl)) == 1) {
		n = SSL_read(ssl, p->got, 8);
		if (n == 8)
			SSL_write(ssl, "back", 4);
	}
	SSL_shutdown(ssl);
	SSL_free(ssl);
	close(p->fd);
	return NULL;
}

static void
tls_accept_then_send_and_recv(void)
{
	struct event_base *base = event_base_new();
	SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	struct probe ps = { 0 };
	struct tls_peer peer = { .ctx = cctx };
	pthread_t th;
	int fds[2];
	struct io *srv;
	char buf[16];

	pair(fds);
	peer.fd = fds[1];
	srv = io_tls_accept(base, fds[0], sctx, 5, &probe_cb, &ps);
	CHECK(srv != NULL && strcmp(srv->ops->name, "tls") == 0);
	pthread_create(&th, NULL, tls_peer_main, &peer);
	RUN_UNTIL(base, ps.connected == 1);
	CHECK(ps.connected == 1);
	CHECK(io_ssl(srv) != NULL);
	io_send(srv, "over tls", 8);
	RUN_UNTIL(base, io_readable(srv) == 4);
	CHECK(io_recv(srv, buf, sizeof(buf)) == 4 && memcmp(buf, "back", 4) == 0);
	pthread_join(th, NULL);
	CHECK(memcmp(peer.got, "over tls", 8) == 0);
	io_close(srv);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	event_base_free(base);
}

static void
tls_adopt_takes_over_an_established_connection(void)
{
	struct event_base *base = event_base_new();
	SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	struct probe pc = { 0 };
	struct tls_peer peer = { .ctx = sctx, .server = true };
	pthread_t th;
	int fds[2];
	SSL *ssl;
	struct io *cli;
	char buf[16];

	pair(fds);
	peer.fd = fds[1];
	pthread_create(&th, NULL, tls_peer_main, &peer);
	/* Handshake in blocking mode, as libpq or libmariadb would, then hand the SSL over. */
	fcntl(fds[0], F_SETFL, 0);
	ssl = SSL_new(cctx);
	SSL_set_fd(ssl, fds[0]);
	CHECK(SSL_connect(ssl) == 1);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	cli = io_tls_adopt(base, fds[0], ssl, true, &probe_cb, &pc);
	CHECK(cli != NULL && io_ssl(cli) == ssl);
	io_send(cli, "adopted!", 8);
	RUN_UNTIL(base, io_readable(cli) == 4);
	CHECK(io_recv(cli, buf, sizeof(buf)) == 4 && memcmp(buf, "back", 4) == 0);
	pthread_join(th, NULL);
	CHECK(memcmp(peer.got, "adopted!", 8) == 0);
	io_close(cli);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	event_base_free(base);
}

static void
tls_handshake_garbage_is_an_error(void)
{
	struct event_base *base = event_base_new();
	SSL_CTX *sctx = server_ctx();
	struct probe ps = { 0 };
	int fds[2];
	struct io *srv;

	pair(fds);
	srv = io_tls_accept(base, fds[0], sctx, 5, &probe_cb, &ps);
	CHECK(write(fds[1], "GET / HTTP/1.0\r\n\r\n", 18) == 18);
	RUN_UNTIL(base, ps.errors + ps.eofs > 0);
	CHECK(ps.errors == 1 && ps.connected == 0);
	CHECK_CONTAINS(io_error(srv), "TLS");
	io_close(srv);
	close(fds[1]);
	SSL_CTX_free(sctx);
	event_base_free(base);
}

int
main(void)
{
	TEST(tcp_send_peek_recv_skip);
	TEST(forward_moves_bytes_between_connections);
	TEST(set_reading_off_stops_reading);
	TEST(shutdown_write_sends_eof_after_unsent_bytes);
	TEST(connect_to_closed_port_reports_error);
	TEST(tls_accept_then_send_and_recv);
	TEST(tls_adopt_takes_over_an_established_connection);
	TEST(tls_handshake_garbage_is_an_error);
	return CHECK_DONE();
}
