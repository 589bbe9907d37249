/* SPDX-License-Identifier: MIT */
/*
 * Bridge messages (wire.h): built by `xring bridge out`, checked by
 * `xring bridge in`. The parse is the trust boundary between hosts: it
 * reads each field once from the message, bounds every length by what it
 * knows (the message's own length, XR_BR_RAW_MAX, the caller's max_rec),
 * decompresses only into a buffer it sized and only as far as raw_len, and
 * walks the records once to check them before any is handed out. With a
 * key, the MAC is checked before anything but the header's lengths is
 * believed: a forger who may publish on the subject but has no key gets no
 * further than the checksum.
 */
#include "bridge/wire.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>
#include <zstd.h>

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

#define FNV0 0xcbf29ce484222325ull

/* The checksum: FNV-1a's step a word at a time (a byte at a time held the
 * bridge to well under a GB/s), with the high half folded down each step so
 * that a flip in a word's top bits reaches every bit of the sum. */
static uint64_t sum_words(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, b + i, sizeof(w));
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 32;
	}
	for (; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

uint64_t xr__br_check(const struct xr_br_hdr *h, const void *payload, size_t len)
{
	struct xr_br_hdr c = *h;

	c.check = 0;
	return sum_words(sum_words(FNV0, &c, sizeof(c)), payload, len);
}

uint64_t xr__br_source(const char *engine, const char *stream)
{
	return fnv(fnv(fnv(FNV0, engine, strlen(engine)), "/", 1), stream, strlen(stream));
}

int xr__br_hmac(const struct xr_br_key *k, const void *const *parts, const size_t *lens, int n,
		uint8_t out[XR_BR_MAC_LEN])
{
	uint8_t full[EVP_MAX_MD_SIZE];
	size_t got = 0;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	int ok = 0;

	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
	if (c && EVP_MAC_init(c, k->bytes, k->len, params)) {
		ok = 1;
		for (int i = 0; i < n && ok; i++)
			ok = EVP_MAC_update(c, parts[i], lens[i]);
		ok = ok && EVP_MAC_final(c, full, &got, sizeof(full)) && got >= XR_BR_MAC_LEN;
	}
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(mac);
	if (ok)
		memcpy(out, full, XR_BR_MAC_LEN);
	OPENSSL_cleanse(full, sizeof(full));
	return ok ? 0 : -EIO;
}

/* HMAC-SHA256 of hdr (check and mac taken as zero) and the payload,
 * truncated: 0, or -EIO (the library failed). */
static int mac_of(const struct xr_br_key *k, const struct xr_br_hdr *hdr, const void *payload,
		  size_t len, uint8_t out[XR_BR_MAC_LEN])
{
	struct xr_br_hdr h = *hdr;

	h.check = 0;
	memset(h.mac, 0, sizeof(h.mac));
	const void *parts[] = {&h, payload};
	size_t lens[] = {sizeof(h), len};
	return xr__br_hmac(k, parts, lens, 2, out);
}

void xr__br_begin(struct xr_br_build *b, void *buf, size_t cap, uint64_t source,
		  uint64_t incarnation, uint32_t ring, const uint64_t *prev,
		  const uint64_t *base)
{
	if (!prev)
		base = NULL;
	*b = (struct xr_br_build){.buf = buf, .cap = cap};
	b->h = (struct xr_br_hdr){.magic = XR_BR_MAGIC, .version = XR_BR_VERSION,
				  .flags = (uint16_t)((prev ? XR_BR_PREV : 0) |
						      (base ? XR_BR_BASE : 0)),
				  .source = source, .incarnation = incarnation, .ring = ring,
				  .prev = prev ? *prev : 0,
				  .base = base ? (*base < *prev ? *base : *prev) : 0};
}

int xr__br_add(struct xr_br_build *b, uint64_t seq, const void *rec, uint32_t len)
{
	size_t need = sizeof(struct xr_br_rec) + (((size_t)len + 7) & ~(size_t)7);

	if (len == 0 || len > XR_BR_REC_MAX || (b->h.count && seq <= b->last_seq) ||
	    (!b->h.count && (b->h.flags & XR_BR_PREV) && seq <= b->h.prev))
		return -EINVAL;
	if (need > b->cap - b->used || b->used + need > XR_BR_RAW_MAX)
		return -ENOSPC;
	struct xr_br_rec r = {.seq = seq, .len = len};
	memcpy(b->buf + b->used, &r, sizeof(r));
	memcpy(b->buf + b->used + sizeof(r), rec, len);
	memset(b->buf + b->used + sizeof(r) + len, 0, need - sizeof(r) - len);
	b->used += need;
	b->h.count++;
	b->last_seq = seq;
	return 0;
}

long xr__br_seal(struct xr_br_build *b, int zstd_level, const struct xr_br_key *key, void *out,
		 size_t out_cap)
{
	uint8_t *o = out;
	size_t len;

	if (out_cap < sizeof(struct xr_br_hdr))
		return -ENOSPC;
	if (zstd_level > 0) {
		if (out_cap - sizeof(b->h) < ZSTD_compressBound(b->used))
			return -ENOSPC;
		size_t z = ZSTD_compress(o + sizeof(b->h), out_cap - sizeof(b->h), b->buf, b->used,
					 zstd_level);
		if (ZSTD_isError(z))
			return -EIO;
		len = z;
		b->h.flags = (uint16_t)((b->h.flags & (XR_BR_PREV | XR_BR_BASE)) | XR_BR_ZSTD);
	} else {
		if (b->used > out_cap - sizeof(b->h))
			return -ENOSPC;
		memcpy(o + sizeof(b->h), b->buf, b->used);
		len = b->used;
		b->h.flags &= XR_BR_PREV | XR_BR_BASE;
	}
	b->h.raw_len = (uint32_t)b->used;
	b->h.len = (uint32_t)len;
	memset(b->h.mac, 0, sizeof(b->h.mac));
	if (key) {
		b->h.flags |= XR_BR_MAC;
		if (mac_of(key, &b->h, o + sizeof(b->h), len, b->h.mac) < 0)
			return -EIO;
	}
	b->h.check = xr__br_check(&b->h, o + sizeof(b->h), len);
	memcpy(o, &b->h, sizeof(b->h));
	return (long)(sizeof(b->h) + len);
}

static int bad(const char **why, const char *what)
{
	*why = what;
	return -EPROTO;
}

int xr__br_parse(const void *msg, size_t len, uint32_t max_rec, const struct xr_br_key *key,
		 void *scratch, size_t scratch_cap, struct xr_br_msg *m, const char **why)
{
	const uint8_t *p = msg;
	struct xr_br_hdr h;

	if (len < sizeof(h))
		return bad(why, "shorter than a bridge message's header");
	memcpy(&h, p, sizeof(h)); /* read once: the fields below are ours */
	if (h.magic != XR_BR_MAGIC)
		return bad(why, "not a bridge message (magic)");
	if (h.version != XR_BR_VERSION) {
		*why = h.version < XR_BR_VERSION
			       ? "a bridge message of an earlier version (both sides' bridges must "
				 "be of one version)"
			       : "a bridge message of a later version (both sides' bridges must be "
				 "of one version)";
		return -EPROTONOSUPPORT;
	}
	if (h.flags & ~(XR_BR_ZSTD | XR_BR_MAC | XR_BR_PREV | XR_BR_BASE))
		return bad(why, "unknown flags");
	if (h.len != len - sizeof(h))
		return bad(why, "its length is not its header's");
	if (h.raw_len > XR_BR_RAW_MAX || h.count > h.raw_len / sizeof(struct xr_br_rec))
		return bad(why, "more records than a message may carry");
	if (h.count == 0)
		return bad(why, "no records (a bridge sends none such)");
	if (xr__br_check(&h, p + sizeof(h), h.len) != h.check)
		return bad(why, "its checksum does not match");
	if (key) {
		uint8_t want[XR_BR_MAC_LEN];
		if (!(h.flags & XR_BR_MAC)) {
			*why = "it carries no MAC, and this bridge has a key (is the other side's "
			       "--key-file given?)";
			return -EKEYREJECTED;
		}
		if (mac_of(key, &h, p + sizeof(h), h.len, want) < 0)
			return bad(why, "its MAC could not be computed");
		if (CRYPTO_memcmp(want, h.mac, sizeof(want)) != 0) {
			*why = "its MAC does not match: not from a bridge with this key";
			return -EKEYREJECTED;
		}
	} else if (!(h.flags & XR_BR_MAC)) {
		for (size_t i = 0; i < sizeof(h.mac); i++)
			if (h.mac[i])
				return bad(why, "bytes in its MAC and no MAC flag");
	}
	if ((!(h.flags & XR_BR_PREV) && h.prev) || (!(h.flags & XR_BR_BASE) && h.base))
		return bad(why, "a previous message or batch named and no flag for it");
	if ((h.flags & XR_BR_BASE) && (!(h.flags & XR_BR_PREV) || h.base > h.prev))
		return bad(why, "its batch begins past the message before it");
	const uint8_t *recs = p + sizeof(h);
	if (h.flags & XR_BR_ZSTD) {
		if (scratch_cap < h.raw_len)
			return bad(why, "no room for its records");
		size_t z = ZSTD_decompress(scratch, h.raw_len, recs, h.len);
		if (ZSTD_isError(z) || z != h.raw_len)
			return bad(why, "its compressed records do not decompress to their length");
		recs = scratch;
	} else if (h.len != h.raw_len) {
		return bad(why, "its records' length is not its header's");
	}
	/* The walk: every record within the records, seqs growing. */
	size_t at = 0;
	uint64_t last = 0;
	for (uint32_t i = 0; i < h.count; i++) {
		struct xr_br_rec r;
		if (h.raw_len - at < sizeof(r))
			return bad(why, "a record's header past the records' end");
		memcpy(&r, recs + at, sizeof(r));
		size_t need = sizeof(r) + (((size_t)r.len + 7) & ~(size_t)7);
		if (r.len == 0 || r.len > max_rec || r.len > XR_BR_REC_MAX || need > h.raw_len - at)
			return bad(why, "a record's length is 0, too large, or past the records' end");
		if (i && r.seq <= last)
			return bad(why, "its records' seqs do not grow");
		if (!i && (h.flags & XR_BR_PREV) && r.seq <= h.prev)
			return bad(why, "its first seq is not past the message before it");
		last = r.seq;
		at += need;
	}
	if (at != h.raw_len)
		return bad(why, "bytes past its last record");
	*m = (struct xr_br_msg){.source = h.source, .incarnation = h.incarnation, .ring = h.ring,
				.count = h.count, .has_prev = (h.flags & XR_BR_PREV) != 0,
				.has_base = (h.flags & XR_BR_BASE) != 0, .prev = h.prev,
				.base = h.base, .recs = recs, .raw_len = h.raw_len};
	return 0;
}

int xr__br_next(const struct xr_br_msg *m, size_t *it, uint64_t *seq, const void **rec,
		uint32_t *len)
{
	struct xr_br_rec r;

	if (*it >= m->raw_len)
		return 0;
	/* Checked by the parse: within the records. */
	memcpy(&r, m->recs + *it, sizeof(r));
	*seq = r.seq;
	*len = r.len;
	*rec = m->recs + *it + sizeof(r);
	*it += sizeof(r) + (((size_t)r.len + 7) & ~(size_t)7);
	return 1;
}
