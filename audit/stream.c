/*
 * secretstream push, bulk in OpenSSL. One message, as libsodium defines it:
 *   poly1305 key = ChaCha20-IETF(k, nonce, counter 0), first 32 bytes
 *   tag block    = 64 bytes, tag in byte 0, XORed with ChaCha20-IETF(k, nonce, counter 1)
 *   ciphertext   = message XOR ChaCha20-IETF(k, nonce, counter 2 onwards)
 *   mac          = Poly1305(ad, pad16, tag block, ciphertext, pad16, le64(adlen), le64(64 + mlen))
 *   out          = tag block[0] | ciphertext | mac
 * then the inner nonce is XORed with the mac, the counter goes up, and the key is rekeyed on a
 * REKEY tag or a counter wrap (libsodium's own rekey).
 */
#include "audit/stream.h"

#include <string.h>

#include <openssl/core_names.h>

#define STREAM_COUNTERBYTES	4	/* the counter at the start of state.nonce */
#define STREAM_INONCEBYTES	8	/* the inner nonce after it */
#define STREAM_BLOCK		64
#define STREAM_MACBYTES		16

static const uint8_t stream_pad0[16];

void
audit_stream_init(struct audit_stream *s, uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES],
    const uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES])
{
	EVP_MAC *mac;

	EVP_CIPHER *chacha;

	memset(s, 0, sizeof(*s));
	crypto_secretstream_xchacha20poly1305_init_push(&s->st, header, key);
	/* Fetched once: the per-message init then only sets the key and the IV. */
	if ((chacha = EVP_CIPHER_fetch(NULL, "ChaCha20", NULL)) != NULL && (s->cipher = EVP_CIPHER_CTX_new()) != NULL &&
	    EVP_EncryptInit_ex(s->cipher, chacha, NULL, NULL, NULL) != 1) {
		EVP_CIPHER_CTX_free(s->cipher);
		s->cipher = NULL;
	}
	EVP_CIPHER_free(chacha);
	if ((mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_POLY1305, NULL)) != NULL) {
		s->mac = EVP_MAC_CTX_new(mac);
		EVP_MAC_free(mac);
	}
	if (s->cipher == NULL || s->mac == NULL)
		audit_stream_use_libsodium(s);
}

void
audit_stream_use_libsodium(struct audit_stream *s)
{
	EVP_CIPHER_CTX_free(s->cipher);
	EVP_MAC_CTX_free(s->mac);
	s->cipher = NULL;
	s->mac = NULL;
}

static void
stream_store64_le(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The OpenSSL part; false when OpenSSL fails (then nothing was written to the state). */
static bool
stream_push_openssl(struct audit_stream *s, uint8_t *out, const uint8_t *m, size_t mlen, const uint8_t *ad,
    size_t adlen, uint8_t tag)
{
	uint8_t block[STREAM_BLOCK], iv[16], len[8];
	uint8_t *c = out + 1;
	size_t maclen = 0;
	int n = 0;
	bool ok = false;

	crypto_stream_chacha20_ietf(block, sizeof(block), s->st.nonce, s->st.k);
	if (EVP_MAC_init(s->mac, block, crypto_onetimeauth_poly1305_KEYBYTES, NULL) != 1)
		goto out;
	if (EVP_MAC_update(s->mac, ad, adlen) != 1 || EVP_MAC_update(s->mac, stream_pad0, (0x10 - adlen) & 0xf) != 1)
		goto out;
	memset(block, 0, sizeof(block));
	block[0] = tag;
	crypto_stream_chacha20_ietf_xor_ic(block, block, sizeof(block), s->st.nonce, 1U, s->st.k);
	if (EVP_MAC_update(s->mac, block, sizeof(block)) != 1)
		goto out;
	/* OpenSSL's ChaCha20 IV: a 32-bit little-endian block counter, then the 96-bit nonce. */
	iv[0] = 2;
	iv[1] = iv[2] = iv[3] = 0;
	memcpy(iv + 4, s->st.nonce, sizeof(s->st.nonce));
	if (EVP_EncryptInit_ex(s->cipher, NULL, NULL, s->st.k, iv) != 1)
		goto out;
	for (size_t done = 0; done < mlen; done += (size_t)n) {
		size_t step = mlen - done > (1u << 30) ? (1u << 30) : mlen - done;

		if (EVP_EncryptUpdate(s->cipher, c + done, &n, m + done, (int)step) != 1 || n != (int)step)
			goto out;
	}
	if (EVP_MAC_update(s->mac, c, mlen) != 1 ||
	    EVP_MAC_update(s->mac, stream_pad0, (0x10 - sizeof(block) + mlen) & 0xf) != 1)
		goto out;
	stream_store64_le(len, adlen);
	if (EVP_MAC_update(s->mac, len, sizeof(len)) != 1)
		goto out;
	stream_store64_le(len, sizeof(block) + mlen);
	if (EVP_MAC_update(s->mac, len, sizeof(len)) != 1 ||
	    EVP_MAC_final(s->mac, c + mlen, &maclen, STREAM_MACBYTES) != 1 || maclen != STREAM_MACBYTES)
		goto out;
	out[0] = block[0];
	ok = true;
out:
	sodium_memzero(block, sizeof(block));
	sodium_memzero(iv, sizeof(iv));
	return ok;
}

void
audit_stream_push(struct audit_stream *s, uint8_t *out, const uint8_t *m, size_t mlen, const uint8_t *ad,
    size_t adlen, uint8_t tag)
{
	if (s->cipher == NULL || !stream_push_openssl(s, out, m, mlen, ad, adlen, tag)) {
		audit_stream_use_libsodium(s);
		crypto_secretstream_xchacha20poly1305_push(&s->st, out, NULL, m, mlen, ad, adlen, tag);
		return;
	}
	for (size_t i = 0; i < STREAM_INONCEBYTES; i++)
		s->st.nonce[STREAM_COUNTERBYTES + i] ^= out[1 + mlen + i];
	sodium_increment(s->st.nonce, STREAM_COUNTERBYTES);
	if ((tag & crypto_secretstream_xchacha20poly1305_TAG_REKEY) != 0 ||
	    sodium_is_zero(s->st.nonce, STREAM_COUNTERBYTES))
		crypto_secretstream_xchacha20poly1305_rekey(&s->st);
}

void
audit_stream_free(struct audit_stream *s)
{
	audit_stream_use_libsodium(s);
	sodium_memzero(&s->st, sizeof(s->st));
}
