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

#include "util/clock.h"
#include <unistd.h>

#define ASK_MS 500 /* answers are waited for this long */

struct xr_br_claim {
	natsSubscription *sub;
	char subj[400];
	char nonce[40];          /* our asks carry it: we do not answer ourselves */
	char answer[300];
	uint64_t answered_ns;    /* the last answer's time (libnats' thread only) */
	natsInbox *inbox;        /* xr__br_claim_check's asks: answers come here */
	natsSubscription *replies;
};


/* On libnats' thread: answer whoever asks, but not our own ask. */
static void on_ask(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct xr_br_claim *c = arg;
	const char *reply = natsMsg_GetReply(m);
	int n = natsMsg_GetDataLength(m);

	(void)sub;
	/* Only to an inbox (never onto a subject a stream keeps: our answer
	 * would be published there with our rights), and at most one each
	 * 50 ms: enough for every honest asker, who waits ASK_MS. */
	uint64_t now = xr__now_ns();
	if (reply && !strncmp(reply, "_INBOX.", 7) && now - c->answered_ns >= 50000000ull &&
	    !(n == (int)strlen(c->nonce) && !memcmp(natsMsg_GetData(m), c->nonce, (size_t)n))) {
		c->answered_ns = now;
		natsConnection_PublishString(nc, reply, c->answer);
	}
	natsMsg_Destroy(m);
}

static void token(const char *in, char *out, size_t len)
{
	snprintf(out, len, "%s", in);
	for (char *p = out; *p; p++)
		if (*p == '.' || *p == '*' || *p == '>' || *p == ' ' || *p == '\t')
			*p = '-';
}

/* Names who answered m in why (a stranger's bytes: printable only). */
static int busy(natsMsg *m, const char *what, char *why, size_t len)
{
	char said[128];
	int n = natsMsg_GetDataLength(m);

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
	int rc = 0;

	natsStatus s = natsInbox_Create(&inbox);
	if (s == NATS_OK)
		s = natsConnection_SubscribeSync(&replies, nc, inbox);
	if (s == NATS_OK)
		s = natsConnection_FlushTimeout(nc, 2000);
	if (s == NATS_OK)
		s = natsConnection_PublishRequestString(nc, c->subj, inbox, c->nonce);
	if (s != NATS_OK) {
		snprintf(why, len, "cannot ask who consumes %s: %s", what, natsStatus_GetText(s));
		rc = -EIO;
		goto out;
	}
	natsMsg *m = NULL;
	if (natsSubscription_NextMsg(&m, replies, ASK_MS) == NATS_OK)
		rc = busy(m, what, why, len);
out:
	natsSubscription_Destroy(replies);
	natsInbox_Destroy(inbox);
	return rc;
}

int xr__br_claim_check(natsConnection *nc, struct xr_br_claim *c, const char *what, char *why,
		       size_t len, bool wait)
{
	natsMsg *m = NULL;

	if (wait)
		return ask(nc, c, what, why, len);
	/* Without waiting: the answers to the last ask have had the time
	 * between two checks to come; then the next ask goes. */
	if (!c->replies) {
		if (natsInbox_Create(&c->inbox) != NATS_OK ||
		    natsConnection_SubscribeSync(&c->replies, nc, c->inbox) != NATS_OK)
			return -EIO;
	} else if (natsSubscription_NextMsg(&m, c->replies, 1) == NATS_OK) {
		return busy(m, what, why, len);
	}
	return natsConnection_PublishRequestString(nc, c->subj, c->inbox, c->nonce) == NATS_OK
		       ? 0 : -EIO;
}

int xr__br_claim(natsConnection *nc, const char *js_stream, const char *durable,
		 const char *who, struct xr_br_claim **out, char *why, size_t len)
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
	natsSubscription_Destroy(c->replies);
	natsInbox_Destroy(c->inbox);
	if (done)
		free(c);
}
