/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for bridge messages (bridge/wire.h): what `xring bridge
 * in` takes from a NATS subject anyone with publish rights can write, and
 * what `bridge out` reads back as its resume point. docs/fuzzing.md.
 *
 * Input: one mode byte, then the message.
 *   mode bit 0   the harness makes the checksum good first (as a forger
 *                can), so that mutations reach the checks behind it
 *   mode bit 1   parse with a key (the MAC checked)
 *   mode bit 2   ...and the harness makes the MAC good first (as only a
 *                holder of the key can), to reach the walk behind it
 *   mode bits 3-7  max_rec: 64 << (bits % 12)
 *
 * An accepted message must hand out exactly count records, each inside the
 * records' bytes, none longer than max_rec, seqs growing; violations abort.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bridge/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static volatile unsigned int sink;
static uint8_t scratch[XR_BR_RAW_MAX];

static void make_mac(const struct xr_br_key *k, uint8_t *m, size_t n)
{
	struct xr_br_hdr h;
	uint8_t full[EVP_MAX_MD_SIZE];
	unsigned int fl = 0;

	memcpy(&h, m, sizeof(h));
	h.check = 0;
	memset(h.mac, 0, sizeof(h.mac));
	memcpy(m, &h, sizeof(h));
	if (HMAC(EVP_sha256(), k->bytes, (int)k->len, m, n, full, &fl) && fl >= XR_BR_MAC_LEN)
		memcpy(h.mac, full, XR_BR_MAC_LEN);
	memcpy(m, &h, sizeof(h));
}

static void make_check(uint8_t *m, size_t n)
{
	struct xr_br_hdr h;

	memcpy(&h, m, sizeof(h));
	h.check = xr__br_check(&h, m + sizeof(h), n - sizeof(h));
	memcpy(m, &h, sizeof(h));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct xr_br_key key = {.len = 32};
	struct xr_br_msg m;
	const char *why = NULL;

	if (len < 1 || len - 1 > XR_BR_RAW_MAX + sizeof(struct xr_br_hdr))
		return 0;
	for (uint32_t i = 0; i < key.len; i++)
		key.bytes[i] = (uint8_t)(i * 29 + 1);
	uint8_t mode = data[0];
	size_t n = len - 1;
	uint32_t max_rec = 64u << ((mode >> 3) % 12);
	const struct xr_br_key *k = (mode & 2) ? &key : NULL;
	/* Exactly n bytes: ASan sees a read past the message's end. */
	uint8_t *msg = malloc(n ? n : 1);
	if (!msg)
		return 0;
	memcpy(msg, data + 1, n);
	if (n >= sizeof(struct xr_br_hdr)) {
		if (k && (mode & 4))
			make_mac(k, msg, n);
		if (mode & 1)
			make_check(msg, n);
	}
	if (xr__br_parse(msg, n, max_rec, k, scratch, sizeof(scratch), &m, &why) < 0) {
		if (!why || !why[0])
			abort();
		free(msg);
		return 0;
	}
	const uint8_t *lo = m.recs, *hi = m.recs + m.raw_len;
	if (!((lo >= msg && hi <= msg + n) || (lo >= scratch && hi <= scratch + sizeof(scratch))))
		abort();
	size_t it = 0;
	uint64_t seq, last = 0;
	const void *rec;
	uint32_t rl, count = 0, sum = 0;
	while (xr__br_next(&m, &it, &seq, &rec, &rl)) {
		const uint8_t *r = rec;
		if (r < lo || rl == 0 || rl > max_rec || rl > (size_t)(hi - r) ||
		    (count && seq <= last))
			abort();
		for (uint32_t i = 0; i < rl; i++)
			sum += r[i];
		last = seq;
		count++;
	}
	if (count != m.count)
		abort();
	sink = sum;
	free(msg);
	return 0;
}
