/*
 * Reading recordings back: the plaintext header (no key needed), the check of every record
 * and signature against the node's key, and, with an auditor's secret key, the decrypted
 * events. One pass does all three, so `verify --key`, `show`, `export` and `search` share it.
 */
#ifndef POSTERN_AUDIT_READER_H
#define POSTERN_AUDIT_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "audit/format.h"

struct audit_file {
	char *path;
	int fd;
	uint64_t size;			/* at open */
	const uint8_t *map;		/* the whole file, read-only (NULL until audit_file_check) */
	json_t *header;			/* the parsed header */
	size_t body;			/* offset of the first record */
};

/*
 * Open PATH and parse its header. 0; -1 with ERR when it cannot be read; -2 with ERR when it
 * is not a well-formed recording (bad magic or header: for verify, tampered).
 */
int audit_file_open(const char *path, struct audit_file *f, char *err, size_t errlen) __attribute__((warn_unused_result));
void audit_file_close(struct audit_file *f);
/* A header field as a string, "" when missing. */
const char *audit_file_str(const struct audit_file *f, const char *key);
/* Session start and the session id from the header. */
uint64_t audit_file_start_us(const struct audit_file *f);

enum audit_verdict {
	AUDIT_VERDICT_INTACT = 0,	/* every signature good, closed by the writer (and FINAL, with a key) */
	AUDIT_VERDICT_INCOMPLETE,	/* every signature good, but the writer never closed it: crash, or still writing */
	AUDIT_VERDICT_TAMPERED,		/* something does not verify: `what` says where */
};

struct audit_check {
	enum audit_verdict verdict;
	char what[512];			/* TAMPERED: what failed and where; else a note */
	bool trusted_key;		/* checked against a key given by the caller, not the file's own */
	bool writing;			/* a writer holds the file (being written now) */
	bool ended;			/* the end record is there */
	bool final;			/* the last chunk carries TAG_FINAL (with a key) */
	bool decrypted;			/* an auditor key opened the stream */
	uint64_t last_ts;		/* time of the last signed record, microseconds */
	uint64_t signed_bytes;		/* file bytes covered by the last good signature */
	uint64_t records, chunks, signatures, events;
};

struct audit_event {
	uint8_t type;			/* enum audit_event_type */
	uint64_t ts_us;
	const uint8_t *data;		/* payload, not NUL-terminated */
	size_t len;
};

/* Called for each decrypted event, in order. */
typedef void (*audit_event_fn)(const struct audit_event *ev, void *arg);

/*
 * Check F: every record, every signature against NODE_PK (NULL: the key in the file's own
 * header, which proves nothing against someone who rewrote the whole file; check.trusted_key
 * says which), and with KEY (an auditor's secret key, or NULL) decrypt every chunk and call
 * FN for each event. Returns 0 with the verdict in OUT, or -1 with ERR when the file cannot
 * be read at all or KEY is not one the recording was sealed to.
 */
int audit_file_check(struct audit_file *f, const uint8_t *node_pk, const struct audit_auditor_key *key,
    audit_event_fn fn, void *arg, struct audit_check *out, char *err, size_t errlen) __attribute__((warn_unused_result));

const char *audit_verdict_name(enum audit_verdict v);

#endif
