/*
 * The recording reader and verifier. It maps the file read-only and walks its records once,
 * feeding the same running SHA-256 the writer fed, checking each signature record against
 * the node key, and, with an auditor key, pulling each chunk through the secretstream (which
 * fails on any changed, dropped, reordered or foreign chunk). Every failure names the record
 * and its offset, so an auditor can say what was done to a file.
 */
#include "audit/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay/util.h"

static const char *const audit_verdict_names[] = { "intact", "incomplete", "tampered" };

const char *
audit_verdict_name(enum audit_verdict v)
{
	return (unsigned)v < 3 ? audit_verdict_names[v] : "unknown";
}

int
audit_file_open(const char *path, struct audit_file *f, char *err, size_t errlen)
{
	uint8_t pre[AUDIT_PREAMBLE_LEN];
	struct stat st;
	json_error_t jerr;
	uint32_t hlen;
	char *text = NULL;
	int r = -1;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if ((f->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((f->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(f->fd, &st) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		goto out;
	}
	f->size = (uint64_t)st.st_size;
	r = -2;
	if (pread(f->fd, pre, sizeof(pre), 0) != (ssize_t)sizeof(pre) || memcmp(pre, AUDIT_MAGIC, AUDIT_MAGIC_LEN) != 0) {
		snprintf(err, errlen, "not a Postern recording: the first bytes are not the format's magic");
		goto out;
	}
	hlen = audit_get32(pre + AUDIT_MAGIC_LEN);
	if (hlen == 0 || hlen > AUDIT_HEADER_MAX || AUDIT_PREAMBLE_LEN + (uint64_t)hlen > f->size) {
		snprintf(err, errlen, "the header length (%u bytes) does not fit the file", hlen);
		goto out;
	}
	if ((text = malloc(hlen)) == NULL) {
		snprintf(err, errlen, "out of memory");
		r = -1;
		goto out;
	}
	if (pread(f->fd, text, hlen, AUDIT_PREAMBLE_LEN) != (ssize_t)hlen) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		r = -1;
		goto out;
	}
	if ((f->header = json_loadb(text, hlen, JSON_REJECT_DUPLICATES, &jerr)) == NULL || !json_is_object(f->header)) {
		snprintf(err, errlen, "the header is not a JSON object (%s)", jerr.text);
		goto out;
	}
	if (json_integer_value(json_object_get(f->header, "format")) != AUDIT_FORMAT_VERSION) {
		snprintf(err, errlen, "recording format %lld is not one this posternctl reads (it reads %d)",
		    (long long)json_integer_value(json_object_get(f->header, "format")), AUDIT_FORMAT_VERSION);
		r = -1;
		goto out;
	}
	f->body = AUDIT_PREAMBLE_LEN + hlen;
	r = 0;
out:
	free(text);
	if (r != 0) {
		/* Keep the path for messages; the rest goes. */
		json_decref(f->header);
		f->header = NULL;
		if (f->fd >= 0)
			close(f->fd);
		f->fd = -1;
	}
	return r;
}

void
audit_file_close(struct audit_file *f)
{
	if (f->map != NULL)
		munmap((void *)f->map, f->size);
	if (f->fd >= 0)
		close(f->fd);
	json_decref(f->header);
	free(f->path);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}

const char *
audit_file_str(const struct audit_file *f, const char *key)
{
	const char *s = json_string_value(json_object_get(f->header, key));

	return s ? s : "";
}

uint64_t
audit_file_start_us(const struct audit_file *f)
{
	return (uint64_t)json_integer_value(json_object_get(f->header, "start_us"));
}

__attribute__((format(printf, 2, 3)))
static void
audit_tampered(struct audit_check *c, const char *fmt, ...)
{
	va_list ap;

	c->verdict = AUDIT_VERDICT_TAMPERED;
	va_start(ap, fmt);
	vsnprintf(c->what, sizeof(c->what), fmt, ap);
	va_end(ap);
}

/* Open the stream with KEY: the stream key sealed to it, then the secretstream state. */
static int
audit_open_stream(struct audit_file *f, const struct audit_auditor_key *key,
    crypto_secretstream_xchacha20poly1305_state *st, struct audit_check *c, char *err, size_t errlen)
{
	uint8_t sealed[AUDIT_SEALED_LEN], skey[AUDIT_STREAM_KEYBYTES], sh[AUDIT_STREAM_HEADERBYTES];
	json_t *list = json_object_get(f->header, "auditors"), *a;
	const char *sealed_b64 = NULL;
	char ids[256] = "";
	size_t i, o = 0;

	json_array_foreach(list, i, a) {
		const char *id = json_string_value(json_object_get(a, "key_id"));

		if (id != NULL && strcmp(id, key->id) == 0)
			sealed_b64 = json_string_value(json_object_get(a, "sealed"));
		if (o < sizeof(ids))
			o += (size_t)snprintf(ids + o, sizeof(ids) - o, "%s%s", i ? ", " : "", id ? id : "?");
	}
	if (sealed_b64 == NULL) {
		snprintf(err, errlen, "%s is not sealed to key %s (it is sealed to: %s)", f->path, key->id, ids[0] ? ids : "none");
		return -1;
	}
	if (util_b64_decode_exact(sealed_b64, sealed, sizeof(sealed)) != 0 ||
	    crypto_box_seal_open(skey, sealed, sizeof(sealed), key->pk, key->sk) != 0) {
		audit_tampered(c, "the stream key sealed to key %s does not open: the header was changed", key->id);
		return 1;
	}
	if (util_b64_decode_exact(audit_file_str(f, "stream_header"), sh, sizeof(sh)) != 0 ||
	    crypto_secretstream_xchacha20poly1305_init_pull(st, sh, skey) != 0) {
		sodium_memzero(skey, sizeof(skey));
		audit_tampered(c, "the header's stream_header is not valid: the header was changed");
		return 1;
	}
	sodium_memzero(skey, sizeof(skey));
	c->decrypted = true;
	return 0;
}

/* The encrypted start event must say what the plaintext header says. */
static bool
audit_start_matches(const struct audit_file *f, const struct audit_event *ev, char *what, size_t wlen)
{
	static const char *const keys[] = { "session", "user", "target", "protocol", "login", NULL };
	json_t *j = json_loadb((const char *)ev->data, ev->len, 0, NULL);
	bool ok = true;

	if (j == NULL) {
		snprintf(what, wlen, "the start event is not JSON");
		return false;
	}
	for (int i = 0; keys[i] != NULL && ok; i++) {
		const char *in = json_string_value(json_object_get(j, keys[i]));

		if (in != NULL && strcmp(in, audit_file_str(f, keys[i])) != 0) {
			snprintf(what, wlen, "the plaintext header says %s \"%.64s\" but the encrypted start event says \"%.64s\": "
			    "the header was changed", keys[i], audit_file_str(f, keys[i]), in);
			ok = false;
		}
	}
	json_decref(j);
	return ok;
}

/* Split a decrypted chunk into events. False when it is malformed. */
static bool
audit_events(struct audit_file *f, const uint8_t *p, size_t len, audit_event_fn fn, void *arg, struct audit_check *c,
    uint64_t chunk_no)
{
	size_t off = 0;

	while (off < len) {
		struct audit_event ev;

		if (len - off < AUDIT_EVENT_HDR_LEN) {
			audit_tampered(c, "chunk %llu holds a partial event", (unsigned long long)chunk_no);
			return false;
		}
		ev.type = p[off];
		ev.ts_us = audit_get64(p + off + 1);
		ev.len = audit_get32(p + off + 9);
		if (ev.len > len - off - AUDIT_EVENT_HDR_LEN) {
			audit_tampered(c, "chunk %llu holds an event longer than the chunk", (unsigned long long)chunk_no);
			return false;
		}
		ev.data = p + off + AUDIT_EVENT_HDR_LEN;
		if (ev.type == AUDIT_EV_START && !audit_start_matches(f, &ev, c->what, sizeof(c->what))) {
			c->verdict = AUDIT_VERDICT_TAMPERED;
			return false;
		}
		c->events++;
		if (fn != NULL)
			fn(&ev, arg);
		off += AUDIT_EVENT_HDR_LEN + ev.len;
	}
	return true;
}

int
audit_file_check(struct audit_file *f, const uint8_t *node_pk, const struct audit_auditor_key *key,
    audit_event_fn fn, void *arg, struct audit_check *out, char *err, size_t errlen)
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t hdr_pk[crypto_sign_PUBLICKEYBYTES], digest[AUDIT_HASH_LEN], msg[AUDIT_SIG_CONTEXT_LEN + AUDIT_HASH_LEN];
	struct audit_hash hash = { 0 };
	uint8_t *plain = NULL;
	size_t pcap = 0;
	uint64_t off, pending_ts = 0;
	bool decrypt = false, sig_failed = false;
	int r = -1;

	memset(out, 0, sizeof(out[0]));
	out->verdict = AUDIT_VERDICT_TAMPERED;
	if (f->map == NULL && f->size > 0) {
		void *m = mmap(NULL, f->size, PROT_READ, MAP_SHARED, f->fd, 0);

		if (m == MAP_FAILED) {
			snprintf(err, errlen, "cannot map %s: %s", f->path, strerror(errno));
			return -1;
		}
		f->map = m;
	}
	if (flock(f->fd, LOCK_SH | LOCK_NB) != 0)
		out->writing = errno == EWOULDBLOCK;
	else
		(void)flock(f->fd, LOCK_UN);
	if (util_b64_decode_exact(audit_file_str(f, "node_key"), hdr_pk, sizeof(hdr_pk)) != 0) {
		audit_tampered(out, "the header's node_key is not an Ed25519 public key");
		return 0;
	}
	if (node_pk != NULL) {
		out->trusted_key = true;
		if (sodium_memcmp(node_pk, hdr_pk, sizeof(hdr_pk)) != 0) {
			audit_tampered(out, "the header names a node key that is not the trusted one: the file was signed "
			    "by another key (or the header was changed)");
			return 0;
		}
	}
	if (key != NULL) {
		int k = audit_open_stream(f, key, &st, out, err, errlen);

		if (k < 0)
			return -1;
		if (k > 0)
			return 0;
		decrypt = true;
	}
	if (audit_hash_init(&hash) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	audit_hash_update(&hash, f->map, f->body);
	out->verdict = AUDIT_VERDICT_INCOMPLETE;
	for (off = f->body; off < f->size;) {
		const uint8_t *h = f->map + off;
		uint8_t type;
		uint32_t len;
		uint64_t ts;

		if (f->size - off < AUDIT_RECORD_HDR_LEN) {
			audit_tampered(out, "a partial record at offset %llu (%llu bytes): the file was cut inside a write",
			    (unsigned long long)off, (unsigned long long)(f->size - off));
			goto done;
		}
		type = h[0];
		len = audit_get32(h + 1);
		ts = audit_get64(h + 5);
		if (type != AUDIT_REC_CHUNK && type != AUDIT_REC_SIG && type != AUDIT_REC_END) {
			audit_tampered(out, "record %llu at offset %llu has an unknown type 0x%02x: bytes were changed",
			    (unsigned long long)out->records + 1, (unsigned long long)off, type);
			goto done;
		}
		if (len > AUDIT_RECORD_MAX || len > f->size - off - AUDIT_RECORD_HDR_LEN) {
			audit_tampered(out, "record %llu at offset %llu claims %u bytes but %llu remain: the file was cut or changed",
			    (unsigned long long)out->records + 1, (unsigned long long)off, len,
			    (unsigned long long)(f->size - off - AUDIT_RECORD_HDR_LEN));
			goto done;
		}
		if (out->ended && type != AUDIT_REC_SIG) {
			audit_tampered(out, "record %llu at offset %llu follows the end record: bytes were appended",
			    (unsigned long long)out->records + 1, (unsigned long long)off);
			goto done;
		}
		out->records++;
		if (type == AUDIT_REC_SIG) {
			if (len != AUDIT_SIG_LEN || audit_hash_peek(&hash, digest) != 0) {
				audit_tampered(out, "the signature record at offset %llu is malformed", (unsigned long long)off);
				goto done;
			}
			audit_sig_message(digest, msg);
			if (sig_failed)
				goto next;
			if (crypto_sign_verify_detached(h + AUDIT_RECORD_HDR_LEN, msg, sizeof(msg), hdr_pk) != 0) {
				audit_tampered(out, "the signature at offset %llu does not verify: bytes before it were changed, "
				    "dropped or reordered (or it is not this node's)", (unsigned long long)off);
				if (!decrypt)
					goto done;
				/* With a key, read on: the chunk that no longer decrypts says what was done. */
				sig_failed = true;
				goto next;
			}
			out->signatures++;
			out->signed_bytes = off + AUDIT_RECORD_HDR_LEN + len;
			out->last_ts = pending_ts ? pending_ts : ts;
		} else if (type == AUDIT_REC_END) {
			if (len != 0) {
				audit_tampered(out, "the end record at offset %llu is malformed", (unsigned long long)off);
				goto done;
			}
			out->ended = true;
			pending_ts = ts;
		} else {
			out->chunks++;
			pending_ts = ts;
			if (decrypt) {
				unsigned long long plen = 0;
				unsigned char tag = 0;

				if (out->final) {
					audit_tampered(out, "chunk %llu at offset %llu follows the FINAL chunk: bytes were appended",
					    (unsigned long long)out->chunks, (unsigned long long)off);
					goto done;
				}
				if (len < AUDIT_STREAM_ABYTES) {
					audit_tampered(out, "chunk %llu at offset %llu is too short", (unsigned long long)out->chunks,
					    (unsigned long long)off);
					goto done;
				}
				if (pcap < len) {
					uint8_t *grown = realloc(plain, len);

					if (grown == NULL) {
						snprintf(err, errlen, "out of memory");
						goto out;
					}
					plain = grown;
					pcap = len;
				}
				if (crypto_secretstream_xchacha20poly1305_pull(&st, plain, &plen, &tag, h + AUDIT_RECORD_HDR_LEN, len,
				    h, AUDIT_RECORD_HDR_LEN) != 0) {
					char first[sizeof(out->what)];

					snprintf(first, sizeof(first), "%s", sig_failed ? out->what : "");
					audit_tampered(out, "%s%schunk %llu at offset %llu does not decrypt: it was changed, or a chunk "
					    "before it was dropped or reordered, or it was taken from another recording", first,
					    sig_failed ? "; " : "", (unsigned long long)out->chunks, (unsigned long long)off);
					goto done;
				}
				if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
					out->final = true;
				if (!audit_events(f, plain, (size_t)plen, fn, arg, out, out->chunks))
					goto done;
			}
		}
next:
		audit_hash_update(&hash, h, AUDIT_RECORD_HDR_LEN + (size_t)len);
		off += AUDIT_RECORD_HDR_LEN + (uint64_t)len;
	}
	if (sig_failed)
		goto done;	/* every chunk still decrypts: the signature's message stands */
	if (out->signatures == 0) {
		audit_tampered(out, "no signature: the file was cut before its first signature");
	} else if (out->signed_bytes != f->size) {
		audit_tampered(out, "%llu bytes after the last signature (offset %llu) are not signed: the signature was "
		    "removed, the file was cut inside a write, or bytes were appended",
		    (unsigned long long)(f->size - out->signed_bytes), (unsigned long long)out->signed_bytes);
	} else if (out->ended) {
		if (decrypt && !out->final)
			audit_tampered(out, "the end record is there but no chunk carries the FINAL tag: chunks were dropped");
		else
			out->verdict = AUDIT_VERDICT_INTACT;
	} else {
		out->verdict = AUDIT_VERDICT_INCOMPLETE;
		snprintf(out->what, sizeof(out->what), "%s", out->writing ? "being written now" :
		    "the writer stopped before closing it (posternd crashed, was killed, or the end was cut off)");
	}
done:
	r = 0;
out:
	if (plain != NULL) {
		sodium_memzero(plain, pcap);
		free(plain);
	}
	sodium_memzero(&st, sizeof(st));
	audit_hash_free(&hash);
	return r;
}
