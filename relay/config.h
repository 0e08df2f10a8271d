/*
 * posternd's configuration: a Lua file evaluated in a sandbox into plain C structures.
 * A config is immutable once loaded and shared by reference count: a reload builds a new
 * one, and sessions keep the one they started with until they end.
 */
#ifndef POSTERN_CONFIG_H
#define POSTERN_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "policy/roles.h"
#include "relay/log.h"
#include "relay/util.h"

struct audit_auditor_key;

enum config_protocol {
	CONFIG_PROTOCOL_TCP = 0,
	CONFIG_PROTOCOL_POSTGRES,
	CONFIG_PROTOCOL_MYSQL,
	CONFIG_PROTOCOL_SSH,
};

struct config_target {
	char *name;			/* unique, as users name it */
	enum config_protocol protocol;
	char *address;			/* "host:port" as written (postgres: a comma-separated list) */
	struct net_addr addr;		/* the first address, resolved at load */
	struct net_addr *addrs;		/* postgres: every address of the list, resolved */
	size_t naddrs;
	char *listen;			/* tcp: where posternd listens for this target */
	struct net_addr listen_addr;
	bool benchmark_plaintext;	/* tcp: no TLS, no identity: benchmarks only */
	char *database;			/* postgres, mysql: default database */
	char *user;			/* postgres, mysql: login injected upstream */
	char *password_file;		/* postgres, mysql: file holding that login's password */
	char *ca_file;			/* postgres, mysql: CA that signs the target's certificate */
	char *sslmode;			/* postgres: libpq sslmode for the onward hop */
	char *target_session_attrs;	/* postgres: e.g. "read-write" to find the primary */
	bool lazy_connect;		/* postgres: connect = "lazy": the target at the first query */
	char *password;			/* the password_file's content, read at load; never logged */
	char *login;			/* ssh: target login */
	char *key_file;			/* ssh: private key for the onward hop */
	char *known_hosts_file;		/* ssh: the target's host key(s) */
	int line;			/* where the target is declared */
};

struct config {
	atomic_int refs;
	long generation;		/* increases with every load: policies reload when it changes */
	char *path;			/* the file, as given */
	char *node;			/* this relay's name in logs and recordings */
	int workers;			/* worker threads; 0 in the file means one per core */
	int busy_poll;			/* µs a worker polls after activity before it sleeps; 0: never */
	int worker_slice;		/* µs of CPU slice a worker thread asks the scheduler for; 0: its default */
	char *state_dir;
	char *admin_socket;
	char *log_file;			/* NULL: stderr */
	enum log_level log_level;
	double shutdown_grace;		/* seconds sessions get to end on SIGTERM */
	double connect_timeout;		/* seconds for the onward connection */
	double handshake_timeout;	/* seconds for a client's handshake */
	size_t buffer_limit;		/* bytes buffered per direction before reading stops */
	struct config_target *targets;
	size_t ntargets;
	char *roles_dir;		/* role scripts; NULL: nobody has access */
	struct roles roles;		/* loaded from roles_dir */
	long max_ttl;			/* longest credential lifetime any role may give, seconds */
	long clock_skew;		/* tolerance on certificate validity windows, seconds */
	long invite_ttl;		/* default lifetime of an invite, seconds */
	char *api_listen;		/* login API "host:port"; NULL: no login API */
	struct net_addr api_addr;
	char *api_url;			/* the URL engineers use for the login API */
	long api_max_connections;	/* open login API connections; beyond, new ones wait in the backlog */
	double api_connection_lifetime;	/* seconds a login API connection may last, whatever it does */
	char **tls_names;		/* extra DNS names / IPs for posternd's own certificate */
	size_t ntls_names;
	char *tls_cert_file;		/* operator-provided certificate for posternd's listeners */
	char *tls_key_file;
	char *listen[CONFIG_PROTOCOL_SSH + 1];	/* per protocol front: "host:port" or NULL */
	struct net_addr listen_addr[CONFIG_PROTOCOL_SSH + 1];
	size_t max_message;		/* largest message a front buffers whole (SQL text) */
	size_t max_statement;		/* bytes of a statement given to policy (longer: truncated) */
	double idle_in_transaction_timeout;	/* seconds; 0 = none */
	bool allow_truncated_statements;	/* give policy a statement whose q.text is cut, rather than deny it */
	long policy_instructions;	/* Lua instructions one policy call may run */
	size_t policy_memory;		/* bytes one policy's Lua state may hold */
	/* Session recordings (docs/audit.md). Off when no auditor key is configured. */
	char *audit_dir;			/* recordings; default state_dir/audit */
	char **auditor_key_files;		/* as configured (resolved paths) */
	struct audit_auditor_key *auditor_keys;	/* their public keys, read at load */
	size_t nauditor_keys;
	double audit_flush_interval;		/* seconds a session's events may wait in memory */
	size_t audit_chunk_size;		/* bytes of events per encrypted chunk */
	long audit_retention_days;		/* delete recordings older than this; 0: keep */
	unsigned long long audit_retention_bytes;	/* delete the oldest beyond this total; 0: no limit */
	unsigned long long audit_min_free;	/* free bytes under which new sessions are refused */
	size_t audit_queue_limit;		/* bytes waiting for the writer, all sessions together */
	bool audit_refuse;			/* audit_on_failure = "refuse": no recording, no session */
};

/*
 * Load and validate PATH. On success *OUT holds a config with one reference. On failure
 * returns -1 and writes every problem found, one "FILE:LINE: what is wrong, what is
 * expected" line each, into the malloc'd string *ERRORS (the caller frees it).
 */
int config_load(const char *path, struct config **out, char **errors) __attribute__((warn_unused_result));

struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

const struct config_target *config_target_find(const struct config *cfg, const char *name);
const char *config_protocol_name(enum config_protocol protocol);

#endif
