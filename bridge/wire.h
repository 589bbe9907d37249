/* SPDX-License-Identifier: MIT */
#ifndef XR_BRIDGE_WIRE_H
#define XR_BRIDGE_WIRE_H

/*
 * A bridge message (docs/bridge.md): a batch of records of one source ring,
 * as `xring bridge out` publishes it to a NATS JetStream subject and
 * `xring bridge in` takes it. Everything in a message is untrusted to the
 * side that reads it: anyone who may publish on the subject can put bytes
 * there, so xr__br_parse() checks every field and length, the checksum and,
 * for a compressed payload, decompresses into a bound it chose itself.
 *
 *     header    struct xr_br_hdr, 80 bytes, little-endian
 *     payload   `len` bytes (zstd-compressed when flags has XR_BR_ZSTD;
 *               `raw_len` bytes once decompressed), the records:
 *                   struct xr_br_rec (seq, len), then len bytes, padded to 8
 *
 * (source, incarnation, ring, seq) names a record across hosts: source is
 * FNV-1a 64 of "engine/stream", incarnation the source engine's run (its
 * start and the host's boot: a restarted engine numbers from 0 again), ring
 * and seq the record's in the source. Within a message seqs only grow (a
 * lossy stream's dropped records leave gaps).
 *
 * prev (with XR_BR_PREV) chains a ring's messages: the last seq of the
 * message bridge out published before this one from the ring. A message
 * can reach the subject before one published ahead of it (lost on the way,
 * and sent again after its followers were stored); bridge in, which writes
 * a ring's records in order, knows such a follower by a prev it has not
 * written yet, and leaves it to the copy bridge out sends after the late
 * one (docs/bridge.md, "Order"). base (with XR_BR_BASE) is the prev of
 * the first message of the batch this one was published in: bridge out
 * publishes a batch only once the one before is stored whole and in order,
 * so a message whose base bridge in has not written follows a loss that
 * nothing will fill (a bridge out that lost its place, messages a stream's
 * limits took away), and waiting for it would stop the ring for good.
 *
 * The checksum finds corruption, not forgery: anyone may compute it. With a
 * key (the same secret file on both sides), a message carries a MAC,
 * HMAC-SHA256 truncated to 128 bits, over the header (check and mac zero)
 * and the payload; a side with a key takes no message without a good one.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XR_BR_MAGIC 0x31524258u   /* "XBR1" */
#define XR_BR_VERSION 2u
#define XR_BR_ZSTD 1u             /* flags: the payload is one zstd frame */
#define XR_BR_MAC 2u              /* flags: mac holds the message's MAC */
#define XR_BR_PREV 4u             /* flags: prev holds the ring's message before */
#define XR_BR_BASE 8u             /* flags: base holds the batch's first prev */
#define XR_BR_MAC_LEN 16u
#define XR_BR_KEY_MIN 16u         /* a key's bytes, at least */
#define XR_BR_KEY_MAX 4096u
#define XR_BR_RAW_MAX (16u << 20) /* a message's records, decompressed, at most */
#define XR_BR_REC_MAX (8u << 20)  /* one record, at most */

struct xr_br_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t flags;
	uint64_t source;
	uint64_t incarnation;
	uint32_t ring;
	uint32_t count;          /* records */
	uint32_t raw_len;        /* the records' bytes */
	uint32_t len;            /* the payload's bytes, as sent */
	uint64_t check;          /* xr__br_check(): of the header (check 0) and payload */
	uint8_t mac[XR_BR_MAC_LEN]; /* with XR_BR_MAC, else zeros */
	uint64_t prev;           /* with XR_BR_PREV (below its first seq), else 0 */
	uint64_t base;           /* with XR_BR_BASE (with PREV, at most prev), else 0 */
};

/* A bridge's secret: the bytes of its key file. */
struct xr_br_key {
	size_t len;
	uint8_t bytes[XR_BR_KEY_MAX];
};

/* Reads key file path into *k: a regular file (no symbolic link) of
 * XR_BR_KEY_MIN..XR_BR_KEY_MAX bytes, owned by this user and readable by
 * no one else. 0, or -errno with why (one line, what to do). */
int xr__br_key_load(const char *path, struct xr_br_key *k, char *why, size_t len);

/* HMAC-SHA256 with key k of n byte strings one after the other, its first
 * XR_BR_MAC_LEN bytes into out: 0, or -EIO (the library failed). */
int xr__br_hmac(const struct xr_br_key *k, const void *const *parts, const size_t *lens, int n,
		uint8_t out[XR_BR_MAC_LEN]);

struct xr_br_rec {
	uint64_t seq;
	uint32_t len;
	uint32_t pad_;
};

_Static_assert(sizeof(struct xr_br_hdr) == 80, "bridge header");
_Static_assert(sizeof(struct xr_br_rec) == 16, "bridge record header");

/* Building a message: records appended into buf (cap bytes: the records'
 * room, past the header's 80), then sealed, compressed or not. */
struct xr_br_build {
	uint8_t *buf;
	size_t cap;
	struct xr_br_hdr h;
	size_t used;             /* records' bytes so far */
	uint64_t last_seq;
};

/* prev: the last seq of the ring's message before this one, or NULL (none
 * known: the first of a bridge out without a place to go on from); base:
 * the prev of its batch's first message, or NULL (none known), not past
 * prev. */
void xr__br_begin(struct xr_br_build *b, void *buf, size_t cap, uint64_t source,
		  uint64_t incarnation, uint32_t ring, const uint64_t *prev,
		  const uint64_t *base);
/* Appends a record: 0, or -ENOSPC (no room: seal this message first),
 * -EINVAL (seq not past the last one's, len 0 or past XR_BR_REC_MAX). */
int xr__br_add(struct xr_br_build *b, uint64_t seq, const void *rec, uint32_t len);
/* Seals the message: with zstd (level > 0), compressed into out (out_cap
 * bytes), else copied there; with key (not NULL), MACed. Returns the
 * message's length, or -ENOSPC, -EIO (the compressor or the MAC failed). */
long xr__br_seal(struct xr_br_build *b, int zstd_level, const struct xr_br_key *key, void *out,
		 size_t out_cap);

/* A parsed message: its header's words, and its records, in place in the
 * message or in the caller's scratch (a compressed one). */
struct xr_br_msg {
	uint64_t source, incarnation;
	uint32_t ring, count;
	bool has_prev;           /* XR_BR_PREV: prev is the ring's message before */
	bool has_base;           /* XR_BR_BASE: base is its batch's first prev */
	uint64_t prev, base;
	const uint8_t *recs;     /* raw_len bytes of records */
	size_t raw_len;
};

/* Checks a message of len bytes from anyone and fills *m: every field, the
 * checksum, with key (not NULL) its MAC (a message without one is refused),
 * the records' walk (count of them, seqs growing and past prev, each within
 * the records and at most max_rec bytes). A compressed payload is decompressed into
 * scratch (scratch_cap bytes, at least XR_BR_RAW_MAX for any message),
 * never past raw_len, and only once the MAC is good. 0, or with *why
 * -EKEYREJECTED (a good checksum, but no MAC or another key's: a forger's,
 * or a bridge out with another --key-file), -EPROTONOSUPPORT (a bridge
 * message of another version: a bridge out of another release) or -EPROTO
 * (anything else). */
int xr__br_parse(const void *msg, size_t len, uint32_t max_rec, const struct xr_br_key *key,
		 void *scratch, size_t scratch_cap, struct xr_br_msg *m, const char **why);

/* The records of a parsed message, in order: *it starts at 0; returns 1
 * and the next record, or 0 at the end. */
int xr__br_next(const struct xr_br_msg *m, size_t *it, uint64_t *seq, const void **rec,
		uint32_t *len);

/* A message's checksum: of header h (its check taken as 0) and the
 * payload's len bytes (docs/bridge.md, "Messages"). */
uint64_t xr__br_check(const struct xr_br_hdr *h, const void *payload, size_t len);

/* FNV-1a 64 of "engine/stream": a record's source. */
uint64_t xr__br_source(const char *engine, const char *stream);

#endif
