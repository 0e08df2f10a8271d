/*
 * bench/tls/floor: the floor of memory per idle client for any proxy built on OpenSSL. A bare
 * OpenSSL server accepts N TLS connections that present a client certificate it verifies, and
 * holds them, doing nothing else; it prints its RSS growth per connection (the slope over the
 * last two thirds, as bench/pg measures posternd and PgBouncer). Run by bench/tls/run.
 *
 *   floor PORT CERT KEY CLIENT_CA N TICKETS RELEASE_BUFFERS
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
static long rss(void) { FILE *f = fopen("/proc/self/status", "r"); char l[256]; long v = 0;
	while (fgets(l, sizeof l, f)) if (!strncmp(l, "VmRSS:", 6)) v = atol(l + 6); fclose(f); return v; }
int main(int argc, char **argv) {
	if (argc != 8) {
		fprintf(stderr, "usage: floor PORT CERT KEY CLIENT_CA N TICKETS(0|1) RELEASE_BUFFERS(0|1)\n");
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[5]);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_use_certificate_chain_file(ctx, argv[2]);
	SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM);
	SSL_CTX_load_verify_locations(ctx, argv[4], NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	if (!atoi(argv[6])) SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (atoi(argv[7])) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001) };
	bind(ls, (void *)&a, sizeof a); listen(ls, 1024);
	printf("ready\n"); fflush(stdout);
	long marks[3] = {0}; int k = n / 3;
	for (int i = 0; i <= n; i++) {
		if (i == 0 || i == k || i == n) { usleep(300000); marks[i == 0 ? 0 : i == k ? 1 : 2] = rss(); }
		if (i == n) break;
		int fd = accept(ls, NULL, NULL);
		SSL *ssl = SSL_new(ctx); SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) != 1) { ERR_print_errors_fp(stderr); return 1; }
	}
	printf("rss %ld %ld %ld: %.1f KiB per connection (slope over the last %d)\n", marks[0], marks[1], marks[2],
	    (double)(marks[2] - marks[1]) / (n - k), n - k);
	fflush(stdout); sleep(2);
	return 0;
}
