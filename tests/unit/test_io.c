/*
 * Unit tests of the I/O table over real sockets: send, peek, recv, skip and forward over TCP,
 * backpressure through set_reading, half-close, connect, bulk transfers in large reads, the
 * callback rule, and the same over TLS: writes without a loop turn and one record per reply,
 * bulk reads of many records, backpressure over what OpenSSL already decrypted, EOF with and
 * without close_notify, handshake errors and timeouts, adopting a connection the io does not
 * own, and an upgrade of a plain io.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
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
	int reads, drains, eofs, errors, connected, timeouts;
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
	else if (ev == IO_EVENT_TIMEOUT)
		p->timeouts++;
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
	CHECK(pa.drains == 0);	/* written at once, and nobody looked at unsent: no on_drain owed */
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

/* --- TLS driven by the io itself ---------------------------------------------------------- */

/* A self-signed P-256 certificate and its key, for CN. */
static X509 *
self_signed(const char *cn, EVP_PKEY **key)
{
	X509 *x = X509_new();

	*key = EVP_EC_gen("P-256");
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, *key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, *key, EVP_sha256());
	return x;
}

/* Both ends of a TLS connection on this thread: the io under test and a nonblocking OpenSSL
 * peer that the test drives by hand. */
struct tls_pair {
	struct event_base *base;
	SSL_CTX *sctx, *cctx;
	struct io *io;		/* server side, io_tls_accept */
	SSL *peer;		/* client side */
	int peer_fd;
};

/* A connected pair of nonblocking TCP sockets on loopback. */
static void
tcp_pair(int fds[2])
{
	struct net_addr addr;
	int lfd = listen_local(&addr);

	fds[1] = socket(AF_INET, SOCK_STREAM, 0);
	if (fds[1] < 0 || connect(fds[1], (struct sockaddr *)&addr.ss, addr.len) != 0 ||
	    (fds[0] = accept(lfd, NULL, NULL)) < 0)
		abort();
	close(lfd);
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	fcntl(fds[1], F_SETFL, O_NONBLOCK);
}

/* Over a socketpair, or with TCP over TCP on loopback (larger socket buffers). */
static bool
tls_pair_open_over(struct tls_pair *tp, bool tcp, const struct io_callbacks *cb, void *arg, const int *connected)
{
	int fds[2], r = 0;

	memset(tp, 0, sizeof(*tp));
	tp->base = event_base_new();
	tp->sctx = server_ctx();
	SSL_CTX_set_num_tickets(tp->sctx, 0);	/* no records but the test's own */
	tp->cctx = SSL_CTX_new(TLS_client_method());
	if (tcp)
		tcp_pair(fds);
	else
		pair(fds);
	tp->io = io_tls_accept(tp->base, fds[0], tp->sctx, 5, cb, arg);
	tp->peer = SSL_new(tp->cctx);
	tp->peer_fd = fds[1];
	SSL_set_fd(tp->peer, fds[1]);
	for (int i = 0; i < 2000 && (r != 1 || !*connected); i++) {
		if (r != 1)
			r = SSL_connect(tp->peer);
		event_base_loop(tp->base, EVLOOP_NONBLOCK);
		usleep(100);
	}
	return r == 1 && *connected;
}

static bool
tls_pair_open(struct tls_pair *tp, const struct io_callbacks *cb, void *arg, const int *connected)
{
	return tls_pair_open_over(tp, false, cb, arg, connected);
}

static void
tls_pair_close(struct tls_pair *tp)
{
	if (tp->io != NULL)
		io_close(tp->io);
	if (tp->peer != NULL)
		SSL_free(tp->peer);
	if (tp->peer_fd >= 0)
		close(tp->peer_fd);
	SSL_CTX_free(tp->sctx);
	SSL_CTX_free(tp->cctx);
	event_base_free(tp->base);
}

/* TLS records waiting in FD's receive buffer (looked at, not consumed). */
static int
records_waiting(int fd)
{
	static uint8_t buf[1 << 18];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	int count = 0;

	for (ssize_t at = 0; n > 0 && at + 5 <= n; count++)
		at += 5 + (buf[at + 3] << 8 | buf[at + 4]);
	return count;
}

/* The peer reads what it can, up to LEN, within a second. */
static size_t
peer_read(struct tls_pair *tp, void *buf, size_t len)
{
	size_t got = 0;

	for (int i = 0; i < 1000 && got < len; i++) {
		int n = SSL_read(tp->peer, (uint8_t *)buf + got, (int)(len - got));

		if (n > 0)
			got += (size_t)n;
		else if (SSL_get_error(tp->peer, n) != SSL_ERROR_WANT_READ)
			break;
		else
			event_base_loop(tp->base, EVLOOP_NONBLOCK), usleep(1000);
	}
	return got;
}

static void
tls_send_outside_a_callback_is_written_at_once(void)
{
	struct probe p = { 0 };
	struct tls_pair tp;
	char buf[16] = { 0 };

	CHECK(tls_pair_open(&tp, &probe_cb, &p, &p.connected));
	CHECK(io_send(tp.io, "at once", 7) == 0);
	/* No loop turn: the record is already in the peer's socket. */
	CHECK(io_unsent(tp.io) == 0);
	CHECK(records_waiting(tp.peer_fd) == 1);
	CHECK(peer_read(&tp, buf, 7) == 7 && memcmp(buf, "at once", 7) == 0);
	CHECK(p.errors == 0 && p.eofs == 0);
	tls_pair_close(&tp);
}

/* Answers each read with three messages, as a relay forwards a reply message by message. */
struct replier {
	int reads, connected;
	size_t got;
};

static void
replier_read(struct io *io, void *arg)
{
	struct replier *r = arg;
	char buf[64];

	r->reads++;
	r->got += io_recv(io, buf, sizeof(buf));
	CHECK(io_send(io, "RowDescription;", 15) == 0);
	CHECK(io_send(io, "DataRow;", 8) == 0);
	CHECK(io_send(io, "ReadyForQuery", 13) == 0);
}

static void
replier_event(struct io *io, enum io_event ev, void *arg)
{
	if (ev == IO_EVENT_CONNECTED)
		((struct replier *)arg)->connected = 1;
}

static const struct io_callbacks replier_cb = { replier_read, hop_drain, replier_event };

static void
tls_reply_sent_in_a_callback_leaves_as_one_record_in_the_same_loop_turn(void)
{
	struct replier r = { 0 };
	struct tls_pair tp;
	char buf[64] = { 0 };
	int turns = 0;

	CHECK(tls_pair_open(&tp, &replier_cb, &r, &r.connected));
	CHECK(SSL_write(tp.peer, "Query", 5) == 5);
	while (r.reads == 0 && turns++ < 1000) {
		event_base_loop(tp.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		if (r.reads == 0)
			usleep(1000);
	}
	CHECK(r.reads == 1 && r.got == 5);
	/* The loop turn that read the query wrote the reply, in one record (libevent's OpenSSL
	 * bufferevent wrote on the next turn, after epoll said the socket was writable). */
	CHECK(records_waiting(tp.peer_fd) == 1);
	CHECK(io_unsent(tp.io) == 0);
	CHECK(peer_read(&tp, buf, 36) == 36 && memcmp(buf, "RowDescription;DataRow;ReadyForQuery", 36) == 0);
	tls_pair_close(&tp);
}

/* Counts reads and checks the test stream; records how the stream ended. */
struct tls_sink {
	struct sink sink;
	int reads, eofs, errors, connected;
	char error[128];
};

static void
tls_sink_read(struct io *io, void *arg)
{
	struct tls_sink *k = arg;

	k->reads++;
	sink_read(io, &k->sink);
}

static void
tls_sink_event(struct io *io, enum io_event ev, void *arg)
{
	struct tls_sink *k = arg;

	if (ev == IO_EVENT_CONNECTED) {
		k->connected = 1;
	} else if (ev == IO_EVENT_EOF) {
		sink_read(io, &k->sink);
		k->eofs++;
	} else {
		k->errors++;
		snprintf(k->error, sizeof(k->error), "%s", io_error(io));
	}
}

static const struct io_callbacks tls_sink_cb = { tls_sink_read, hop_drain, tls_sink_event };

static void
tls_large_transfer_arrives_intact_in_few_reads_then_eof(void)
{
	enum { SIZE = 8 << 20 };
	struct tls_sink k = { 0 };
	struct probe ps = { 0 };
	struct tls_pair tp;
	uint8_t *data = malloc(SIZE);
	struct io *src;
	double end;

	for (size_t i = 0; i < SIZE; i++)
		data[i] = stream_byte(i);
	CHECK(tls_pair_open_over(&tp, true, &tls_sink_cb, &k, &k.connected));
	/* The peer's side becomes an io too, which sends the stream as fast as the reader takes it. */
	src = io_tls_adopt(tp.base, tp.peer_fd, tp.peer, true, &probe_cb, &ps);
	CHECK(src != NULL);
	tp.peer = NULL;
	tp.peer_fd = -1;
	CHECK(io_send(src, data, SIZE) == 0);
	end = now_sec() + 20;
	while (k.sink.got < SIZE && k.errors == 0 && now_sec() < end)
		event_base_loop(tp.base, EVLOOP_ONCE);
	CHECK(k.sink.got == SIZE && !k.sink.bad && k.errors == 0);
	/* One record (16 KiB) per wakeup, as libevent's OpenSSL bufferevent read, would be 512. */
	printf("# %d reads for %d bytes over TLS (%zu bytes per read)\n", k.reads, SIZE, k.sink.got / (size_t)(k.reads ? k.reads : 1));
	CHECK(k.reads > 0 && k.reads < SIZE / 16384 / 4);
	CHECK(io_unsent(src) == 0 && ps.errors == 0);
	/* Closing sends close_notify: an EOF at the other end. */
	io_close(src);
	RUN_UNTIL(tp.base, k.eofs + k.errors > 0);
	CHECK(k.eofs == 1 && k.errors == 0);
	tls_pair_close(&tp);
	free(data);
}

static void
tls_eof_without_close_notify_is_an_eof_after_the_last_bytes(void)
{
	struct tls_sink k = { 0 };
	struct tls_pair tp;
	uint8_t data[100];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = stream_byte(i);
	CHECK(tls_pair_open(&tp, &tls_sink_cb, &k, &k.connected));
	CHECK(SSL_write(tp.peer, data, sizeof(data)) == (int)sizeof(data));
	close(tp.peer_fd);	/* most clients just close: no close_notify */
	tp.peer_fd = -1;
	RUN_UNTIL(tp.base, k.eofs + k.errors > 0);
	CHECK(k.eofs == 1 && k.errors == 0);
	CHECK(k.sink.got == sizeof(data) && !k.sink.bad);
	tls_pair_close(&tp);
}

static void
tls_close_notify_is_an_eof(void)
{
	struct tls_sink k = { 0 };
	struct tls_pair tp;
	char buf[8];

	CHECK(tls_pair_open(&tp, &tls_sink_cb, &k, &k.connected));
	CHECK(SSL_shutdown(tp.peer) == 0);
	RUN_UNTIL(tp.base, k.eofs + k.errors > 0);
	CHECK(k.eofs == 1 && k.errors == 0);
	/* The io answers with its own close_notify when it is closed. */
	io_close(tp.io);
	tp.io = NULL;
	CHECK(SSL_read(tp.peer, buf, sizeof(buf)) == 0 && SSL_get_error(tp.peer, 0) == SSL_ERROR_ZERO_RETURN);
	tls_pair_close(&tp);
}

/* Stops reading after the first block; records what it saw. */
struct pauser {
	int reads, connected;
	size_t first;
};

static void
pauser_read(struct io *io, void *arg)
{
	struct pauser *p = arg;

	if (p->reads++ == 0) {
		p->first = io_readable(io);
		io_set_reading(io, false);
	}
}

static void
pauser_event(struct io *io, enum io_event ev, void *arg)
{
	if (ev == IO_EVENT_CONNECTED)
		((struct pauser *)arg)->connected = 1;
}

static const struct io_callbacks pauser_cb = { pauser_read, hop_drain, pauser_event };

static void
tls_set_reading_off_also_holds_what_openssl_already_has(void)
{
	enum { RECORD = 4000, RECORDS = 3 };
	struct pauser p = { 0 };
	struct tls_pair tp;
	uint8_t data[RECORD] = { 0 };

	CHECK(tls_pair_open(&tp, &pauser_cb, &p, &p.connected));
	for (int i = 0; i < RECORDS; i++)
		CHECK(SSL_write(tp.peer, data, RECORD) == RECORD);
	usleep(10000);		/* all three records are in the socket */
	RUN_UNTIL(tp.base, p.reads > 0);
	CHECK(p.reads == 1 && p.first > 0 && p.first < RECORDS * RECORD);
	/* The socket is empty now (OpenSSL read ahead), but the rest must wait while paused. */
	for (int i = 0; i < 50; i++)
		event_base_loop(tp.base, EVLOOP_NONBLOCK);
	CHECK(p.reads == 1 && io_readable(tp.io) == p.first);
	CHECK(records_waiting(tp.peer_fd) == 0);
	/* Resumed: what OpenSSL holds comes in without anything new on the socket. */
	io_set_reading(tp.io, true);
	RUN_UNTIL(tp.base, io_readable(tp.io) == RECORDS * RECORD);
	CHECK(io_readable(tp.io) == RECORDS * RECORD);
	CHECK(p.reads >= 2);
	tls_pair_close(&tp);
}

/* The peer for a refused handshake: its own certificate, which the server does not trust. */
struct cert_peer {
	SSL_CTX *ctx;
	int fd;
	int result;
};

static void *
cert_peer_main(void *arg)
{
	struct cert_peer *p = arg;
	SSL *ssl = SSL_new(p->ctx);
	char c;

	fcntl(p->fd, F_SETFL, 0);
	SSL_set_fd(ssl, p->fd);
	p->result = SSL_connect(ssl);
	if (p->result == 1)
		(void)SSL_read(ssl, &c, 1);	/* TLS 1.3: the refusal comes after the client's Finished */
	SSL_free(ssl);
	close(p->fd);
	return NULL;
}

static void
tls_handshake_with_a_certificate_from_another_ca_is_an_error_saying_why(void)
{
	struct event_base *base = event_base_new();
	SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	struct cert_peer peer = { .ctx = cctx };
	struct probe ps = { 0 };
	EVP_PKEY *ca_key, *client_key;
	X509 *ca = self_signed("trusted CA", &ca_key), *client = self_signed("stranger", &client_key);
	pthread_t th;
	int fds[2];
	struct io *srv;

	/* The server wants a client certificate from CA; the client's is signed by nobody it knows. */
	X509_STORE_add_cert(SSL_CTX_get_cert_store(sctx), ca);
	SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_use_certificate(cctx, client);
	SSL_CTX_use_PrivateKey(cctx, client_key);
	pair(fds);
	peer.fd = fds[1];
	srv = io_tls_accept(base, fds[0], sctx, 5, &probe_cb, &ps);
	pthread_create(&th, NULL, cert_peer_main, &peer);
	RUN_UNTIL(base, ps.errors + ps.eofs + ps.connected > 0);
	CHECK(ps.errors == 1 && ps.connected == 0 && ps.eofs == 0);
	CHECK_CONTAINS(io_error(srv), "handshake failed: TLS: ");
	CHECK_CONTAINS(io_error(srv), "certificate verify failed");
	printf("# %s\n", io_error(srv));
	pthread_join(th, NULL);
	io_close(srv);
	X509_free(ca);
	X509_free(client);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(client_key);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	event_base_free(base);
}

static void
tls_handshake_that_does_not_finish_in_time_is_a_timeout(void)
{
	struct event_base *base = event_base_new();
	SSL_CTX *sctx = server_ctx();
	struct probe ps = { 0 };
	int fds[2];
	struct io *srv;
	double start = now_sec();

	pair(fds);
	srv = io_tls_accept(base, fds[0], sctx, 0.2, &probe_cb, &ps);
	RUN_UNTIL(base, ps.timeouts + ps.errors + ps.eofs > 0);	/* the peer never speaks */
	CHECK(ps.timeouts == 1 && ps.errors == 0 && ps.connected == 0);
	CHECK(now_sec() - start >= 0.19);
	CHECK_CONTAINS(io_error(srv), "timed out");
	io_close(srv);
	close(fds[1]);
	SSL_CTX_free(sctx);
	event_base_free(base);
}

/* Handshake two SSL objects over FDS on this thread (nonblocking). */
static bool
handshake_by_hand(SSL *client, SSL *server)
{
	int c = 0, s = 0;

	for (int i = 0; i < 2000 && (c != 1 || s != 1); i++) {
		if (c != 1)
			c = SSL_connect(client);
		if (s != 1)
			s = SSL_accept(server);
		usleep(100);
	}
	return c == 1 && s == 1;
}

static void
tls_adopt_without_owning_leaves_the_socket_and_ssl_to_their_owner(void)
{
	struct event_base *base = event_base_new();
	SSL_CTX *sctx = server_ctx(), *cctx = SSL_CTX_new(TLS_client_method());
	SSL *client = SSL_new(cctx), *server = SSL_new(sctx);
	struct probe pc = { 0 };
	int fds[2];
	struct io *io;
	char buf[16] = { 0 };
	int n = 0;

	pair(fds);
	SSL_set_fd(client, fds[0]);
	SSL_set_fd(server, fds[1]);
	CHECK(handshake_by_hand(client, server));
	/* As libpq's: a BIO of its own is kept (here OpenSSL's socket BIO; the io must not swap it). */
	BIO *bio = SSL_get_rbio(client);
	io = io_tls_adopt(base, fds[0], client, false, &probe_cb, &pc);
	CHECK(io != NULL && io_ssl(io) == client && SSL_get_rbio(client) == bio);
	CHECK((SSL_get_mode(client) & SSL_MODE_RELEASE_BUFFERS) != 0);
	CHECK(io_send(io, "adopted", 7) == 0);
	for (int i = 0; i < 1000 && n <= 0; i++)
		if ((n = SSL_read(server, buf, sizeof(buf))) <= 0)
			usleep(1000);
	CHECK(n == 7 && memcmp(buf, "adopted", 7) == 0);
	CHECK(SSL_write(server, "reply", 5) == 5);
	RUN_UNTIL(base, io_readable(io) == 5);
	CHECK(io_recv(io, buf, sizeof(buf)) == 5 && memcmp(buf, "reply", 5) == 0);
	io_close(io);
	/* The owner's socket and SSL object still work: libpq says goodbye with them. */
	CHECK(fcntl(fds[0], F_GETFD) != -1);
	CHECK(SSL_write(client, "goodbye", 7) == 7);
	n = 0;
	for (int i = 0; i < 1000 && n <= 0; i++)
		if ((n = SSL_read(server, buf, sizeof(buf))) <= 0)
			usleep(1000);
	CHECK(n == 7 && memcmp(buf, "goodbye", 7) == 0);
	CHECK(pc.errors == 0 && pc.eofs == 0);
	SSL_free(client);
	SSL_free(server);
	close(fds[0]);
	close(fds[1]);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	event_base_free(base);
}

/* Closes the io from inside its own on_read. */
struct closer {
	int connected, calls;
};

static void
closer_read(struct io *io, void *arg)
{
	((struct closer *)arg)->calls++;
	io_close(io);
}

static void
closer_event(struct io *io, enum io_event ev, void *arg)
{
	if (ev == IO_EVENT_CONNECTED)
		((struct closer *)arg)->connected = 1;
}

static const struct io_callbacks closer_cb = { closer_read, hop_drain, closer_event };

static void
tls_callback_may_close_its_own_io_in_the_middle_of_a_bulk_read(void)
{
	static uint8_t chunk[16 << 10];
	struct closer c = { 0 };
	struct tls_pair tp;

	CHECK(tls_pair_open(&tp, &closer_cb, &c, &c.connected));
	/* More than one block's worth, so the read pass would go round again. */
	for (int i = 0; i < 6; i++)
		CHECK(SSL_write(tp.peer, chunk, sizeof(chunk)) == (int)sizeof(chunk));
	RUN_UNTIL(tp.base, c.calls > 0);
	for (int i = 0; i < 20; i++)
		event_base_loop(tp.base, EVLOOP_NONBLOCK);
	CHECK(c.calls == 1);
	tp.io = NULL;		/* closed by its callback */
	tls_pair_close(&tp);
}

static void
tls_write_to_a_closed_peer_is_reported_from_the_loop(void)
{
	static uint8_t chunk[64 << 10];
	struct tls_sink k = { 0 };
	struct tls_pair tp;

	CHECK(tls_pair_open(&tp, &tls_sink_cb, &k, &k.connected));
	SSL_free(tp.peer);
	tp.peer = NULL;
	close(tp.peer_fd);
	tp.peer_fd = -1;
	CHECK(io_send(tp.io, chunk, sizeof(chunk)) == 0);
	CHECK(k.errors == 0 && k.eofs == 0);	/* never a callback from inside an io_* call */
	RUN_UNTIL(tp.base, k.errors > 0);
	CHECK(k.errors == 1);
	CHECK_CONTAINS(k.error, "write failed");
	tls_pair_close(&tp);
}

int
main(void)
{
	/* As posternd does: OpenSSL's socket BIO writes with write(2), and a peer that went away
	 * must be an error to report, not the end of the process. */
	signal(SIGPIPE, SIG_IGN);
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
	TEST(tls_send_outside_a_callback_is_written_at_once);
	TEST(tls_reply_sent_in_a_callback_leaves_as_one_record_in_the_same_loop_turn);
	TEST(tls_large_transfer_arrives_intact_in_few_reads_then_eof);
	TEST(tls_eof_without_close_notify_is_an_eof_after_the_last_bytes);
	TEST(tls_close_notify_is_an_eof);
	TEST(tls_set_reading_off_also_holds_what_openssl_already_has);
	TEST(tls_handshake_with_a_certificate_from_another_ca_is_an_error_saying_why);
	TEST(tls_handshake_that_does_not_finish_in_time_is_a_timeout);
	TEST(tls_adopt_without_owning_leaves_the_socket_and_ssl_to_their_owner);
	TEST(tls_callback_may_close_its_own_io_in_the_middle_of_a_bulk_read);
	TEST(tls_write_to_a_closed_peer_is_reported_from_the_loop);
	return CHECK_DONE();
}
