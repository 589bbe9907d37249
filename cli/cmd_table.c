/* SPDX-License-Identifier: MIT */
/*
 * `xring table`: an operator's look at one replay table of an engine, and
 * its checkpoints. The tool opens the table as a trainer (TABLE_OPEN on the
 * control socket, like any trainer: the same allow-list) and reads the
 * figures the engine keeps in the table's store; checkpoint and restore are
 * the engine's (its uid only), the tool only asks. Tables live in the
 * engine, not in its arena, which is why `xring stat` does not show them.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "xring/error.h"
#include "xring/record.h"
#include "xring/table.h"

static const char table_help[] =
	"usage: xring table NAME TABLE [--checkpoint PATH | --restore PATH | --drop] [--json]\n"
	"\n"
	"Shows replay table TABLE of engine NAME: its items (records or\n"
	"transitions, their size and observation shape), how full it is, its\n"
	"trainers and leases, inserts, samples and removes over its life, and the\n"
	"engine's feed of it (docs/replay.md). Opens the table as a trainer: run as\n"
	"a user the engine allows.\n"
	"\n"
	"  --checkpoint PATH   have the engine write the table to a new file PATH\n"
	"                      (never over one); the engine's own user only\n"
	"  --restore PATH      have the engine replace the table by checkpoint PATH\n"
	"                      (refused while any trainer holds a lease)\n"
	"  --drop              drop the table: its name is free at once, its trainers'\n"
	"                      requests fail from now on, its memory goes with the\n"
	"                      last of them; its creator's user or the engine's only\n"
	"  --json              one JSON object instead of text\n";

static const char *feed_name(uint32_t f)
{
	switch (f) {
	case 0: return "none";
	case 1: return "feeding";
	case 2: return "failed";
	}
	return "?";
}

static void shape_text(const xr_item_layout *l, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	if (!l->obs_bytes)
		return;
	n += (size_t)snprintf(buf + n, len - n, "%s[", xr_dtype_name(l->shape.obs_dtype));
	for (uint32_t d = 0; d < l->shape.obs_ndim && n < len; d++)
		n += (size_t)snprintf(buf + n, len - n, "%s%d", d ? "," : "", l->shape.obs_dims[d]);
	if (n < len)
		snprintf(buf + n, len - n, "]");
}

/* A path as a JSON string's contents (the operator's, so anything). */
static void json_path(const char *p)
{
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c); /* bytes, as Latin-1: valid JSON whatever they are */
		else
			putchar(c);
	}
}

/* A path for a terminal: control bytes shown as '?'. */
static void text_path(const char *p)
{
	for (; *p; p++)
		putchar((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
}

/* The engine resolves a relative path in its own directory: make it ours. */
static int absolute(const char *path, char *out, size_t len)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return snprintf(out, len, "%s", path) < (int)len ? 0 : -ENAMETOOLONG;
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	return snprintf(out, len, "%s/%s", cwd, path) < (int)len ? 0 : -ENAMETOOLONG;
}

static int fail(const char *what, int rc)
{
	const char *why = xr_last_reason();

	xr_cli_err("table", "%s: %s", what, why[0] ? why : xr_strerror(rc));
	return XR_EXIT_FAIL;
}

int xr_cmd_table(int argc, char **argv)
{
	static const struct xr_opt opts[] = {
		{"--checkpoint", true}, {"--restore", true}, {"--json", false},
		{"--help", false}, {"--drop", false}, {NULL, false},
	};
	const char *v, *pos[2] = {NULL, NULL}, *ckpt = NULL, *restore = NULL;
	bool json = false, drop = false;
	int i = 1, k, n_pos = 0, rc;

	while (i < argc) {
		k = xr_next_opt("table", argc, argv, &i, opts, &v);
		switch (k) {
		case -2: return XR_EXIT_USAGE;
		case -1:
			if (n_pos == 2) {
				xr_cli_err("table", "unexpected '%s' (usage: xring table NAME TABLE)",
					   v);
				return XR_EXIT_USAGE;
			}
			pos[n_pos++] = v;
			break;
		case 0: ckpt = v; break;
		case 1: restore = v; break;
		case 2: json = true; break;
		case 3: fputs(table_help, stdout); return 0;
		case 4: drop = true; break;
		}
	}
	if (n_pos < 2) {
		xr_cli_err("table", "name an engine and one of its tables (usage: xring table "
				    "NAME TABLE; see --help)");
		return XR_EXIT_USAGE;
	}
	if ((ckpt != NULL) + (restore != NULL) + drop > 1) {
		xr_cli_err("table", "one of --checkpoint, --restore and --drop at a time");
		return XR_EXIT_USAGE;
	}
	if ((ckpt && !*ckpt) || (restore && !*restore)) {
		xr_cli_err("table", "--%s needs a file's path", ckpt ? "checkpoint" : "restore");
		return XR_EXIT_USAGE;
	}
	if (drop) {
		rc = xr_table_drop(pos[0], pos[1], NULL);
		if (rc < 0) {
			char what[128];
			snprintf(what, sizeof(what), "cannot drop table %s of engine %s", pos[1],
				 pos[0]);
			return fail(what, rc);
		}
		if (json)
			printf("{\"engine\":\"%s\",\"table\":\"%s\",\"dropped\":true}\n", pos[0],
			       pos[1]);
		else
			printf("xring table: dropped table %s of engine %s\n", pos[1], pos[0]);
		return 0;
	}
	xr_table *t;
	rc = xr_table_open(pos[0], pos[1], NULL, &t);
	if (rc < 0) {
		char what[128];
		snprintf(what, sizeof(what), "cannot open table %s of engine %s", pos[1], pos[0]);
		return fail(what, rc);
	}
	char path[PATH_MAX];
	const char *act = ckpt ? ckpt : restore;
	int done = 0;
	if (act) {
		rc = absolute(act, path, sizeof(path));
		if (rc < 0) {
			xr_table_close(t);
			xr_cli_err("table", "%s: %s", act, xr_strerror(rc));
			return XR_EXIT_FAIL;
		}
		done = ckpt ? xr_table_checkpoint(t, path) : xr_table_restore(t, path);
		if (done < 0) {
			char what[PATH_MAX + 64];
			snprintf(what, sizeof(what), "%s %s", ckpt ? "checkpoint to" : "restore from",
				 path);
			rc = fail(what, done);
			xr_table_close(t);
			return rc;
		}
	}
	xr_table_stats st;
	xr_item_layout l;
	rc = xr_table_get_stats(t, &st);
	xr_table_item_layout(t, &l);
	xr_table_close(t);
	if (rc < 0)
		return fail("stats", rc);
	char shape[128];
	shape_text(&l, shape, sizeof(shape));
	/* The engine counted this tool when it opened (before the open
	 * returned): the others are one fewer. */
	uint32_t trainers = st.trainers ? st.trainers - 1 : 0;
	const char *item = l.item == XR_ITEM_TRANSITION ? "transition" : "record";
	if (json) {
		printf("{\"engine\":\"%s\",\"table\":\"%s\",\"item\":\"%s\",\"obs\":\"%s\","
		       "\"capacity\":%u,\"item_size\":%u,\"size\":%" PRIu64 ",\"trainers\":%u,"
		       "\"leases\":%" PRIu64 ",\"inserts\":%" PRIu64 ",\"samples\":%" PRIu64
		       ",\"removes\":%" PRIu64 ",\"feed\":\"%s\",\"feed_dropped\":%" PRIu64,
		       pos[0], pos[1], item, shape, st.capacity, st.item_size, st.size, trainers,
		       st.leases, st.inserts, st.samples, st.removes, feed_name(st.feed),
		       st.feed_dropped);
		if (act) {
			printf(",\"%s\":{\"path\":\"", ckpt ? "checkpoint" : "restore");
			json_path(path);
			printf("\",\"items\":%d}", done);
		}
		printf("}\n");
		return 0;
	}
	if (act) {
		printf("xring table: %s %d items %s ", ckpt ? "wrote" : "restored", done,
		       ckpt ? "to" : "from");
		text_path(path);
		putchar('\n');
	}
	printf("table %s of engine %s\n", pos[1], pos[0]);
	printf("  items      %s%s%s, %u bytes each\n", item, shape[0] ? " of " : "", shape,
	       st.item_size);
	printf("  size       %" PRIu64 " of %u (%.1f%%)\n", st.size, st.capacity,
	       st.capacity ? 100.0 * (double)st.size / st.capacity : 0.0);
	printf("  trainers   %u, holding %" PRIu64 " leases\n", trainers, st.leases);
	printf("  inserts    %" PRIu64 "\n  samples    %" PRIu64 "\n  removes    %" PRIu64 "\n",
	       st.inserts, st.samples, st.removes);
	printf("  feed       %s", feed_name(st.feed));
	if (st.feed)
		printf(", %" PRIu64 " records not inserted", st.feed_dropped);
	printf("\n");
	return 0;
}
