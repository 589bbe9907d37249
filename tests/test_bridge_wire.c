/* SPDX-License-Identifier: MIT */
/*
 * Bridge messages (bridge/wire.h), the bytes between hosts:
 *   - round trip, plain and zstd: every record back, in order, byte for byte
 *   - a full message says so (-ENOSPC); bad appends are refused
 *   - every truncation, and a flipped byte anywhere, is refused (-EPROTO)
 *   - fields altered under a valid checksum are refused by their checks:
 *     a count past the records, seqs that do not grow, a record past the
 *     end or past max_rec, a raw length past XR_BR_RAW_MAX (a zip bomb's),
 *     a compressed payload that inflates to another length
 *   - with a key: a message altered under a valid checksum (a forger's,
 *     who can compute it) is refused by its MAC, at every byte; one without
 *     a MAC, or with another key's, is refused; a side without a key still
 *     reads a MACed message
 *   - key files: a good one read whole; one others may read, a symbolic
 *     link, one too short, refused with what to do
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/wire.h"
#include "ring_helpers.h"

enum { N = 300, CAP = 1 << 20 };

static uint8_t recs[CAP], msg[CAP + sizeof(struct xr_br_hdr)], scratch[XR_BR_RAW_MAX];
static const struct xr_br_key *key; /* the one build() seals with, parses check with */

/* Re-seals an altered message: its checksum over the header (check 0) and
 * payload. */
static void reseal(uint8_t *m, size_t len)
{
	struct xr_br_hdr h;

	memcpy(&h, m, sizeof(h));
	h.check = xr__br_check(&h, m + sizeof(h), len - sizeof(h));
	memcpy(m, &h, sizeof(h));
}

static uint32_t rec_len(uint32_t i)
{
	return 1 + (i * 37) % 700;
}

static void fill(uint8_t *b, uint32_t i, uint32_t len)
{
	for (uint32_t j = 0; j < len; j++)
		b[j] = (uint8_t)(i * 13 + j * 7);
}

static long build(int level, uint32_t n)
{
	struct xr_br_build b;
	uint8_t r[1024];

	const uint64_t prev = 997, base = 990; /* the message before, its batch */

	xr__br_begin(&b, recs, sizeof(recs), xr__br_source("a", "experience"), 77, 3, &prev, &base);
	for (uint32_t i = 0; i < n; i++) {
		fill(r, i, rec_len(i));
		CHECK_RC(xr__br_add(&b, 1000 + 2 * i, r, rec_len(i)), 0); /* gaps: lossy */
	}
	long len = xr__br_seal(&b, level, key, msg, sizeof(msg));
	CHECK(len > (long)sizeof(struct xr_br_hdr));
	return len;
}

static void check_all(const uint8_t *m, size_t len, uint32_t n)
{
	struct xr_br_msg pm;
	const char *why = NULL;
	uint8_t want[1024];

	int rc = xr__br_parse(m, len, 4096, key, scratch, sizeof(scratch), &pm, &why);
	if (rc < 0)
		FAILF("a sound message refused: %s", why);
	CHECK_EQ(pm.count, n);
	CHECK_EQ(pm.ring, 3);
	CHECK_EQ(pm.incarnation, 77);
	CHECK(pm.source == xr__br_source("a", "experience"));
	CHECK(pm.has_prev && pm.has_base);
	CHECK_EQ(pm.prev, 997);
	CHECK_EQ(pm.base, 990);
	size_t it = 0;
	uint64_t seq;
	const void *rec;
	uint32_t rl, i = 0;
	while (xr__br_next(&pm, &it, &seq, &rec, &rl)) {
		CHECK_EQ(seq, 1000 + 2 * i);
		CHECK_EQ(rl, rec_len(i));
		fill(want, i, rl);
		CHECK(memcmp(rec, want, rl) == 0);
		i++;
	}
	CHECK_EQ(i, n);
}

static void refused(const uint8_t *m, size_t len, const char *what, const char *want)
{
	struct xr_br_msg pm;
	const char *why = NULL;

	int rc = xr__br_parse(m, len, 4096, key, scratch, sizeof(scratch), &pm, &why);
	bool mac = want && (!strcmp(want, "MAC") || strstr(want, "MAC does not match") ||
			    strstr(want, "carries no MAC"));
	bool version = want && strstr(want, "version");
	if (mac	      ? rc != -EKEYREJECTED
	    : version ? rc != -EPROTONOSUPPORT
		      : rc != -EPROTO && rc != -EKEYREJECTED && rc != -EPROTONOSUPPORT)
		FAILF("%s: %d, want %s", what, rc,
		      mac ? "-EKEYREJECTED" : version ? "-EPROTONOSUPPORT" : "-EPROTO");
	if (want && !strstr(why, want))
		FAILF("%s: refused for '%s', want '%s'", what, why, want);
}

static void keyed(struct xr_br_key *k, uint8_t salt)
{
	memset(k, 0, sizeof(*k));
	k->len = 32;
	for (uint32_t i = 0; i < k->len; i++)
		k->bytes[i] = (uint8_t)(i * 29 + salt);
}

static void macs(void)
{
	static uint8_t c[CAP + sizeof(struct xr_br_hdr)];
	static struct xr_br_key k1, k2;
	keyed(&k1, 1);
	keyed(&k2, 2);

	for (int level = 0; level <= 3; level += 3) {
		key = &k1;
		long len = build(level, 24);
		CHECK(((struct xr_br_hdr *)msg)->flags & XR_BR_MAC);
		check_all(msg, (size_t)len, 24);
		/* A forger's: any byte altered, the checksum made good again. */
		for (long at = 0; at < len; at++) {
			if (at >= 40 && at < 48)
				continue; /* the checksum itself: reseal puts it back */
			memcpy(c, msg, (size_t)len);
			c[at] ^= 0x01;
			reseal(c, (size_t)len);
			/* magic, version, flags, count, lengths: refused by their
			 * own checks first; the rest only the MAC can catch. */
			bool own = at < 8 || (at >= 28 && at < 40);
			refused(c, (size_t)len, "a forged byte", own ? NULL : "MAC");
		}
		/* Another key's MAC. */
		key = &k2;
		refused(msg, (size_t)len, "another key's MAC", "MAC does not match");
		/* A side without a key reads it still. */
		key = NULL;
		check_all(msg, (size_t)len, 24);
		/* No MAC, to a side with a key. */
		len = build(level, 24);
		key = &k1;
		refused(msg, (size_t)len, "no MAC", "carries no MAC");
		/* MAC bytes without the flag, to a side without a key. */
		key = NULL;
		memcpy(c, msg, (size_t)len);
		((struct xr_br_hdr *)c)->mac[3] = 1;
		reseal(c, (size_t)len);
		refused(c, (size_t)len, "mac bytes, no flag", "no MAC flag");
	}
	printf("MACs: forged bytes, another key, no MAC: each refused\n");
}

static void key_files(void)
{
	char dir[] = "/tmp/xr-bridge-key-XXXXXX", path[128], link_path[160], why[256];
	struct xr_br_key k;
	uint8_t bytes[40];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/key", dir);
	snprintf(link_path, sizeof(link_path), "%s/link", dir);
	for (uint32_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (uint8_t)(i * 7 + 3);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, bytes, sizeof(bytes)) == (ssize_t)sizeof(bytes));
	close(fd);
	CHECK_RC(xr__br_key_load(path, &k, why, sizeof(why)), 0);
	CHECK_EQ(k.len, sizeof(bytes));
	CHECK(memcmp(k.bytes, bytes, sizeof(bytes)) == 0);
	CHECK(symlink(path, link_path) == 0);
	CHECK_RC(xr__br_key_load(link_path, &k, why, sizeof(why)), -ELOOP);
	CHECK(strstr(why, "symbolic link"));
	CHECK(chmod(path, 0640) == 0);
	CHECK_RC(xr__br_key_load(path, &k, why, sizeof(why)), -EPERM);
	CHECK(strstr(why, "chmod 600"));
	CHECK_EQ(k.len, 0);
	CHECK(chmod(path, 0600) == 0);
	CHECK(truncate(path, XR_BR_KEY_MIN - 1) == 0);
	CHECK_RC(xr__br_key_load(path, &k, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "/dev/urandom"));
	CHECK_RC(xr__br_key_load(dir, &k, why, sizeof(why)), -EINVAL); /* not a file */
	unlink(link_path);
	unlink(path);
	rmdir(dir);
	printf("key files: a good one read; shared, linked, short, a directory refused\n");
}

int main(void)
{
	static uint8_t c[CAP + sizeof(struct xr_br_hdr)];

	for (int level = 0; level <= 3; level += 3) {
		long len = build(level, N);
		check_all(msg, (size_t)len, N);
		printf("%s: %d records in %ld bytes\n", level ? "zstd" : "plain", N, len);
		/* Every truncation and every flipped byte, of a smaller one. */
		len = build(level, 24);
		check_all(msg, (size_t)len, 24);
		for (long cut = 0; cut < len; cut++)
			refused(msg, (size_t)cut, "a cut message", NULL);
		for (long at = 0; at < len; at++) {
			memcpy(c, msg, (size_t)len);
			c[at] ^= 0x40;
			refused(c, (size_t)len, "a flipped byte", NULL);
		}
	}

	/* Full, and bad appends. */
	{
		struct xr_br_build b;
		uint8_t small[256], r[200] = {0};
		const uint64_t prev = 5;
		xr__br_begin(&b, small, sizeof(small), 1, 1, 0, &prev, NULL);
		CHECK_RC(xr__br_add(&b, 5, r, sizeof(r)), -EINVAL); /* not past prev */
		xr__br_begin(&b, small, sizeof(small), 1, 1, 0, NULL, &prev);
		CHECK(!(b.h.flags & XR_BR_BASE)); /* no base without a prev */
		CHECK_RC(xr__br_add(&b, 5, r, sizeof(r)), 0);
		CHECK_RC(xr__br_add(&b, 6, r, sizeof(r)), -ENOSPC);
		CHECK_RC(xr__br_add(&b, 5, r, 8), -EINVAL);   /* seq not past the last */
		CHECK_RC(xr__br_add(&b, 9, r, 0), -EINVAL);
	}

	/* Fields altered under a valid checksum (plain payload). */
	long len = build(0, 4);
	struct xr_br_hdr h;
	memcpy(&h, msg, sizeof(h));
	/* count one more than there are */
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->count = h.count + 1;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "count + 1", "past the records' end");
	/* count past what raw_len could hold */
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->count = h.raw_len;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "count huge", "more records");
	/* seqs that do not grow: the second record's seq = the first's */
	memcpy(c, msg, (size_t)len);
	{
		uint8_t *r0 = c + sizeof(struct xr_br_hdr);
		struct xr_br_rec a;
		memcpy(&a, r0, sizeof(a));
		uint8_t *r1 = r0 + sizeof(a) + ((a.len + 7) & ~7u);
		memcpy(r1, &a.seq, 8);
	}
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "seqs not growing", "do not grow");
	/* a record past max_rec, and one past the end */
	memcpy(c, msg, (size_t)len);
	{
		struct xr_br_rec a;
		memcpy(&a, c + sizeof(struct xr_br_hdr), sizeof(a));
		a.len = 5000;
		memcpy(c + sizeof(struct xr_br_hdr), &a, sizeof(a));
	}
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "a record past max_rec", "too large");
	memcpy(c, msg, (size_t)len);
	{
		struct xr_br_rec a;
		memcpy(&a, c + sizeof(struct xr_br_hdr), sizeof(a));
		a.len = 4000; /* within max_rec, past the end */
		memcpy(c + sizeof(struct xr_br_hdr), &a, sizeof(a));
	}
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "a record past the end", "past the records' end");
	/* raw_len past the bound: a zip bomb's promise */
	long zl = build(3, N);
	memcpy(c, msg, (size_t)zl);
	((struct xr_br_hdr *)c)->raw_len = XR_BR_RAW_MAX + 1;
	reseal(c, (size_t)zl);
	refused(c, (size_t)zl, "raw_len past the bound", "more records");
	/* a compressed payload that inflates to another length */
	memcpy(c, msg, (size_t)zl);
	((struct xr_br_hdr *)c)->raw_len -= 8;
	reseal(c, (size_t)zl);
	refused(c, (size_t)zl, "raw_len short of the payload", "decompress");
	/* a plain payload whose raw_len is not its length */
	len = build(0, 4);
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->raw_len += 8;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "raw_len not len", NULL);
	/* no records */
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->count = 0;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "count 0", "no records");
	/* unknown flags, another version */
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->flags = 16;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "unknown flags", "flags");
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->version = 1;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "version 1", "an earlier version");
	((struct xr_br_hdr *)c)->version = 3;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "version 3", "a later version");
	/* the message before named at or past this one's first record, or
	 * named without its flag */
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->prev = 1000;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "prev at the first seq", "not past the message before");
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->flags &= (uint16_t)~(XR_BR_PREV | XR_BR_BASE);
	((struct xr_br_hdr *)c)->base = 0;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "prev without its flag", "no flag for it");
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->flags &= (uint16_t)~XR_BR_BASE;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "base without its flag", "no flag for it");
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->base = 998;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "base past prev", "batch begins past");
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->flags &= (uint16_t)~XR_BR_PREV;
	((struct xr_br_hdr *)c)->prev = 0;
	reseal(c, (size_t)len);
	refused(c, (size_t)len, "base without prev", "batch begins past");
	memcpy(c, msg, (size_t)len);
	((struct xr_br_hdr *)c)->flags &= (uint16_t)~(XR_BR_PREV | XR_BR_BASE);
	((struct xr_br_hdr *)c)->prev = 0;
	((struct xr_br_hdr *)c)->base = 0;
	reseal(c, (size_t)len);
	{
		struct xr_br_msg pm;
		const char *why = NULL;
		CHECK_RC(xr__br_parse(c, (size_t)len, 4096, key, scratch, sizeof(scratch), &pm, &why), 0);
		CHECK(!pm.has_prev && !pm.has_base);
	}
	macs();
	key_files();
	printf("ok\n");
	return 0;
}
