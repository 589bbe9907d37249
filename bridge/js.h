/* SPDX-License-Identifier: MIT */
#ifndef XR_BRIDGE_JS_H
#define XR_BRIDGE_JS_H

/*
 * The bridge's NATS JetStream side (libnats): a connection that keeps
 * trying to reconnect, and the JetStream stream the bridge's subjects go
 * to, made when missing.
 */

#include <stddef.h>
#include <nats/nats.h>

/* The JetStream stream's name for subject prefix `subject` when none is
 * given: "xring-" and the subject, its dots and wildcards as dashes. */
void xr__js_default_name(const char *subject, char *out, size_t len);

/* Connects to url (comma-separated servers), reconnecting for ever on a
 * lost connection, and makes its JetStream context (jo: its options, NULL
 * for the defaults). 0, or -ENOTCONN with why. */
int xr__js_connect(const char *url, jsOptions *jo, natsConnection **nc, jsCtx **js, char *why,
		   size_t len);
void xr__js_close(natsConnection *nc, jsCtx *js);

/* Makes stream `name` of subjects "subject.>" (file storage, replicas,
 * duplicates window 10 minutes) unless it exists. 0, or -EIO with why. */
int xr__js_ensure_stream(jsCtx *js, const char *name, const char *subject, int replicas,
			 char *why, size_t len);

#endif
