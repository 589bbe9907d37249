/* SPDX-License-Identifier: MIT */
/*
 * bench_nats: the bound of perf/bench_bridge.py, a plain libnats publisher
 * and consumer of the same bytes through the same nats-server, with
 * nothing of xring on the path. What a team would write by hand to carry
 * record batches through JetStream, done as `xring bridge` does it: a
 * publisher of messages with a Nats-Msg-Id, a durable pull consumer that
 * fetches up to 16 and acknowledges each. The publisher waits for each
 * message's ack, or with --window N publishes N messages without waiting
 * (at most 64 unacknowledged, as `bridge out` does) and then waits for all
 * their acks, as `bridge out` does with a batch's messages.
 *
 *   bench_nats --url URL --stream NAME --subject SUBJ --msg-bytes B
 *              --seconds T --payload FILE
 *       throughput: messages of B bytes, cut from FILE's bytes over and
 *       over (the records the bridge carries), for T seconds; the consumer
 *       counts from its first message to the publisher's end. One line of
 *       JSON: messages, bytes, seconds, gbps, msgs_per_s.
 *   bench_nats --url URL --stream NAME --subject SUBJ --latency N
 *              --interval-ms I --msg-bytes B
 *       latency: N messages of B bytes, one every I ms, each carrying its
 *       CLOCK_MONOTONIC publish time; the consumer's receive time minus it.
 *       One line of JSON: n, p50_us, p99_us, max_us.
 *
 * The stream NAME (subjects SUBJ.>, file storage, one replica) must exist
 * or is made; the caller removes the server afterwards.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *url, *stream_name, *subject, *payload_path;
static size_t msg_bytes = 256 << 10;
static double seconds = 3;
static int latency_n, interval_ms = 10, window = 1;
static atomic_int pub_done;
static uint64_t run_id;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, natsStatus s)
{
	fprintf(stderr, "bench_nats: %s: %s\n", what, natsStatus_GetText(s));
	exit(2);
}

static void connect_js(natsConnection **nc, jsCtx **js)
{
	jsOptions jo;
	natsStatus s = natsConnection_ConnectTo(nc, url);

	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 64; /* bridge/out.c's */
	if (s == NATS_OK)
		s = natsConnection_JetStream(js, *nc, &jo);
	if (s != NATS_OK)
		die("connect", s);
}

struct pub_result {
	uint64_t msgs, bytes;
};

static void *publisher(void *arg)
{
	struct pub_result *r = arg;
	natsConnection *nc;
	jsCtx *js;
	char subj[256], id[64];
	uint8_t *buf = malloc(msg_bytes);
	uint8_t *src = NULL;
	size_t src_len = 0, at = 0;

	connect_js(&nc, &js);
	snprintf(subj, sizeof(subj), "%s.bench", subject);
	if (payload_path) {
		FILE *f = fopen(payload_path, "rb");
		if (!f) {
			fprintf(stderr, "bench_nats: cannot read %s\n", payload_path);
			exit(2);
		}
		fseek(f, 0, SEEK_END);
		src_len = (size_t)ftell(f);
		fseek(f, 0, SEEK_SET);
		src = malloc(src_len ? src_len : 1);
		if (fread(src, 1, src_len, f) != src_len)
			exit(2);
		fclose(f);
	}
	uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
	for (uint64_t i = 0;; i++) {
		if (latency_n) {
			if ((int)i == latency_n)
				break;
			memset(buf, 0, msg_bytes);
			struct timespec ts = {0, (long)interval_ms * 1000000L};
			nanosleep(&ts, NULL);
			uint64_t t = now_ns();
			memcpy(buf, &t, sizeof(t));
		} else {
			if (now_ns() >= end)
				break;
			/* The next msg_bytes of the records, wrapping. */
			for (size_t k = 0; k < msg_bytes;) {
				size_t n = src_len - at < msg_bytes - k ? src_len - at : msg_bytes - k;
				memcpy(buf + k, src + at, n);
				k += n;
				at = (at + n) % src_len;
			}
		}
		natsMsg *m = NULL;
		jsPubAck *ack = NULL;
		jsPubOptions po;
		jsPubOptions_Init(&po);
		/* Unique across runs on one stream: JetStream drops a repeated
		 * id within its duplicate window. */
		snprintf(id, sizeof(id), "bench-%" PRIu64 "-%" PRIu64, run_id, i);
		po.MsgId = id;
		po.MaxWait = 5000;
		natsStatus s = natsMsg_Create(&m, subj, NULL, (const char *)buf, (int)msg_bytes);
		if (s == NATS_OK && window > 1) {
			/* The library owns m once it is queued. */
			s = js_PublishMsgAsync(js, &m, &po);
			if (s == NATS_OK && (i + 1) % (uint64_t)window == 0)
				s = js_PublishAsyncComplete(js, NULL);
		} else if (s == NATS_OK) {
			s = js_PublishMsg(&ack, js, m, &po, NULL);
		}
		natsMsg_Destroy(m);
		jsPubAck_Destroy(ack);
		if (s != NATS_OK)
			die("publish", s);
		r->msgs++;
		r->bytes += msg_bytes;
	}
	if (window > 1) {
		natsStatus s = js_PublishAsyncComplete(js, NULL);
		if (s != NATS_OK)
			die("publish (the last acks)", s);
	}
	atomic_store(&pub_done, 1);
	free(buf);
	free(src);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			goto usage;
		if (!strcmp(a, "--url"))
			url = v;
		else if (!strcmp(a, "--stream"))
			stream_name = v;
		else if (!strcmp(a, "--subject"))
			subject = v;
		else if (!strcmp(a, "--payload"))
			payload_path = v;
		else if (!strcmp(a, "--msg-bytes"))
			msg_bytes = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--seconds"))
			seconds = strtod(v, NULL);
		else if (!strcmp(a, "--latency"))
			latency_n = atoi(v);
		else if (!strcmp(a, "--interval-ms"))
			interval_ms = atoi(v);
		else if (!strcmp(a, "--window"))
			window = atoi(v);
		else
			goto usage;
		i++;
	}
	/* As bridge/js.c does: libnats mallocs each message, and glibc would
	 * map (and fault in) each anew. The bound gets what the bridge gets. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	if (!url || !stream_name || !subject || msg_bytes < 8 || msg_bytes > (8u << 20) ||
	    (!latency_n && !payload_path) || seconds <= 0 || latency_n < 0 || interval_ms < 0 ||
	    window < 1 || window > 4096)
		goto usage;

	natsConnection *nc;
	jsCtx *js;
	connect_js(&nc, &js);
	char subjects[300];
	const char *subj_list[1] = {subjects};
	snprintf(subjects, sizeof(subjects), "%s.>", subject);
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	cfg.Name = stream_name;
	cfg.Subjects = subj_list;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Duplicates = 600ll * 1000000000ll;
	jsStreamInfo *si = NULL;
	if (js_GetStreamInfo(&si, js, stream_name, NULL, NULL) != NATS_OK) {
		natsStatus s = js_AddStream(&si, js, &cfg, NULL, NULL);
		if (s != NATS_OK)
			die("add stream", s);
	}
	jsStreamInfo_Destroy(si);

	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream_name;
	so.Config.AckPolicy = js_AckExplicit;
	so.Config.MaxAckPending = 64;
	so.Config.DeliverPolicy = js_DeliverNew;
	natsSubscription *sub = NULL;
	natsStatus s = js_PullSubscribe(&sub, js, subjects, "bench-nats", NULL, &so, NULL);
	if (s != NATS_OK)
		die("pull subscribe", s);

	run_id = now_ns();
	struct pub_result pr = {0};
	pthread_t th;
	pthread_create(&th, NULL, publisher, &pr);
	uint64_t got = 0, bytes = 0, first = 0, last = 0;
	uint64_t *lat = latency_n ? calloc((size_t)latency_n, sizeof(uint64_t)) : NULL;
	for (;;) {
		natsMsgList list = {0};
		s = natsSubscription_Fetch(&list, sub, 16, 500, NULL);
		uint64_t t = now_ns();
		if (s == NATS_OK) {
			for (int i = 0; i < list.Count; i++) {
				natsMsg *m = list.Msgs[i];
				if (latency_n && got < (uint64_t)latency_n &&
				    natsMsg_GetDataLength(m) >= 8) {
					uint64_t sent;
					memcpy(&sent, natsMsg_GetData(m), sizeof(sent));
					lat[got] = t - sent;
				}
				if (!first)
					first = t;
				last = t;
				got++;
				bytes += (uint64_t)natsMsg_GetDataLength(m);
				natsMsg_Ack(m, NULL);
			}
			natsMsgList_Destroy(&list);
		}
		if (atomic_load(&pub_done) && got >= pr.msgs)
			break;
		if (atomic_load(&pub_done) && s == NATS_TIMEOUT && now_ns() - last > 5000000000ull) {
			fprintf(stderr, "bench_nats: %" PRIu64 " of %" PRIu64 " messages came back\n",
				got, pr.msgs);
			return 1;
		}
		if (s != NATS_OK && s != NATS_TIMEOUT)
			die("fetch", s);
	}
	pthread_join(th, NULL);
	if (latency_n) {
		qsort(lat, (size_t)latency_n, sizeof(uint64_t), cmp_u64);
		printf("{\"n\": %d, \"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n",
		       latency_n, lat[latency_n / 2] / 1e3, lat[latency_n * 99 / 100] / 1e3,
		       lat[latency_n - 1] / 1e3);
	} else {
		/* From the first message's arrival to the last's: each message
		 * is one interval after the first. */
		double secs = (double)(last - first) / 1e9;
		double per = got > 1 ? (double)(got - 1) : 1;
		printf("{\"messages\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"seconds\": %.3f, "
		       "\"gbps\": %.3f, \"msgs_per_s\": %.1f}\n",
		       got, bytes, secs, secs > 0 ? per * (double)msg_bytes / secs / 1e9 : 0,
		       secs > 0 ? per / secs : 0);
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	js_DeleteConsumer(js, stream_name, "bench-nats", NULL, NULL);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	free(lat);
	return 0;
usage:
	fprintf(stderr, "usage: bench_nats --url URL --stream NAME --subject SUBJ [--msg-bytes B] "
			"(--seconds T --payload FILE [--window N] | --latency N [--interval-ms I])\n");
	return 2;
}
