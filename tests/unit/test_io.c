/*
 * Unit tests of the I/O table over real sockets: send, peek, recv, skip and forward over TCP,
 * backpressure through set_reading, half-close, connect, bulk transfers in large reads, the
 * callback rule, and the same calls over TLS (including an upgrade of a plain io).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
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

/* Byte I of a test stream: depends on the position, so loss, duplication or reordering shows. */
static uint8_t
stream_byte(size_t i)
{
	return (uint8_t)((i * 2654435761u) >> 24);
}

/* Forwards everything it reads to TO, counting reads. */
struct hop {
	struct io *to;
	int reads;
	size_t bytes;
};

static void
hop_read(struct io *io, void *arg)
{
	struct hop *h = arg;

	h->reads++;
	h->bytes += io_forward(io, h->to, 0);
}

static void hop_drain(struct io *io, void *arg) { }
static void hop_event(struct io *io, enum io_event ev, void *arg) { }

static const struct io_callbacks hop_cb = { hop_read, hop_drain, hop_event };

/* Consumes and checks the test stream. */
struct sink {
	size_t got;
	bool bad;
};

static void
sink_read(struct io *io, void *arg)
{
	struct sink *k = arg;
	uint8_t buf[16384];
	size_t n;

	while ((n = io_recv(io, buf, sizeof(buf))) > 0) {
		for (size_t i = 0; i < n; i++)
			if (buf[i] != stream_byte(k->got + i))
				k->bad = true;
		k->got += n;
	}
}

static const struct io_callbacks sink_cb = { sink_read, hop_drain, hop_event };

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
large_transfer_through_forward_arrives_intact_in_large_reads(void)
{
	enum { SIZE = 8 << 20 };
	struct event_base *base = event_base_new();
	struct probe ps = { 0 }, pm = { 0 };
	struct hop hop = { 0 };
	struct sink sink = { 0 };
	uint8_t *data = malloc(SIZE);
	int f1[2], f2[2];
	struct io *src, *mid_in, *mid_out, *dst;
	double end;

	for (size_t i = 0; i < SIZE; i++)
		data[i] = stream_byte(i);
	pair(f1);
	pair(f2);
	src = io_tcp_new(base, f1[0], &probe_cb, &ps);
	mid_out = io_tcp_new(base, f2[0], &probe_cb, &pm);
	hop.to = mid_out;
	mid_in = io_tcp_new(base, f1[1], &hop_cb, &hop);
	dst = io_tcp_new(base, f2[1], &sink_cb, &sink);
	CHECK(io_send(src, data, SIZE) == 0);
	end = now_sec() + 10;
	while (sink.got < SIZE && now_sec() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	CHECK(sink.got == SIZE && !sink.bad);
	CHECK(hop.bytes == SIZE);
	/* libevent's socket bufferevent read 4 KiB at a time: 2048 reads for 8 MiB. */
	printf("# %d reads for %d bytes (%zu bytes per read)\n", hop.reads, SIZE, hop.bytes / (size_t)(hop.reads ? hop.reads : 1));
	CHECK(hop.reads > 0 && hop.reads < SIZE / 4096 / 16);
	CHECK(io_unsent(src) == 0 && io_unsent(mid_out) == 0);
	CHECK(ps.errors == 0 && pm.errors == 0);
	io_close(src);
	io_close(mid_in);
	io_close(mid_out);
	io_close(dst);
	event_base_free(base);
	free(data);
}

/* Forwards as tcp.c does: stops reading FROM while TO holds LIMIT unsent, resumes on TO's drain. */
struct paced_hop {
	struct io *from, *to;
	size_t limit, max_unsent, bytes;
	int pauses, resumes;
};

static void
paced_read(struct io *io, void *arg)
{
	struct paced_hop *h = arg;

	h->bytes += io_forward(io, h->to, 0);
	if (io_unsent(h->to) > h->max_unsent)
		h->max_unsent = io_unsent(h->to);
	if (io_unsent(h->to) >= h->limit) {
		io_set_reading(io, false);
		h->pauses++;
	}
}

static void
paced_drain(struct io *io, void *arg)
{
	struct paced_hop *h = arg;

	h->resumes++;
	io_set_reading(h->from, true);
}

static const struct io_callbacks paced_in_cb = { paced_read, hop_drain, hop_event };
static const struct io_callbacks paced_out_cb = { NULL, paced_drain, hop_event };

static void
backpressure_pauses_a_forwarded_stream_and_resumes_it_when_the_reader_returns(void)
{
	enum { SIZE = 8 << 20, LIMIT = 64 << 10 };
	struct event_base *base = event_base_new();
	struct probe ps = { 0 };
	struct paced_hop hop = { .limit = LIMIT };
	struct sink sink = { 0 };
	uint8_t *data = malloc(SIZE);
	int f1[2], f2[2];
	struct io *src, *dst;
	double end;

	for (size_t i = 0; i < SIZE; i++)
		data[i] = stream_byte(i);
	pair(f1);
	pair(f2);
	src = io_tcp_new(base, f1[0], &probe_cb, &ps);
	hop.from = io_tcp_new(base, f1[1], &paced_in_cb, &hop);
	hop.to = io_tcp_new(base, f2[0], &paced_out_cb, &hop);
	io_set_limit(hop.to, LIMIT);
	dst = io_tcp_new(base, f2[1], &sink_cb, &sink);
	io_set_reading(dst, false);		/* a reader that pauses */
	CHECK(io_send(src, data, SIZE) == 0);
	end = now_sec() + 0.3;
	while (now_sec() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	CHECK(sink.got == 0 && hop.pauses >= 1);
	/* Held: at most the limit plus what one forward can add. */
	CHECK(hop.max_unsent < LIMIT + (1u << 20));
	CHECK(hop.bytes < SIZE);
	io_set_reading(dst, true);
	end = now_sec() + 10;
	while (sink.got < SIZE && now_sec() < end)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	CHECK(sink.got == SIZE && !sink.bad);
	CHECK(hop.resumes >= 1);
	io_close(src);
	io_close(hop.from);
	io_close(hop.to);
	io_close(dst);
	event_base_free(base);
	free(data);
}

/* A send the socket takes whole, then one it cannot: the rest must go once the peer reads
 * (the first leaves a drain to report from the loop; the second must still wait for POLLOUT). */
static void
send_beyond_the_socket_buffer_finishes_when_the_peer_reads(void)
{
	enum { SIZE = 4 << 20 };
	struct event_base *base = event_base_new();
	struct probe pa = { 0 };
	uint8_t *data = malloc(SIZE), buf[65536];
	int fds[2];
	size_t got = 0;
	ssize_t n;
	struct io *a;
	double end;

	for (size_t i = 0; i < SIZE; i++)
		data[i] = stream_byte(i);
	pair(fds);
	a = io_tcp_new(base, fds[0], &probe_cb, &pa);
	CHECK(io_send(a, data, 10) == 0);
	CHECK(io_unsent(a) == 0);		/* sent at once */
	CHECK(io_send(a, data + 10, SIZE - 10) == 0);
	CHECK(io_unsent(a) > 0);		/* the socket is full */
	for (int i = 0; i < 10; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	end = now_sec() + 10;
	while (got < SIZE && now_sec() < end) {
		while ((n = read(fds[1], buf, sizeof(buf))) > 0) {
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] != stream_byte(got + (size_t)i))
					pa.errors++;
			got += (size_t)n;
		}
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	CHECK(got == SIZE && pa.errors == 0);
	CHECK(io_unsent(a) == 0 && pa.drains >= 1);
	io_close(a);
	close(fds[1]);
	event_base_free(base);
	free(data);
}

/* Closes the io from inside its own on_read. */
static void
close_self_read(struct io *io, void *arg)
{
	(*(int *)arg)++;
	io_close(io);
}

static const struct io_callbacks close_self_cb = { close_self_read, hop_drain, hop_event };

static void
callback_may_close_its_own_io_in_the_middle_of_a_bulk_read(void)
{
	struct event_base *base = event_base_new();
	static uint8_t chunk[128 << 10];
	int fds[2], calls = 0;
	struct io *a;

	pair(fds);
	a = io_tcp_new(base, fds[0], &close_self_cb, &calls);
	/* More than one read's worth is waiting, so the read loop would go round again. */
	for (int i = 0; i < 8; i++)
		if (write(fds[1], chunk, sizeof(chunk)) < 0)
			break;
	RUN_UNTIL(base, calls > 0);
	for (int i = 0; i < 20; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	CHECK(calls == 1);
	close(fds[1]);
	event_base_free(base);
	(void)a;
}

static void
write_to_a_closed_peer_is_reported_from_the_loop(void)
{
	struct event_base *base = event_base_new();
	static uint8_t chunk[64 << 10];
	struct probe pa = { 0 };
	int fds[2];
	struct io *a;

	pair(fds);
	a = io_tcp_new(base, fds[0], &probe_cb, &pa);
	close(fds[1]);
	CHECK(io_send(a, chunk, sizeof(chunk)) == 0);
	CHECK(pa.errors == 0);		/* never a callback from inside an io_* call */
	/* An EOF may come first (the read side sees the close too); the error comes in any case. */
	RUN_UNTIL(base, pa.errors > 0);
	CHECK(pa.errors == 1);
	CHECK_CONTAINS(io_error(a), "write failed");
	io_close(a);
	event_base_free(base);
}

/* A listening socket on 127.0.0.1 and an ephemeral port, its address in ADDR. */
static int
listen_local(struct net_addr *addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		abort();
	memset(addr, 0, sizeof(*addr));
	memcpy(&addr->ss, &sin, sizeof(sin));
	addr->len = sizeof(sin);
	return fd;
}

static void
bytes_and_half_close_sent_while_connecting_follow_the_connect(void)
{
	struct event_base *base = event_base_new();
	struct probe p = { 0 };
	struct net_addr addr;
	int lfd = listen_local(&addr), cfd;
	struct io *io;
	char buf[16];
	ssize_t n;
	size_t got = 0;

	io = io_tcp_connect(base, &addr, 5, &probe_cb, &p);
	CHECK(io != NULL && strcmp(io->ops->name, "tcp") == 0);
	CHECK(io_send(io, "early", 5) == 0);
	io_shutdown_write(io);
	CHECK(p.connected == 0);	/* never from inside io_tcp_connect */
	RUN_UNTIL(base, p.connected == 1);
	CHECK(p.connected == 1 && p.errors == 0);
	RUN_UNTIL(base, io_unsent(io) == 0);
	for (int i = 0; i < 20; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	cfd = accept(lfd, NULL, NULL);
	CHECK(cfd >= 0);
	while (got < sizeof(buf) && (n = read(cfd, buf + got, sizeof(buf) - got)) > 0)
		got += (size_t)n;
	CHECK(got == 5 && memcmp(buf, "early", 5) == 0);	/* then EOF: the half-close came after */
	/* The other direction still works. */
	CHECK(write(cfd, "answer", 6) == 6);
	RUN_UNTIL(base, io_readable(io) == 6);
	CHECK(io_recv(io, buf, sizeof(buf)) == 6 && memcmp(buf, "answer", 6) == 0);
	close(cfd);
	RUN_UNTIL(base, p.eofs == 1);
	CHECK(p.eofs == 1);
	io_close(io);
	close(lfd);
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

/* Answers a plain one-byte request with 'S', as a PostgreSQL front would, then upgrades. */
static SSL_CTX *upgrade_ctx;

static void
upgrade_read(struct io *io, void *arg)
{
	struct probe *p = arg;
	char c;

	p->reads++;
	if (strcmp(io->ops->name, "tcp") != 0 || io_readable(io) != 1)
		return;
	CHECK(io_recv(io, &c, 1) == 1 && c == '?');
	CHECK(write(io_fd(io), "S", 1) == 1);
	CHECK(io_upgrade_tls_accept(io, upgrade_ctx, 5) == 0);
}

static const struct io_callbacks upgrade_cb = { upgrade_read, probe_drain, probe_event };

/* The client side of the upgrade, blocking on its own thread. */
static void *
upgrade_peer_main(void *arg)
{
	struct tls_peer *p = arg;
	char c = 0;

	fcntl(p->fd, F_SETFL, 0);
	if (write(p->fd, "?", 1) == 1 && read(p->fd, &c, 1) == 1 && c == 'S') {
		p->server = false;
		tls_peer_main(p);	/* handshake, read 8, answer "back", close */
		return NULL;
	}
	close(p->fd);
	return NULL;
}

static void
upgrade_turns_a_plain_io_into_tls_on_the_same_socket(void)
{
	struct event_base *base = event_base_new();
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	struct probe ps = { 0 };
	struct tls_peer peer = { .ctx = cctx };
	pthread_t th;
	int fds[2];
	struct io *srv;
	char buf[16];

	upgrade_ctx = server_ctx();
	pair(fds);
	peer.fd = fds[1];
	srv = io_tcp_new(base, fds[0], &upgrade_cb, &ps);
	io_set_limit(srv, 1 << 16);
	pthread_create(&th, NULL, upgrade_peer_main, &peer);
	RUN_UNTIL(base, ps.connected == 1 || ps.errors > 0);
	CHECK(ps.connected == 1 && strcmp(srv->ops->name, "tls") == 0 && io_ssl(srv) != NULL);
	CHECK(io_fd(srv) == fds[0]);
	io_send(srv, "upgraded", 8);
	RUN_UNTIL(base, io_readable(srv) == 4);
	CHECK(io_recv(srv, buf, sizeof(buf)) == 4 && memcmp(buf, "back", 4) == 0);
	pthread_join(th, NULL);
	CHECK(memcmp(peer.got, "upgraded", 8) == 0);
	io_close(srv);
	SSL_CTX_free(upgrade_ctx);
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
	TEST(large_transfer_through_forward_arrives_intact_in_large_reads);
	TEST(backpressure_pauses_a_forwarded_stream_and_resumes_it_when_the_reader_returns);
	TEST(send_beyond_the_socket_buffer_finishes_when_the_peer_reads);
	TEST(callback_may_close_its_own_io_in_the_middle_of_a_bulk_read);
	TEST(write_to_a_closed_peer_is_reported_from_the_loop);
	TEST(bytes_and_half_close_sent_while_connecting_follow_the_connect);
	TEST(tls_accept_then_send_and_recv);
	TEST(tls_adopt_takes_over_an_established_connection);
	TEST(upgrade_turns_a_plain_io_into_tls_on_the_same_socket);
	TEST(tls_handshake_garbage_is_an_error);
	return CHECK_DONE();
}
