/*
 * The recording writer. A worker appends events to its recording's in-memory chunk (a memcpy,
 * no system call); a full chunk, or one older than the flush interval, is handed to the writer
 * thread through a locked queue. The writer thread alone encrypts, hashes, signs and writes,
 * so a worker never waits on disk or crypto. It also watches the audit directory's free space
 * and applies retention.
 *
 * Threads: audit_rec_* calls for one recording come from one thread (its session's worker);
 * audit_writer_* may be called from any thread.
 */
#ifndef POSTERN_AUDIT_WRITER_H
#define POSTERN_AUDIT_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/format.h"

struct audit_rec;

/* What the plaintext header says about a session. Strings may be NULL (written as ""). */
struct audit_rec_info {
	const char *session;		/* 16 hex digits */
	const char *user, *target, *login, *protocol, *database, *client, *node, *role;
	const char *const *roles;
	size_t nroles;
	uint64_t serial;		/* the client certificate's serial, 0 if none */
	uint64_t start_us;		/* session start, microseconds since the epoch */
};

/* What the writer thread does besides writing; settable again at any time. */
struct audit_writer_settings {
	const char *dir;		/* the audit directory (free space, retention) */
	uint64_t min_free;		/* bytes free under which recording is unhealthy */
	long retention_days;		/* delete recordings older than this; 0: keep */
	uint64_t retention_bytes;	/* delete the oldest while the total is over this; 0: no limit */
	size_t queue_limit;		/* bytes of chunks waiting for the writer, all recordings */
};

struct audit_writer_stats {
	uint64_t bytes_in;		/* event bytes written (plaintext) */
	uint64_t bytes_out;		/* file bytes written */
	uint64_t chunks, signatures, recordings;
	uint64_t cpu_ns;		/* CPU time of the writer thread */
};

/* Start the writer thread, signing with KEY (copied). 0 or -1 with ERR. */
int audit_writer_start(const struct audit_node_key *key, const struct audit_writer_settings *set, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/* Write out everything queued, then stop the thread. Recordings still open stay unfinished. */
void audit_writer_stop(void);
void audit_writer_configure(const struct audit_writer_settings *set);
/* False with REASON when recordings cannot be written (low space, a failed write, no thread). */
bool audit_writer_healthy(char *reason, size_t rlen);
/* Run the free-space check now (also runs every second on the writer thread). */
void audit_writer_check_now(void);
/* FN(session, reason) runs on the writer thread when a recording's write fails; reason is static. */
void audit_writer_on_failure(void (*fn)(const char *session, const char *reason));
void audit_writer_get_stats(struct audit_writer_stats *out);

/*
 * Begin the recording of INFO's session in DIR (the file is created by the writer thread at
 * the first flush), sealed to the NAUDITORS public keys of AUDITORS (copied), in chunks of
 * about CHUNK_SIZE bytes. NULL with ERR when out of memory or the writer is not running.
 */
struct audit_rec *audit_rec_open(const char *dir, const struct audit_rec_info *info,
    const struct audit_auditor_key *auditors, size_t nauditors, size_t chunk_size, char *err, size_t errlen);
/* Room for one event payload of up to MAX bytes; NULL when out of memory. Then commit it. */
uint8_t *audit_rec_reserve(struct audit_rec *rec, size_t max);
void audit_rec_commit(struct audit_rec *rec, uint8_t type, uint64_t ts_us, size_t len);
/* Reserve, copy and commit in one. */
void audit_rec_event(struct audit_rec *rec, uint8_t type, uint64_t ts_us, const void *payload, size_t len);
/* Events appended and not yet handed to the writer. */
bool audit_rec_pending(const struct audit_rec *rec);
/*
 * Hand the buffered events to the writer. -1 when the writer's queue is over its limit: the
 * events are dropped and counted in audit_rec_dropped().
 */
int audit_rec_flush(struct audit_rec *rec);
uint64_t audit_rec_dropped(const struct audit_rec *rec);
/* The file the recording goes to. */
const char *audit_rec_path(const struct audit_rec *rec);
/* Flush with the FINAL tag and close the file; REC belongs to the writer from here. */
void audit_rec_close(struct audit_rec *rec);

#endif
