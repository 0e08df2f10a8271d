/*
 * The session recording format (docs/audit.md, format 1), shared by posternd's writer and
 * posternctl's reader: the named constants of the file, big-endian fields, the running hash
 * that the node's signatures cover, and the key files of auditors and relay nodes.
 *
 * A file is: magic, u32 header length, header JSON (plaintext), then records
 * `u8 type | u32 len | u64 ts_us | payload[len]`. Chunk records carry secretstream
 * ciphertext of a run of events; signature records carry the node's Ed25519 signature over
 * the SHA-256 of every byte before them; the end record closes the file.
 */
#ifndef POSTERN_AUDIT_FORMAT_H
#define POSTERN_AUDIT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <sodium.h>

#define AUDIT_MAGIC		"PSTREC1\n"
#define AUDIT_MAGIC_LEN		8
#define AUDIT_FORMAT_VERSION	1
#define AUDIT_PREAMBLE_LEN	(AUDIT_MAGIC_LEN + 4)	/* magic and the header length */
#define AUDIT_HEADER_MAX	(64u << 10)		/* bytes of header JSON */
#define AUDIT_RECORD_HDR_LEN	13			/* type, len, ts */
#define AUDIT_RECORD_MAX	(64u << 20)		/* payload bytes of one record a reader accepts */
#define AUDIT_EVENT_HDR_LEN	13			/* type, ts, len */
#define AUDIT_EVENT_MAX		(8u << 20)		/* payload bytes of one event */
#define AUDIT_SIG_LEN		crypto_sign_BYTES
#define AUDIT_HASH_LEN		32			/* SHA-256 */
#define AUDIT_SIG_CONTEXT	"PSTREC1 signature\n"	/* signed before the hash: domain separation */
#define AUDIT_SIG_CONTEXT_LEN	18
#define AUDIT_STREAM_ABYTES	crypto_secretstream_xchacha20poly1305_ABYTES
#define AUDIT_STREAM_HEADERBYTES crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define AUDIT_STREAM_KEYBYTES	crypto_secretstream_xchacha20poly1305_KEYBYTES
#define AUDIT_SEALED_LEN	(crypto_box_SEALBYTES + AUDIT_STREAM_KEYBYTES)
#define AUDIT_KEY_ID_LEN	16			/* hex digits of an auditor's key id */
#define AUDIT_FILE_SUFFIX	".prec"

/* Record types: the framing of the file, in plaintext. */
enum audit_record_type {
	AUDIT_REC_CHUNK = 'C',		/* secretstream ciphertext of a run of events */
	AUDIT_REC_SIG = 'G',		/* the node's signature over everything before it */
	AUDIT_REC_END = 'E',		/* the writer closed the recording (empty payload) */
};

/* Event types: the plaintext inside chunks, `u8 type | u64 ts_us | u32 len | payload`. */
enum audit_event_type {
	AUDIT_EV_START = 'S',		/* JSON: the session's facts */
	AUDIT_EV_ACCESS = 'A',		/* JSON: identity and on_connect decision */
	AUDIT_EV_STATEMENT = 'Q',	/* JSON: seq, kind, decision, reason, text (redacted) */
	AUDIT_EV_OUTCOME = 'R',		/* JSON: seq, tag or sqlstate, rows, duration_us */
	AUDIT_EV_BYTES = 'B',		/* JSON: up, down (running totals) */
	AUDIT_EV_UP = 'U',		/* raw bytes client to target */
	AUDIT_EV_DOWN = 'D',		/* raw bytes target to client */
	AUDIT_EV_OUTPUT = 'O',		/* terminal output (SSH, later) */
	AUDIT_EV_INPUT = 'I',		/* terminal input (SSH, later) */
	AUDIT_EV_WINDOW = 'W',		/* JSON: cols, rows (SSH, later) */
	AUDIT_EV_ERROR = 'X',		/* JSON: error */
	AUDIT_EV_END = 'Z',		/* JSON: reason, cause, bytes_up, bytes_down */
};

static inline void
audit_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void
audit_put64(uint8_t *p, uint64_t v)
{
	audit_put32(p, (uint32_t)(v >> 32));
	audit_put32(p + 4, (uint32_t)v);
}

static inline uint32_t
audit_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
audit_get64(const uint8_t *p)
{
	return (uint64_t)audit_get32(p) << 32 | audit_get32(p + 4);
}

/* Microseconds since the epoch, now. */
uint64_t audit_now_us(void);

/* The running hash of a file, and the message a signature covers. */
struct audit_hash {
	EVP_MD_CTX *ctx;
};

int audit_hash_init(struct audit_hash *h) __attribute__((warn_unused_result));
void audit_hash_update(struct audit_hash *h, const void *data, size_t len);
/* The digest of everything so far, leaving the running hash as it is. */
int audit_hash_peek(const struct audit_hash *h, uint8_t out[AUDIT_HASH_LEN]) __attribute__((warn_unused_result));
void audit_hash_free(struct audit_hash *h);
/* The bytes the node signs for a hash: AUDIT_SIG_CONTEXT then the digest. */
void audit_sig_message(const uint8_t hash[AUDIT_HASH_LEN], uint8_t out[AUDIT_SIG_CONTEXT_LEN + AUDIT_HASH_LEN]);

/* An auditor's key pair (X25519, for crypto_box_seal). */
struct audit_auditor_key {
	uint8_t pk[crypto_box_PUBLICKEYBYTES];
	uint8_t sk[crypto_box_SECRETKEYBYTES];	/* zero for a public key */
	char id[AUDIT_KEY_ID_LEN + 1];		/* hex of a hash of pk: names the key in headers */
	bool has_secret;
};

/* The key id of PK into ID. */
void audit_key_id(const uint8_t pk[crypto_box_PUBLICKEYBYTES], char id[AUDIT_KEY_ID_LEN + 1]);
/* Write a new auditor key pair: PATH (secret, 0600, must not exist) and PATH.pub. */
int audit_key_generate(const char *path, const char *comment, struct audit_auditor_key *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Read an auditor key file: a public one (".pub" line) or a secret one (pk derived). */
int audit_key_read(const char *path, struct audit_auditor_key *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* A relay node's Ed25519 signing key. */
struct audit_node_key {
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	uint8_t sk[crypto_sign_SECRETKEYBYTES];	/* zero when only the public key is known */
};

/* Load DIR/audit_node.key, or create it (0600) with DIR/audit_node.pub when it is missing. */
int audit_node_key_load(const char *dir, const char *node, struct audit_node_key *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Write the public half of KEY to PATH (0644), replacing it atomically. */
int audit_node_key_write_public(const char *path, const char *node, const struct audit_node_key *key, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/* Read a node public key file. */
int audit_node_key_read_public(const char *path, uint8_t pk[crypto_sign_PUBLICKEYBYTES], char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* "node-NAME.pub" with NAME made safe for a file name, into BUF. */
const char *audit_node_pub_name(const char *node, char *buf, size_t size);

#endif
