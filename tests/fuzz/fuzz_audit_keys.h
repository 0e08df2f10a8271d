/*
 * The fixed keys of the recording-reader harness (fuzz_audit.c) and of its seed generator
 * (fuzz_audit_seeds.c): a relay node's Ed25519 key and two auditors' X25519 keys, each derived
 * from a label, so that the seeds the generator writes with them are signed and sealed with
 * exactly the keys the harness checks and decrypts with, on any machine, in any run.
 *
 * Also the harness's own "plain" input form, which the generator writes beside each recording:
 * FUZZ_AUDIT_PLAIN_MAGIC, then the layout of a recording (docs/audit.md) with the chunks in
 * plaintext. The harness seals and signs it into a real recording, so the fuzzer can change
 * what is inside the encryption and the signatures and still reach the code behind them.
 */
#ifndef POSTERN_FUZZ_AUDIT_KEYS_H
#define POSTERN_FUZZ_AUDIT_KEYS_H

#include <string.h>

#include <sodium.h>

#include "audit/format.h"

#define FUZZ_AUDIT_NODE_LABEL		"postern fuzz_audit: relay node key"
#define FUZZ_AUDIT_AUDITOR_LABEL	"postern fuzz_audit: auditor key"
#define FUZZ_AUDIT_OTHER_LABEL		"postern fuzz_audit: second auditor key"

/* The plain form: the recording's layout behind this magic, chunks not yet sealed. */
#define FUZZ_AUDIT_PLAIN_MAGIC		"PSTPLN1\n"

/* Record types of the plain form; any other type is copied into the recording as it is. */
enum fuzz_audit_plain_type {
	FUZZ_PLAIN_CHUNK = 'C',		/* plaintext events: sealed with TAG_MESSAGE into a chunk */
	FUZZ_PLAIN_FINAL = 'F',		/* sealed with TAG_FINAL into a chunk */
	FUZZ_PLAIN_REKEY = 'K',		/* sealed with TAG_REKEY into a chunk */
	FUZZ_PLAIN_SIGN = 'G',		/* payload ignored: the node key's signature of all before it */
	FUZZ_PLAIN_RAW_SIG = 'g',	/* written as a signature record with this payload, as it is */
};

static inline void
fuzz_audit_seed(const char *label, uint8_t seed[32])
{
	crypto_generichash(seed, 32, (const uint8_t *)label, strlen(label), NULL, 0);
}

static inline void
fuzz_audit_node_key(struct audit_node_key *node)
{
	uint8_t seed[32];

	fuzz_audit_seed(FUZZ_AUDIT_NODE_LABEL, seed);
	crypto_sign_seed_keypair(node->pk, node->sk, seed);
}

static inline void
fuzz_audit_auditor_key(const char *label, struct audit_auditor_key *key)
{
	uint8_t seed[32];

	memset(key, 0, sizeof(*key));
	fuzz_audit_seed(label, seed);
	crypto_box_seed_keypair(key->pk, key->sk, seed);
	audit_key_id(key->pk, key->id);
	key->has_secret = true;
}

#endif
