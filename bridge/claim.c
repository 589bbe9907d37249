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
#include <unistd.h>

#define ASK_MS 500 /* answers are waited for this long */

struct xr_br_claim {
	natsSubscription *sub;
	char nonce[40];          /* our asks carry it: we do not answer ourselves */
	char answer[300];
};

/* On libnats' thread: answer whoever asks, but not our own ask. */
static void on_ask(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct xr_br_claim *c = arg;
	const char *reply = natsMsg_GetReply(m);
	int n = natsMsg_GetDataLength(m);

	(void)sub;
	if (reply && !(n == (int)strlen(c->nonce) && !memcmp(natsMsg_GetData(m), c->nonce, (size_t)n)))
		natsConnection_PublishString(nc, reply, c->answer);
	natsMsg_Destroy(m);
}

static void token(const char *in, char *out, size_t len)
{
	snprintf(out, len, "%s", in);
	for (char *p = out; *p; p++)
		if (*p == '.' || *p == '*' || *p == '>' || *p == ' ' || *p == '\t')
			*p = '-';
}

int xr__br_claim(natsConnection *nc, const char *js_stream, const char *durable,
		 const char *who, struct xr_br_claim **out, char *why, size_t len)
{
	struct xr_br_claim *c = calloc(1, sizeof(*c));
	char subj[400], a[160], b[160], host[128] = "";
	char inbox_buf[128];
	natsInbox *inbox = NULL;
	natsSubscription *replies = NULL;
	uint64_t r = 0;
	int rc = 0;

	if (!c) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
	snprintf(c->nonce, sizeof(c->nonce), "ask-%016" PRIx64, r);
	gethostname(host, sizeof(host) - 1);
	snprintf(c->answer, sizeof(c->answer), "%s (pid %d on %s)", who, (int)getpid(), host);
	token(js_stream, a, sizeof(a));
	token(durable, b, sizeof(b));
	snprintf(subj, sizeof(subj), "_XRING.in.%s.%s", a, b);
	/* Ours first, known to the server (the flush) before we ask: of two
	 * that start at once, the later asker hears the earlier. */
	natsStatus s = natsConnection_Subscribe(&c->sub, nc, subj, on_ask, c);
	if (s == NATS_OK)
		s = natsInbox_Create(&inbox);
	if (s == NATS_OK)
		s = natsConnection_SubscribeSync(&replies, nc, inbox);
	if (s == NATS_OK)
		s = natsConnection_FlushTimeout(nc, 2000);
	if (s == NATS_OK)
		s = natsConnection_PublishRequestString(nc, subj, inbox, c->nonce);
	if (s != NATS_OK) {
		snprintf(why, len, "cannot ask who consumes %s: %s", durable, natsStatus_GetText(s));
		rc = -EIO;
		goto out;
	}
	natsMsg *m = NULL;
	if (natsSubscription_NextMsg(&m, replies, ASK_MS) == NATS_OK) {
		int n = natsMsg_GetDataLength(m);
		snprintf(inbox_buf, sizeof(inbox_buf), "%.*s", n < 127 ? n : 127,
			 natsMsg_GetData(m));
		for (char *p = inbox_buf; *p; p++) /* a stranger's bytes, printed */
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				*p = '?';
		natsMsg_Destroy(m);
		snprintf(why, len, "consumer %s of JetStream stream %s is in use by another bridge "
			 "in: %s; stop it first, or give this one another --durable", durable,
			 js_stream, inbox_buf);
		rc = -EBUSY;
	}
out:
	natsSubscription_Destroy(replies);
	natsInbox_Destroy(inbox);
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
