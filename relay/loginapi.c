/*
 * Login API transport: bounded HTTPS requests, JSON bodies, one handler per path. Everything
 * that decides is in identity.c; this file only moves bytes and maps errors to HTTP.
 */
#include "relay/loginapi.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>

#include "relay/identity.h"
#include "relay/log.h"

#define API_BODY_MAX		(64u << 10)
#define API_HEADERS_MAX		(16u << 10)
#define API_TIMEOUT_SEC		10

static struct evhttp *api_http;
static struct config **api_current;
static struct evconnlistener *api_listener;

/*
 * Connections are counted by their SSL objects: each gets an ex_data slot whose free callback
 * runs when evhttp frees the connection, whatever ended it. At api_max_connections the listener
 * stops accepting (new connections wait in the kernel's backlog, holding no descriptor of ours)
 * until one ends; and every connection gets a timer that shuts its socket down after
 * api_connection_lifetime, so a client that trickles bytes cannot keep one for ever (evhttp's
 * timeout is per read).
 */
struct api_conn {
	struct event *deadline;
	struct bufferevent *bev;	/* alive while this is: its SSL's ex_data frees this */
};

static int api_conn_index = -1;
static long api_conns;
static bool api_paused;

static void
api_conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct api_conn *c = ptr;

	if (c == NULL)
		return;
	if (c->deadline != NULL)
		event_free(c->deadline);
	free(c);
	api_conns--;
	if (api_paused && api_listener != NULL && api_conns < (*api_current)->api_max_connections) {
		api_paused = false;
		evconnlistener_enable(api_listener);
	}
}

static void
api_conn_expired(evutil_socket_t fd, short what, void *arg)
{
	struct api_conn *c = arg;
	evutil_socket_t s = c->bev != NULL ? bufferevent_getfd(c->bev) : -1;

	/* evhttp sees the end of the stream and frees the connection (and so c) itself. */
	if (s >= 0) {
		log_info("login API connection outlived its lifetime; closed", "seconds=%.0f",
		    (*api_current)->api_connection_lifetime);
		(void)shutdown(s, SHUT_RDWR);
	}
}

static struct bufferevent *
api_bevcb(struct event_base *base, void *arg)
{
	const struct config *cfg = *api_current;
	struct api_conn *c = calloc(1, sizeof(*c));
	SSL *ssl = SSL_new(identity_api_ctx());
	struct bufferevent *bev;

	/* Without TLS, evhttp would serve the connection in plaintext: a socket bufferevent it
	 * gets, but every handler refuses a connection with no SSL (api_tls). */
	if (c == NULL || ssl == NULL || SSL_set_ex_data(ssl, api_conn_index, c) != 1) {
		free(c);
		SSL_free(ssl);
		return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	api_conns++;
	if (api_conns >= cfg->api_max_connections && !api_paused && api_listener != NULL) {
		api_paused = true;
		evconnlistener_disable(api_listener);
		log_warn("login API at its connection limit; new connections wait", "max=%ld", cfg->api_max_connections);
	}
	if ((bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		SSL_free(ssl);		/* frees c too */
		return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	c->bev = bev;
	if ((c->deadline = event_new(base, -1, 0, api_conn_expired, c)) != NULL) {
		double t = cfg->api_connection_lifetime;
		struct timeval tv = { (time_t)t, (suseconds_t)((t - (double)(time_t)t) * 1e6) };

		(void)event_add(c->deadline, &tv);
	}
	return bev;
}

/* The connection's SSL; NULL (and the request refused) for one that could not get TLS. */
static SSL *
api_tls(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn != NULL ? evhttp_connection_get_bufferevent(conn) : NULL;
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;

	if (ssl == NULL)
		evhttp_send_error(req, 400, "TLS required");
	return ssl;
}

static void
api_reply(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *out = evbuffer_new();
	char *text = json_dumps(body, JSON_COMPACT);

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
	if (text != NULL) {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
		/* Replies carry certificates and TOTP secrets: wipe our copy. */
		memset(text, 0, strlen(text));
		free(text);
	}
	evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", out);
	evbuffer_free(out);
	json_decref(body);
}

/* The client's address, for rate limits and logs. */
static const char *
api_peer(struct evhttp_request *req, char *buf, size_t size)
{
	char *host = NULL;
	ev_uint16_t port = 0;

	snprintf(buf, size, "unknown");
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &host, &port);
	if (host != NULL)
		snprintf(buf, size, "%s", host);
	return buf;
}

static void
api_handle(struct evhttp_request *req, void *arg)
{
	json_t *(*handler)(const struct config *, json_t *, const char *, int *) = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char peer[64], *body;
	json_error_t jerr;
	json_t *doc, *reply;
	int status = 500;

	if (api_tls(req) == NULL)
		return;
	api_peer(req, peer, sizeof(peer));
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		api_reply(req, 405, json_pack("{s:s, s:s}", "error", "use POST with a JSON body", "code", "bad_method"));
		return;
	}
	if ((body = malloc(len + 1)) == NULL) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_remove(in, body, len);
	body[len] = '\0';
	doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	memset(body, 0, len);
	free(body);
	if (!json_is_object(doc)) {
		json_decref(doc);
		api_reply(req, 400, json_pack("{s:s, s:s}", "error", "the body must be one JSON object", "code", "bad_request"));
		return;
	}
	reply = handler(*api_current, doc, peer, &status);
	json_decref(doc);
	api_reply(req, status, reply);
}

static void
api_health(struct evhttp_request *req, void *arg)
{
	if (api_tls(req) == NULL)
		return;
	api_reply(req, 200, json_pack("{s:s, s:s}", "status", "ok", "version", POSTERN_VERSION));
}

/* The CA certificates, public: the client checks them against the pin in its invite
 * before it trusts this server with anything. */
static void
api_ca(struct evhttp_request *req, void *arg)
{
	if (api_tls(req) == NULL)
		return;
	api_reply(req, 200, json_pack("{s:s, s:s}", "ca_x509", ca_x509_pem(identity_ca()), "ca_ssh", ca_ssh_public(identity_ca())));
}

/* The targets of the user whose certificate this TLS connection presented (optional in the
 * handshake: identity says 401 without one). */
static void
api_targets(struct evhttp_request *req, void *arg)
{
	SSL *ssl = api_tls(req);
	char peer[64];
	int status = 500;
	json_t *reply;

	if (ssl == NULL)
		return;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		api_reply(req, 405, json_pack("{s:s, s:s}", "error", "use GET", "code", "bad_method"));
		return;
	}
	reply = identity_api_targets(*api_current, ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL,
	    api_peer(req, peer, sizeof(peer)), &status);
	api_reply(req, status, reply);
}

static void
api_notfound(struct evhttp_request *req, void *arg)
{
	if (api_tls(req) == NULL)
		return;
	api_reply(req, 404, json_pack("{s:s, s:s}", "error", "no such endpoint; see docs/login-api.md", "code", "not_found"));
}

int
loginapi_start(struct event_base *base, const struct config *cfg, struct config **current,
    char *err, size_t errlen)
{
	struct evconnlistener *lev;

	api_current = current;
	if (api_conn_index < 0 &&
	    (api_conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, api_conn_free)) < 0) {
		snprintf(err, errlen, "cannot create the login API");
		return -1;
	}
	if ((api_http = evhttp_new(base)) == NULL) {
		snprintf(err, errlen, "cannot create the login API");
		return -1;
	}
	evhttp_set_bevcb(api_http, api_bevcb, NULL);
	evhttp_set_max_body_size(api_http, API_BODY_MAX);
	evhttp_set_max_headers_size(api_http, API_HEADERS_MAX);
	evhttp_set_timeout(api_http, API_TIMEOUT_SEC);
	evhttp_set_allowed_methods(api_http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_cb(api_http, "/v1/enrol", api_handle, (void *)identity_api_enrol);
	evhttp_set_cb(api_http, "/v1/challenge", api_handle, (void *)identity_api_challenge);
	evhttp_set_cb(api_http, "/v1/login", api_handle, (void *)identity_api_login);
	evhttp_set_cb(api_http, "/v1/health", api_health, NULL);
	evhttp_set_cb(api_http, "/v1/ca", api_ca, NULL);
	evhttp_set_cb(api_http, "/v1/targets", api_targets, NULL);
	evhttp_set_gencb(api_http, api_notfound, NULL);
	api_listener = lev = evconnlistener_new_bind(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    128, (const struct sockaddr *)&cfg->api_addr.ss, (int)cfg->api_addr.len);
	if (lev == NULL || evhttp_bind_listener(api_http, lev) == NULL) {
		snprintf(err, errlen, "cannot listen on %s for the login API: %s", cfg->api_listen, strerror(errno));
		api_listener = NULL;
		evhttp_free(api_http);
		api_http = NULL;
		return -1;
	}
	log_info("login API listening", "listen=%s url=%s", cfg->api_listen, cfg->api_url);
	return 0;
}

void
loginapi_stop(void)
{
	api_listener = NULL;	/* evhttp frees it; connections it frees must not touch it */
	if (api_http != NULL)
		evhttp_free(api_http);
	api_http = NULL;
}
