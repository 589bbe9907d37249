/* SPDX-License-Identifier: MIT */
/*
 * `xring bridge out|in`: a stream carried between hosts through NATS
 * JetStream (bridge/bridge.h, docs/bridge.md). Runs until SIGINT or
 * SIGTERM (or, out, until its engine stops), then prints what it carried.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bridge/bridge.h"
#include "bridge/wire.h"
#include "cli/args.h"
#include "cli/commands.h"

static const char bridge_help[] =
	"usage: xring bridge out NAME --nats URL --subject SUBJ [options]\n"
	"       xring bridge in NAME --nats URL --subject SUBJ [options]\n"
	"\n"
	"out: reads a stream of engine NAME (as a reader) and publishes its records to\n"
	"NATS JetStream, in batches, under SUBJ.<source>.<ring>; in: consumes SUBJ.> of\n"
	"JetStream through a durable consumer and writes the records into a stream of\n"
	"engine NAME as an external producer (start it with --producers N), exactly once\n"
"(docs/bridge.md). Both make the JetStream stream if it is missing.\n"
	"\n"
	"  --key-file PATH       the secret both sides share (a file of 16..4096 bytes,\n"
	"                        mode 600: `head -c 32 /dev/urandom > PATH`): out MACs\n"
	"                        every message with it, in takes no message without it\n"
	"  --unauthenticated     no key: whoever may publish on SUBJ.> may forge records\n"
	"                        (only where NATS permissions keep everyone else off)\n"
	"  --stream S            the local stream (default: experience)\n"
	"  --nats URL[,URL...]   the NATS servers (nats://HOST:PORT)\n"
	"  --subject SUBJ        the subject prefix, e.g. xring.games\n"
	"  --js-stream NAME      the JetStream stream (default: xring-SUBJ, dots as dashes)\n"
	"  --replicas N          when making the JetStream stream: its replicas (default: 1)\n"
	"out:\n"
	"  --zstd LEVEL          compress messages with zstd at LEVEL 1..19 (default: off)\n"
	"  --max-bytes B         a message's records at most, 4K..16M (default: 256K)\n"
	"  --lossy               read lossy: the engine never waits for the bridge, and\n"
	"                        what it drops is counted at the source\n"
	"in:\n"
	"  --durable NAME        the consumer's name (default: xring-in-NAME)\n"
	"  --max-ack-pending N   messages in flight (default: 64)\n"
	"  --ring K              the producer slot to take: the stream's ring K (default:\n"
	"                        the first free one); give the same K after a restart\n"
	"  --ack-refused         acknowledge refused messages even before a good one\n"
	"                        (else another key's or shape's first message stops it,\n"
	"                        acknowledging nothing)\n"
	"  --quiet               print nothing but errors\n";

static atomic_int stop; /* bridge.h: struct xr_bridge_opts */

/* A NATS name the bridge may put into the protocol: printable ASCII but
 * space, * and >; with dots, a subject's tokens, none of them empty. */
static bool name_ok(const char *s, bool dots, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || (dots && (s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))))
		return false;
	for (const char *c = s; *c; c++)
		if (*c <= ' ' || *c > '~' || *c == '*' || *c == '>' || (!dots && (*c == '.' ||
		    *c == '/' || *c == '\\')))
			return false;
	return true;
}

static void on_signal(int sig)
{
	(void)sig;
	atomic_store_explicit(&stop, 1, memory_order_relaxed);
}

int xr_cmd_bridge(int argc, char **argv)
{
	enum { O_STREAM, O_NATS, O_SUBJ, O_JS, O_REPL, O_ZSTD, O_MAXB, O_LOSSY, O_DUR, O_MAP,
	       O_RING, O_QUIET, O_KEY, O_NOAUTH, O_ACKREF, O_HELP };
	static const struct xr_opt opts[] = {
		[O_STREAM] = {"--stream", true},     [O_NATS] = {"--nats", true},
		[O_SUBJ] = {"--subject", true},      [O_JS] = {"--js-stream", true},
		[O_REPL] = {"--replicas", true},     [O_ZSTD] = {"--zstd", true},
		[O_MAXB] = {"--max-bytes", true},    [O_LOSSY] = {"--lossy", false},
		[O_DUR] = {"--durable", true},       [O_MAP] = {"--max-ack-pending", true},
		[O_RING] = {"--ring", true},         [O_QUIET] = {"--quiet", false},
		[O_KEY] = {"--key-file", true},      [O_NOAUTH] = {"--unauthenticated", false},
		[O_ACKREF] = {"--ack-refused", false},
		[O_HELP] = {"--help", false},        {NULL, false},
	};
	struct xr_bridge_opts o = {.replicas = 1, .max_bytes = 256u << 10, .stop = &stop};
	const char *v, *dir = NULL, *key_file = NULL;
	bool no_auth = false;
	int i = 1, k;
	long n;
	uint64_t size;

	while (i < argc) {
		k = xr_next_opt("bridge", argc, argv, &i, opts, &v);
		switch (k) {
		case -2: return XR_EXIT_USAGE;
		case -1:
			if (!dir) {
				dir = v;
			} else if (!o.engine) {
				o.engine = v;
			} else {
				xr_cli_err("bridge", "unexpected '%s'; see `xring bridge --help`", v);
				return XR_EXIT_USAGE;
			}
			break;
		case O_STREAM: o.stream = v; break;
		case O_NATS: o.nats = v; break;
		case O_SUBJ: o.subject = v; break;
		case O_JS: o.js_stream = v; break;
		case O_REPL:
			if (!xr_parse_int(v, 1, 5, &n)) {
				xr_cli_err("bridge", "--replicas must be 1..5, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			o.replicas = (int)n;
			break;
		case O_ZSTD:
			if (!xr_parse_int(v, 1, 19, &n)) {
				xr_cli_err("bridge", "--zstd must be a level 1..19, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			o.zstd = (int)n;
			break;
		case O_MAXB:
			if (!xr_parse_size(v, &size) || size < 4096 || size > (16u << 20)) {
				xr_cli_err("bridge", "--max-bytes must be 4K..16M, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			o.max_bytes = (uint32_t)size;
			break;
		case O_LOSSY: o.lossy = 1; break;
		case O_DUR: o.durable = v; break;
		case O_MAP:
			if (!xr_parse_int(v, 1, 100000, &n)) {
				xr_cli_err("bridge", "--max-ack-pending must be 1..100000, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			o.max_ack_pending = (int)n;
			break;
		case O_RING:
			if (!xr_parse_int(v, 1, 31, &n)) {
				xr_cli_err("bridge", "--ring must be 1..31, not '%s'", v);
				return XR_EXIT_USAGE;
			}
			o.ring = (uint32_t)n;
			break;
		case O_QUIET: o.quiet = 1; break;
		case O_KEY: key_file = v; break;
		case O_NOAUTH: no_auth = true; break;
		case O_ACKREF: o.ack_refused = 1; break;
		case O_HELP: fputs(bridge_help, stdout); return 0;
		}
	}
	bool out = dir && !strcmp(dir, "out"), in = dir && !strcmp(dir, "in");
	if (!out && !in) {
		xr_cli_err("bridge", "say out or in, then the engine's name (see `xring bridge --help`)");
		return XR_EXIT_USAGE;
	}
	if (!o.engine || !o.nats || !o.subject) {
		xr_cli_err("bridge", "name the engine, --nats and --subject (see `xring bridge --help`)");
		return XR_EXIT_USAGE;
	}
	if (!name_ok(o.subject, true, 200)) {
		xr_cli_err("bridge", "--subject must be a NATS subject: tokens of printable characters "
				     "(no spaces, no * or >) joined by single dots, up to 200 characters");
		return XR_EXIT_USAGE;
	}
	if ((o.js_stream && !name_ok(o.js_stream, false, 100)) ||
	    (o.durable && !name_ok(o.durable, false, 100))) {
		xr_cli_err("bridge", "--js-stream and --durable must be names of printable characters "
				     "(no spaces, dots, * or >), up to 100 characters");
		return XR_EXIT_USAGE;
	}
	if (!key_file == !no_auth) {
		xr_cli_err("bridge", key_file ? "give --key-file or --unauthenticated, not both"
					      : "give --key-file PATH (the same secret on both sides; "
						"see `xring bridge --help`), or --unauthenticated");
		return XR_EXIT_USAGE;
	}
	static struct xr_br_key key;
	if (key_file) {
		char kwhy[400];
		if (xr__br_key_load(key_file, &key, kwhy, sizeof(kwhy)) < 0) {
			xr_cli_err("bridge", "%s", kwhy);
			return XR_EXIT_USAGE;
		}
		o.key = &key;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct xr_bridge_stats st = {0};
	char why[512] = "";
	int rc = out ? xr__bridge_out(&o, &st, why, sizeof(why))
		     : xr__bridge_in(&o, &st, why, sizeof(why));
	if (!o.quiet && (rc == 0 || st.messages || st.refused)) { /* not after a failed start */
		printf("xring bridge %s: %" PRIu64 " records in %" PRIu64 " messages (%" PRIu64
		       " bytes)",
		       dir, st.records, st.messages, st.bytes);
		if (in)
			printf(", %" PRIu64 " duplicates skipped, %" PRIu64 " refused, %" PRIu64
			       " lost on the way and fetched again", st.duplicates, st.refused,
			       st.gaps);
		if (in && st.late)
			printf(", %" PRIu64 " ahead of their order passed over", st.late);
		if (in && st.holes)
			printf(", %" PRIu64 " after records that never came", st.holes);
		if (in && st.forged_answers)
			printf(", %" PRIu64 " answers to its claim without a good MAC passed over",
			       st.forged_answers);
		if (out)
			printf(", %" PRIu64 " publishes retried, %" PRIu64 " sent again in order",
			       st.retries, st.copies);
		if (out && st.taken_ids)
			printf(", %" PRIu64 " under ids of their own (theirs taken by another's)",
			       st.taken_ids);
		if (out && o.lossy)
			printf(", %" PRIu64 " dropped at the source (lossy: never sent)", st.dropped);
		printf("\n");
		fflush(stdout);
	}
	if (rc < 0) {
		xr_cli_err("bridge", "%s", why[0] ? why : "failed");
		return XR_EXIT_FAIL;
	}
	return 0;
}
