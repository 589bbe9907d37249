/* SPDX-License-Identifier: MIT */
/*
 * xr_record_tool: write and read single Experience records as files, so
 * that other FlatBuffers implementations (flatc, the Python runtime) can be
 * checked against our builder and verifier. Used by
 * tests/python/test_flatbuffers_interop.py; handy for poking at records.
 *
 *   xr_record_tool encode OUT.bin [options]
 *       Builds one record with xr_exp_build() and writes its bytes.
 *       --seq N --t-ns N --game N --player N --turn N --action N
 *       --reward F --done[=0|1] --truncated[=0|1]
 *       --applied N (default -1) --applied-by N (0..255, default 0 = NONE)
 *       --dtype NAME (u8 ... f64, bool; default u8)
 *       --shape DIMS (e.g. 9x20x20 or 9,20,20; "" or "scalar" = no dims;
 *                     default 4)
 *       --mask-len N --extras-len N --seed N
 *       Variable bytes are filled deterministically:
 *         obs[i]    = (seed + i * 7) & 0xff
 *         mask[i]   = (seed + 1 + i * 7) & 0xff
 *         extras[i] = (seed + 2 + i * 7) & 0xff
 *
 *   xr_record_tool decode IN.bin
 *       Verifies the file's bytes as one record and prints its view as one
 *       JSON object: the scalars (reward also as its IEEE bits), obs as
 *       {dtype, shape, nbytes, offset, hex} or null, legal_mask and extras
 *       as {len, offset, hex} or null. Offsets are from the record start.
 *       A malformed record: one line on stderr, exit 1.
 *
 *   xr_record_tool layout [--dtype --shape --mask-len --extras-len]
 *       Prints the template of that shape as JSON (size, head_len, off_*).
 *
 * Exit status: 0 ok, 1 bad record or I/O error, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xring/error.h"
#include "xring/record.h"

static const char *prog = "xr_record_tool";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s encode OUT.bin [--seq N] [--t-ns N] [--game N] "
		"[--player N] [--turn N] [--action N] [--reward F] [--done] "
		"[--truncated] [--applied N] [--applied-by N] [--dtype NAME] "
		"[--shape AxBxC] [--mask-len N] "
		"[--extras-len N] [--seed N]\n"
		"       %s decode IN.bin\n"
		"       %s layout [--dtype NAME] [--shape AxBxC] "
		"[--mask-len N] [--extras-len N]\n",
		prog, prog, prog);
	exit(2);
}

static void die_usage(const char *what, const char *arg)
{
	fprintf(stderr, "%s: bad %s: '%s'\n", prog, what, arg);
	exit(2);
}

static uint64_t parse_u64(const char *s, uint64_t max, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v > max)
		die_usage(what, s);
	return v;
}

static int64_t parse_i64(const char *s, int64_t min, int64_t max,
			 const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		die_usage(what, s);
	return v;
}

static void parse_shape(const char *s, xr_exp_shape *shape)
{
	const char *p = s;

	shape->obs_ndim = 0;
	if (!*s || !strcmp(s, "scalar"))
		return;
	for (;;) {
		char *end;
		long v;

		errno = 0;
		v = strtol(p, &end, 10);
		if (errno || end == p || v < 1 || v > INT32_MAX ||
		    shape->obs_ndim == XR_EXP_MAX_DIMS)
			die_usage("shape", s);
		shape->obs_dims[shape->obs_ndim++] = (int32_t)v;
		if (!*end)
			return;
		if (*end != 'x' && *end != ',')
			die_usage("shape", s);
		p = end + 1;
	}
}

enum {
	O_SEQ = 256, O_T_NS, O_GAME, O_PLAYER, O_TURN, O_ACTION, O_REWARD,
	O_DONE, O_TRUNCATED, O_DTYPE, O_SHAPE, O_MASK_LEN, O_EXTRAS_LEN,
	O_SEED, O_APPLIED, O_APPLIED_BY,
};

static const struct option opts[] = {
	{"seq", required_argument, NULL, O_SEQ},
	{"t-ns", required_argument, NULL, O_T_NS},
	{"game", required_argument, NULL, O_GAME},
	{"player", required_argument, NULL, O_PLAYER},
	{"turn", required_argument, NULL, O_TURN},
	{"action", required_argument, NULL, O_ACTION},
	{"reward", required_argument, NULL, O_REWARD},
	{"done", optional_argument, NULL, O_DONE},
	{"truncated", optional_argument, NULL, O_TRUNCATED},
	{"dtype", required_argument, NULL, O_DTYPE},
	{"shape", required_argument, NULL, O_SHAPE},
	{"mask-len", required_argument, NULL, O_MASK_LEN},
	{"extras-len", required_argument, NULL, O_EXTRAS_LEN},
	{"seed", required_argument, NULL, O_SEED},
	{"applied", required_argument, NULL, O_APPLIED},
	{"applied-by", required_argument, NULL, O_APPLIED_BY},
	{NULL, 0, NULL, 0},
};

struct args {
	xr_exp_fields f;
	xr_exp_shape s;
	uint32_t seed;
	const char *file;
};

static void parse_args(int argc, char **argv, struct args *a, int need_file)
{
	int c;

	memset(a, 0, sizeof(*a));
	a->f.applied = -1; /* no step, as the schema's default says */
	a->s.obs_dtype = XR_DTYPE_U8;
	a->s.obs_ndim = 1;
	a->s.obs_dims[0] = 4;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_SEQ:
			a->f.seq = parse_u64(optarg, UINT64_MAX, "seq");
			break;
		case O_T_NS:
			a->f.t_ns = parse_u64(optarg, UINT64_MAX, "t-ns");
			break;
		case O_GAME:
			a->f.game_id = (uint32_t)parse_u64(optarg, UINT32_MAX,
							   "game");
			break;
		case O_PLAYER:
			a->f.player_id = (uint32_t)parse_u64(optarg, UINT32_MAX,
							     "player");
			break;
		case O_TURN:
			a->f.turn = (uint32_t)parse_u64(optarg, UINT32_MAX,
							"turn");
			break;
		case O_ACTION:
			a->f.action = (int32_t)parse_i64(optarg, INT32_MIN,
							 INT32_MAX, "action");
			break;
		case O_REWARD: {
			char *end;

			a->f.reward = strtof(optarg, &end);
			if (end == optarg || *end)
				die_usage("reward", optarg);
			break;
		}
		case O_DONE:
			a->f.done = !optarg || parse_u64(optarg, 1, "done");
			break;
		case O_TRUNCATED:
			a->f.truncated = !optarg ||
					 parse_u64(optarg, 1, "truncated");
			break;
		case O_APPLIED:
			a->f.applied = (int32_t)parse_i64(optarg, INT32_MIN,
							  INT32_MAX, "applied");
			break;
		case O_APPLIED_BY:
			a->f.applied_by = (uint8_t)parse_u64(optarg, UINT8_MAX,
							     "applied-by");
			break;
		case O_DTYPE: {
			int d = xr_dtype_parse(optarg);

			if (d < 0)
				die_usage("dtype", optarg);
			a->s.obs_dtype = (xr_dtype)d;
			break;
		}
		case O_SHAPE:
			parse_shape(optarg, &a->s);
			break;
		case O_MASK_LEN:
			a->s.mask_len = (uint32_t)parse_u64(optarg, UINT32_MAX,
							    "mask-len");
			break;
		case O_EXTRAS_LEN:
			a->s.extras_len = (uint32_t)parse_u64(optarg,
							      UINT32_MAX,
							      "extras-len");
			break;
		case O_SEED:
			a->seed = (uint32_t)parse_u64(optarg, UINT32_MAX,
						      "seed");
			break;
		default:
			usage();
		}
	}
	if (need_file) {
		if (optind != argc - 1)
			usage();
		a->file = argv[optind];
	} else if (optind != argc) {
		usage();
	}
}

static void fill(void *p, uint64_t n, uint32_t seed)
{
	uint8_t *b = p;

	for (uint64_t i = 0; i < n; i++)
		b[i] = (uint8_t)(seed + i * 7);
}

static int cmd_encode(int argc, char **argv)
{
	struct args a;
	xr_exp_template t;
	xr_exp_slots slots;
	uint8_t *base;
	FILE *out;
	int rc;

	parse_args(argc, argv, &a, 1);
	rc = xr_exp_template_init(&t, &a.s);
	if (rc) {
		fprintf(stderr, "%s: encode: shape rejected: %s\n", prog,
			xr_strerror(rc));
		return 2;
	}
	/* Build where a ring would: 64-aligned + skew. */
	base = aligned_alloc(64, ((size_t)t.size + XR_EXP_DEST_SKEW + 63) &
				 ~(size_t)63);
	if (!base) {
		fprintf(stderr, "%s: encode: out of memory\n", prog);
		return 1;
	}
	xr_exp_build(&t, base + XR_EXP_DEST_SKEW, &a.f, &slots);
	fill(slots.obs, t.obs_bytes, a.seed);
	if (slots.mask)
		fill(slots.mask, a.s.mask_len, a.seed + 1);
	if (slots.extras)
		fill(slots.extras, a.s.extras_len, a.seed + 2);

	out = fopen(a.file, "wb");
	if (!out || fwrite(base + XR_EXP_DEST_SKEW, 1, t.size, out) != t.size ||
	    fclose(out)) {
		fprintf(stderr, "%s: encode: %s: %s\n", prog, a.file,
			strerror(errno));
		free(base);
		return 1;
	}
	free(base);
	return 0;
}

static void print_hex(const void *p, uint64_t n)
{
	const uint8_t *b = p;

	putchar('"');
	for (uint64_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	putchar('"');
}

static void print_bytes(const char *name, const uint8_t *p, uint32_t n,
			const uint8_t *base)
{
	printf(", \"%s\": ", name);
	if (!p) {
		printf("null");
		return;
	}
	printf("{\"len\": %" PRIu32 ", \"offset\": %td, \"hex\": ", n,
	       p - base);
	print_hex(p, n);
	putchar('}');
}

/* JSON has no NaN/Infinity; Python's json module reads these spellings. */
static void print_float(float x)
{
	if (isnan(x))
		printf("NaN");
	else if (isinf(x))
		printf(x > 0 ? "Infinity" : "-Infinity");
	else
		printf("%.9g", (double)x);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *in = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;

	if (!in)
		return NULL;
	for (;;) {
		size_t got;

		if (n == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(in);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, in);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(in)) {
		free(buf);
		fclose(in);
		errno = EIO;
		return NULL;
	}
	fclose(in);
	*len = n;
	return buf;
}

static int cmd_decode(int argc, char **argv)
{
	struct args a;
	xr_exp_view v;
	uint8_t *buf, *exact;
	uint32_t bits;
	size_t len;
	int rc;

	parse_args(argc, argv, &a, 1);
	buf = read_file(a.file, &len);
	if (!buf) {
		fprintf(stderr, "%s: decode: %s: %s\n", prog, a.file,
			strerror(errno));
		return 1;
	}
	/* Verify a block of exactly the file's size, so a sanitizer build
	 * catches any read past the record. */
	exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		fprintf(stderr, "%s: decode: out of memory\n", prog);
		return 1;
	}
	memcpy(exact, buf, len);
	free(buf);

	rc = xr_exp_view_init(&v, exact, len);
	if (rc) {
		fprintf(stderr, "%s: decode: %s: %s (%s)\n", prog, a.file,
			xr_strerror(rc), xr_err_name(rc));
		free(exact);
		return 1;
	}
	memcpy(&bits, &v.f.reward, 4);
	printf("{\"seq\": %" PRIu64 ", \"t_ns\": %" PRIu64
	       ", \"game_id\": %" PRIu32 ", \"player_id\": %" PRIu32
	       ", \"turn\": %" PRIu32 ", \"action\": %" PRId32 ", \"reward\": ",
	       v.f.seq, v.f.t_ns, v.f.game_id, v.f.player_id, v.f.turn,
	       v.f.action);
	print_float(v.f.reward);
	printf(", \"reward_bits\": %" PRIu32 ", \"done\": %s, "
	       "\"truncated\": %s, \"applied\": %" PRId32
	       ", \"applied_by\": %u, \"size\": %zu, \"obs\": ",
	       bits, v.f.done ? "true" : "false",
	       v.f.truncated ? "true" : "false", v.f.applied,
	       (unsigned int)v.f.applied_by, len);
	if (v.obs) {
		printf("{\"dtype\": \"%s\", \"shape\": [",
		       xr_dtype_name(v.obs_dtype));
		for (uint32_t i = 0; i < v.obs_ndim; i++)
			printf("%s%" PRId32, i ? ", " : "", v.obs_dims[i]);
		printf("], \"nbytes\": %" PRIu64 ", \"offset\": %td, \"hex\": ",
		       v.obs_bytes, (const uint8_t *)v.obs - exact);
		print_hex(v.obs, v.obs_bytes);
		putchar('}');
	} else {
		printf("null");
	}
	print_bytes("legal_mask", v.mask, v.mask_len, exact);
	print_bytes("extras", v.extras, v.extras_len, exact);
	printf("}\n");
	free(exact);
	if (fflush(stdout)) {
		fprintf(stderr, "%s: decode: stdout: %s\n", prog,
			strerror(errno));
		return 1;
	}
	return 0;
}

static int cmd_layout(int argc, char **argv)
{
	struct args a;
	xr_exp_template t;
	int rc;

	parse_args(argc, argv, &a, 0);
	rc = xr_exp_template_init(&t, &a.s);
	if (rc) {
		fprintf(stderr, "%s: layout: shape rejected: %s\n", prog,
			xr_strerror(rc));
		return 2;
	}
	printf("{\"size\": %" PRIu32 ", \"head_len\": %" PRIu32
	       ", \"obs_bytes\": %" PRIu64 ", \"off_seq\": %" PRIu32
	       ", \"off_t_ns\": %" PRIu32 ", \"off_game_id\": %" PRIu32
	       ", \"off_player_id\": %" PRIu32 ", \"off_turn\": %" PRIu32
	       ", \"off_action\": %" PRIu32 ", \"off_reward\": %" PRIu32
	       ", \"off_done\": %" PRIu32 ", \"off_truncated\": %" PRIu32
	       ", \"off_applied\": %" PRIu32 ", \"off_applied_by\": %" PRIu32
	       ", \"off_obs\": %" PRIu32 ", \"off_mask\": %" PRIu32
	       ", \"off_extras\": %" PRIu32 "}\n",
	       t.size, t.head_len, t.obs_bytes, t.off_seq, t.off_t_ns,
	       t.off_game_id, t.off_player_id, t.off_turn, t.off_action,
	       t.off_reward, t.off_done, t.off_truncated, t.off_applied,
	       t.off_applied_by, t.off_obs, t.off_mask, t.off_extras);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	/* Subcommand options start after the subcommand name. */
	if (!strcmp(argv[1], "encode"))
		return cmd_encode(argc - 1, argv + 1);
	if (!strcmp(argv[1], "decode"))
		return cmd_decode(argc - 1, argv + 1);
	if (!strcmp(argv[1], "layout"))
		return cmd_layout(argc - 1, argv + 1);
	usage();
	return 2;
}
