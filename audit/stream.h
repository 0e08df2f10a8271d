/*
 * The writer's side of libsodium's crypto_secretstream_xchacha20poly1305, with the bulk work
 * (ChaCha20 over the message, Poly1305 over everything) done by OpenSSL, whose vectorised code
 * is several times faster here than libsodium 1.0.18's: it is what lets one writer core keep
 * up with 500 MB/s of events. The bytes are exactly libsodium's (the state, the per-message
 * keys, the tag block and the rekeying are libsodium's own calls), so libsodium's pull reads
 * them; tests/unit/test_audit.c checks that byte for byte against libsodium's push. Without
 * OpenSSL's contexts it falls back to libsodium's push.
 */
#ifndef POSTERN_AUDIT_STREAM_H
#define POSTERN_AUDIT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <sodium.h>

struct audit_stream {
	crypto_secretstream_xchacha20poly1305_state st;
	EVP_CIPHER_CTX *cipher;		/* NULL: libsodium's push does everything */
	EVP_MAC_CTX *mac;
};

/* Start a stream with KEY: libsodium's init_push (HEADER receives the stream header). */
void audit_stream_init(struct audit_stream *s, uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES],
    const uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES]);
/* Encrypt M[0..MLEN) with AD and TAG into OUT (MLEN + ABYTES bytes). */
void audit_stream_push(struct audit_stream *s, uint8_t *out, const uint8_t *m, size_t mlen, const uint8_t *ad,
    size_t adlen, uint8_t tag);
/* Use libsodium's push only (tests compare the two). */
void audit_stream_use_libsodium(struct audit_stream *s);
void audit_stream_free(struct audit_stream *s);

#endif
