/* SPDX-License-Identifier: MIT */
/* One bridge in per durable consumer (claim.h). */
#include "bridge/claim.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <unistd.h>

#include "bridge/wire.h"
#include "util/clock.h"

#define ASK_MS 500       /* answers are waited for this long */
#define MAC_TAG " mac="  /* an ask's or answer's MAC follows it, in hex */
#define SEEN_ASKS 16     /* with a key: the last challenges answered */
#define ASK "xring bridge in ask 1"       /* what a MAC is of (mac_hex) */
#define ANSWER "xring bridge in claim 1"

struct xr_br_claim {
	natsSubscription *sub;
	char subj[400];
	char nonce[40];          /* our asks begin with it: we do not answer ourselves */
	char answer[300];
	const struct xr_br_key *key; /* NULL: answers unauthenticated */
	uint64_t answered_ns;    /* the last answer's time (libnats' thread only) */
	char seen[SEEN_ASKS][80]; /* with a key: challenges answered (libnats' thread) */
	int seen_at;
	uint64_t ignored;        /* answers without a good MAC */
};

/* With a key, asks and answers end in " mac=HEX": an ask is "CHALLENGE
 * mac=HEX", the MAC of the subject and the challenge (fresh for each ask);
 * an answer is "WHO mac=HEX", the MAC of the subject, the ask's challenge
 * (an answer recorded once is no answer to another ask) and WHO. Someone
 * who may publish on the subject but has no key can neither ask nor
 * answer. `what` keeps the two kinds apart; who is NULL for an ask. 0, or
 * -EIO. */
static int mac_hex(const struct xr_br_claim *c, const char *what, const char *challenge,
		   const char *who, size_t who_len, char hex[2 * XR_BR_MAC_LEN + 1])
{
	uint8_t mac[XR_BR_MAC_LEN];
	const void *parts[] = {what, c->subj, challenge, who};
	size_t lens[] = {strlen(what) + 1, strlen(c->subj) + 1, strlen(challenge) + 1, who_len};

	if (xr__br_hmac(c->key, parts, lens, who ? 4 : 3, mac) < 0)
		return -EIO;
	for (int i = 0; i < (int)XR_BR_MAC_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	return 0;
}

/* The length of d's part before its " mac=HEX" (n bytes in all), or -1
 * when it has none. */
static int before_mac(const char *d, int n)
{
	int tag = (int)strlen(MAC_TAG), hex = 2 * (int)XR_BR_MAC_LEN;

	if (n < tag + hex || memcmp(d + n - hex - tag, MAC_TAG, (size_t)tag) != 0)
		return -1;
	return n - hex - tag;
}

/* Whether d's MAC (after its first len bytes and MAC_TAG) is want. */
static bool mac_is(const char *d, int len, const char *want)
{
	return CRYPTO_memcmp(want, d + len + strlen(MAC_TAG), 2 * XR_BR_MAC_LEN) == 0;
}

/* Whether m answers the ask of challenge: any answer without a key; with
 * one, only an answer whose MAC is good. *who_len: the WHO part's. */
static bool answers(const struct xr_br_claim *c, natsMsg *m, const char *challenge,
		    int *who_len)
{
	const char *d = natsMsg_GetData(m);
	char want[2 * XR_BR_MAC_LEN + 1];

	*who_len = natsMsg_GetDataLength(m);
	if (!c->key)
		return true;
	*who_len = before_mac(d, *who_len);
	return *who_len >= 0 && mac_hex(c, ANSWER, challenge, d, (size_t)*who_len, want) == 0 &&
	       mac_is(d, *who_len, want);
}

static void new_challenge(const struct xr_br_claim *c, char *out, size_t len)
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = xr__now_ns() * 0x9e3779b97f4a7c15ull;
	snprintf(out, len, "%s-%016" PRIx64, c->nonce, r);
}


/* On libnats' thread: answer whoever asks (with a key, whoever asks with
 * a good MAC), but not our own ask. */
static void on_ask(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct xr_br_claim *c = arg;
	const char *reply = natsMsg_GetReply(m);
	const char *d = natsMsg_GetData(m);
	int n = natsMsg_GetDataLength(m);
	size_t own = strlen(c->nonce);
	char challenge[80], hex[2 * XR_BR_MAC_LEN + 1];
	char out[sizeof(c->answer) + sizeof(MAC_TAG) + 2 * XR_BR_MAC_LEN];

	(void)sub;
	/* Only to an inbox: never onto a subject a stream keeps (our answer
	 * would be published there with our rights). */
	if (!reply || strncmp(reply, "_INBOX.", 7) != 0)
		goto out;
	if (c->key) {
		/* Only key holders ask: each ask answered (a flood of
		 * strangers' asks takes no answer away from them), each
		 * challenge once (a recorded ask played again is not). */
		int cn = before_mac(d, n);
		if (cn <= 0 || cn >= (int)sizeof(challenge))
			goto out;
		memcpy(challenge, d, (size_t)cn);
		challenge[cn] = '\0';
		if (strlen(challenge) != (size_t)cn || mac_hex(c, ASK, challenge, NULL, 0, hex) < 0 ||
		    !mac_is(d, cn, hex))
			goto out;
		for (int i = 0; i < SEEN_ASKS; i++)
			if (!strcmp(c->seen[i], challenge))
				goto out; /* answered once */
		snprintf(c->seen[c->seen_at], sizeof(c->seen[0]), "%s", challenge);
		c->seen_at = (c->seen_at + 1) % SEEN_ASKS;
	} else {
		/* Anyone's: at most one answer each 50 ms, enough for every
		 * honest asker, who waits ASK_MS. */
		uint64_t now = xr__now_ns();
		if (now - c->answered_ns < 50000000ull || n <= 0 || n >= (int)sizeof(challenge))
			goto out;
		c->answered_ns = now;
		snprintf(challenge, sizeof(challenge), "%.*s", n, d);
	}
	if (strlen(challenge) > own && !memcmp(challenge, c->nonce, own) && challenge[own] == '-')
		goto out; /* our own */
	if (!c->key)
		snprintf(out, sizeof(out), "%s", c->answer);
	else if (mac_hex(c, ANSWER, challenge, c->answer, strlen(c->answer), hex) == 0)
		snprintf(out, sizeof(out), "%s" MAC_TAG "%s", c->answer, hex);
	else
		goto out;
	natsConnection_PublishString(nc, reply, out);
out:
	natsMsg_Destroy(m);
}

static void token(const char *in, char *out, size_t len)
{
	snprintf(out, len, "%s", in);
	for (char *p = out; *p; p++)
		if (*p == '.' || *p == '*' || *p == '>' || *p == ' ' || *p == '\t')
			*p = '-';
}

/* Names who answered m (its first n bytes) in why (a stranger's bytes:
 * printable only). */
static int busy(natsMsg *m, int n, const char *what, char *why, size_t len)
{
	char said[128];

	snprintf(said, sizeof(said), "%.*s", n < 127 ? n : 127, natsMsg_GetData(m));
	for (char *p = said; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	natsMsg_Destroy(m);
	snprintf(why, len, "%s is in use by another bridge in: %s; stop it first, or give this "
		 "one another --durable", what, said);
	return -EBUSY;
}

/* Asks on c's subject whether anyone else answers: 0, -EBUSY with why
 * naming who, or -EIO. */
static int ask(natsConnection *nc, struct xr_br_claim *c, const char *what, char *why,
	       size_t len)
{
	natsInbox *inbox = NULL;
	natsSubscription *replies = NULL;
	char challenge[80];
	int rc = 0;

	char asked[sizeof(challenge) + sizeof(MAC_TAG) + 2 * XR_BR_MAC_LEN], hex[2 * XR_BR_MAC_LEN + 1];
	new_challenge(c, challenge, sizeof(challenge));
	snprintf(asked, sizeof(asked), "%s", challenge);
	if (c->key && mac_hex(c, ASK, challenge, NULL, 0, hex) == 0)
		snprintf(asked, sizeof(asked), "%s" MAC_TAG "%s", challenge, hex);
	natsStatus s = natsInbox_Create(&inbox);
	if (s == NATS_OK)
		s = natsConnection_SubscribeSync(&replies, nc, inbox);
	if (s == NATS_OK)
		s = natsConnection_FlushTimeout(nc, 2000);
	if (s == NATS_OK)
		s = natsConnection_PublishRequestString(nc, c->subj, inbox, asked);
	if (s != NATS_OK) {
		snprintf(why, len, "cannot ask who consumes %s: %s", what, natsStatus_GetText(s));
		rc = -EIO;
		goto out;
	}
	/* Answers without a good MAC are passed over: until ASK_MS is up. */
	uint64_t end = xr__now_ns() + ASK_MS * 1000000ull;
	for (uint64_t now = xr__now_ns(); now < end; now = xr__now_ns()) {
		natsMsg *m = NULL;
		int who_len;
		if (natsSubscription_NextMsg(&m, replies, (int64_t)((end - now + 999999) / 1000000)) !=
		    NATS_OK)
			break;
		if (answers(c, m, challenge, &who_len)) {
			rc = busy(m, who_len, what, why, len);
			break;
		}
		c->ignored++;
		natsMsg_Destroy(m);
	}
out:
	natsSubscription_Destroy(replies);
	natsInbox_Destroy(inbox);
	return rc;
}

uint64_t xr__br_claim_ignored(const struct xr_br_claim *c)
{
	return c ? c->ignored : 0;
}

int xr__br_claim(natsConnection *nc, const char *js_stream, const char *durable,
		 const char *who, const struct xr_br_key *key, struct xr_br_claim **out,
		 char *why, size_t len)
{
	struct xr_br_claim *c = calloc(1, sizeof(*c));
	char a[160], b[160], host[128] = "", what[400];
	uint64_t r = 0;
	int rc = 0;

	if (!c) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
	snprintf(c->nonce, sizeof(c->nonce), "ask-%016" PRIx64, r);
	c->key = key;
	gethostname(host, sizeof(host) - 1);
	snprintf(c->answer, sizeof(c->answer), "%s (pid %d on %s)", who, (int)getpid(), host);
	token(js_stream, a, sizeof(a));
	token(durable, b, sizeof(b));
	snprintf(c->subj, sizeof(c->subj), "_XRING.in.%s.%s", a, b);
	snprintf(what, sizeof(what), "consumer %s of JetStream stream %s", durable, js_stream);
	/* Ours first, known to the server (the flush in ask) before we ask:
	 * of two that start at once, the later asker hears the earlier. */
	natsStatus s = natsConnection_Subscribe(&c->sub, nc, c->subj, on_ask, c);
	if (s != NATS_OK) {
		snprintf(why, len, "cannot ask who consumes %s: %s", durable, natsStatus_GetText(s));
		rc = -EIO;
	} else {
		rc = ask(nc, c, what, why, len);
	}
	if (rc < 0) {
		xr__br_claim_drop(c);
		return rc;
	}
	*out = c;
	return 0;
}

void xr__br_claim_drop(struct xr_br_claim *c)
{
	if (!c)
		return;
	/* The answering callback may be running on libnats' thread: c goes
	 * only once a drain says no callback is left; else it is left to
	 * the process's end (a few hundred bytes). */
	bool done = !c->sub || (natsSubscription_Drain(c->sub) == NATS_OK &&
				natsSubscription_WaitForDrainCompletion(c->sub, 2000) == NATS_OK);
	natsSubscription_Destroy(c->sub);
	if (done)
		free(c);
}
