/* SPDX-License-Identifier: MIT */
/* The bridge's JetStream side (js.h). */
#include "bridge/js.h"

#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/clock.h"

#define DUP_WINDOW_NS (600ll * 1000000000ll)
#define STREAM_MAKE_NS (30ull * 1000000000ull) /* a timed-out make asked again this long */

void xr__js_default_name(const char *subject, char *out, size_t len)
{
	size_t n = (size_t)snprintf(out, len, "xring-%s", subject);

	for (size_t i = 6; i < n && i < len; i++)
		if (out[i] == '.' || out[i] == '*' || out[i] == '>' || out[i] == ' ')
			out[i] = '-';
}

int xr__js_connect(const char *url, jsOptions *jo, natsConnection **nc, jsCtx **js, char *why,
		   size_t len)
{
	natsOptions *opts = NULL;
	natsStatus s = natsOptions_Create(&opts);
	char buf[1024];
	const char *srv[16];
	int n = 0;

	/* libnats mallocs every message it takes in, 64 KiB to 16 MiB each,
	 * and frees it once handled. glibc gives such blocks fresh mappings
	 * (or trims the heap's top when they go), so each page was faulted in
	 * and zeroed again for every message: a quarter of bridge in's CPU.
	 * The heap keeps them instead (a bridge is a process of its own: this
	 * is its whole heap's policy). */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);

	/* The list, each server of it (strtok_r: the caller's string stays). */
	snprintf(buf, sizeof(buf), "%s", url);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
		srv[n++] = t;
	if (s == NATS_OK && n)
		s = natsOptions_SetServers(opts, srv, n);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1); /* for ever */
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(opts, 200);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(opts, false, NULL, NULL);
	if (s == NATS_OK)
		s = natsConnection_Connect(nc, opts);
	if (s == NATS_OK)
		s = natsConnection_JetStream(js, *nc, jo);
	natsOptions_Destroy(opts);
	if (s != NATS_OK) {
		snprintf(why, len, "cannot connect to NATS at %s: %s; is nats-server running there "
			 "with JetStream (-js)?", url, natsStatus_GetText(s));
		return -ENOTCONN;
	}
	return 0;
}

void xr__js_close(natsConnection *nc, jsCtx *js)
{
	jsCtx_Destroy(js);
	if (nc) {
		natsConnection_Close(nc);
		natsConnection_Destroy(nc);
	}
}

int xr__js_ensure_stream(jsCtx *js, const char *name, const char *subject, int replicas,
			 char *why, size_t len)
{
	jsStreamInfo *si = NULL;
	jsErrCode err = 0;
	natsStatus s = js_GetStreamInfo(&si, js, name, NULL, &err);

	char subj[300];
	snprintf(subj, sizeof(subj), "%s.>", subject);
	if (s == NATS_OK) {
		/* Someone's stream of that name: it must keep our subjects, or
		 * every publish would be refused for ever. */
		bool ours = false;
		for (int i = 0; si->Config && i < si->Config->SubjectsLen; i++)
			if (!strcmp(si->Config->Subjects[i], subj) || !strcmp(si->Config->Subjects[i], ">"))
				ours = true;
		jsStreamInfo_Destroy(si);
		if (!ours) {
			snprintf(why, len, "JetStream stream %s exists and does not keep %s: give another "
				 "--js-stream, or none (xring-SUBJ is made)", name, subj);
			return -EINVAL;
		}
		return 0;
	}
	const char *subjects[1] = {subj};
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	cfg.Name = name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Replicas = replicas > 0 ? replicas : 1;
	cfg.Duplicates = DUP_WINDOW_NS;
	/* A replicated stream is made by the cluster's consensus, which a busy
	 * or electing cluster may take longer than one API call's wait for:
	 * a timeout is asked again (the stream may have been made meanwhile),
	 * for up to STREAM_MAKE_NS. */
	uint64_t until = xr__now_ns() + STREAM_MAKE_NS;
	for (;;) {
		s = js_AddStream(&si, js, &cfg, NULL, &err);
		if (s == NATS_OK) {
			jsStreamInfo_Destroy(si);
			return 0;
		}
		/* Another bridge made it meanwhile, or our timed-out call did:
		 * fine. */
		natsStatus g = js_GetStreamInfo(&si, js, name, NULL, &err);
		if (g == NATS_OK) {
			jsStreamInfo_Destroy(si);
			return 0;
		}
		if ((s != NATS_TIMEOUT && g != NATS_TIMEOUT) || xr__now_ns() >= until)
			break;
	}
	snprintf(why, len, "cannot make JetStream stream %s of %s: %s (%d)", name, subj,
		 natsStatus_GetText(s), (int)err);
	return -EIO;
}
