/* SPDX-License-Identifier: MIT */
/*
 * Game plugins through xr_game_load(): the example coin game loads and plays
 * by its rules through the vtable; the loader's errors are the documented
 * ones (-ENOENT for no file, -ENOEXEC for a file that is not a plugin or has
 * no entry point, -EPROTO for another ABI, -EINVAL for NULL), each with a
 * note saying why.
 *
 *   test_game_plugin COIN.so NOSYM.so BADABI.so
 *
 * This file is also compiled into the two broken plugins (XR_TEST_PLUGIN_*).
 */
#include "xring/game.h"

#if defined(XR_TEST_PLUGIN_NOSYM)
/* A well-formed shared object that exports something, but not the entry. */
XR_GAME_PLUGIN_EXPORT int xr_test_not_a_game(void);
int xr_test_not_a_game(void)
{
	return 42;
}

#elif defined(XR_TEST_PLUGIN_BADABI)
/* A plugin built against a future version of the interface. */
static int never_create(const xr_game_config *cfg, void **out)
{
	(void)cfg;
	(void)out;
	return -1;
}

static const xr_game_vtable future = {.abi = XR_GAME_ABI_VERSION + 1, .name = "future",
				      .create = never_create};

const xr_game_vtable *xr_game_plugin(void)
{
	return &future;
}

#else
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ring_helpers.h"

static void test_coin(const char *path)
{
	const xr_game_vtable *vt, *again;
	xr_game_config cfg = {.players = 3, .seed = 5, .params = "turns=3"};
	xr_game_sizes sz;
	void *g;
	int32_t a[3] = {1, 0, 1};
	float r[3];
	uint32_t f[3];
	uint8_t mask[2], u8;
	float f32;

	CHECK_RC(xr_game_load(path, &vt), 0);
	CHECK_EQ(strlen(xr_game_last_note()), 0);
	CHECK(strcmp(vt->name, "coin") == 0);
	CHECK_EQ(vt->abi, XR_GAME_ABI_VERSION);
	CHECK_RC(xr_game_load(path, &again), 0);
	CHECK(again == vt);
	/* A bare name is the file in the working directory. */
	{
		char dir[4096], cwd[4096];
		const char *slash = strrchr(path, '/');

		CHECK(slash && (size_t)(slash - path) < sizeof(dir) && getcwd(cwd, sizeof(cwd)));
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		CHECK(chdir(dir) == 0);
		again = NULL;
		CHECK_RC(xr_game_load(slash + 1, &again), 0);
		CHECK(again == vt);
		CHECK(chdir(cwd) == 0);
	}

	CHECK_RC(vt->create(&cfg, &g), 0);
	vt->sizes(g, &sz);
	CHECK_EQ(sz.obs_channels, 1);
	CHECK_EQ(sz.obs_h, 1);
	CHECK_EQ(sz.obs_w, 1);
	CHECK_EQ(sz.n_actions, 2);
	CHECK_EQ(sz.players, 3);
	CHECK_RC(vt->legal_actions(g, 0, mask), 0);
	CHECK(mask[0] == 1 && mask[1] == 1);
	/* Three turns: players 0 and 2 take a coin each turn, 1 passes;
	 * the third ends the episode for everyone. */
	for (int t = 0; t < 3; t++) {
		CHECK_RC(vt->step(g, a, r, f), t == 2 ? 1 : 0);
		CHECK(r[0] == 1.0f && r[1] == 0.0f && r[2] == 1.0f);
		for (int p = 0; p < 3; p++)
			CHECK_EQ(f[p], t == 2 ? XR_GAME_DONE : 0);
	}
	CHECK_RC(vt->step(g, a, r, f), -EINVAL);
	CHECK_RC(vt->observe(g, 0, XR_DTYPE_U8, &u8), 0);
	CHECK_EQ(u8, 3);
	CHECK_RC(vt->observe(g, 2, XR_DTYPE_F32, &f32), 0);
	CHECK(f32 == 3.0f);
	CHECK_RC(vt->observe(g, 1, XR_DTYPE_U8, &u8), 0);
	CHECK_EQ(u8, 0);
	CHECK_RC(vt->observe(g, 3, XR_DTYPE_U8, &u8), -EINVAL);
	CHECK_RC(vt->observe(g, 0, XR_DTYPE_I16, &u8), -EINVAL);
	/* An illegal action is a no-op. */
	CHECK_RC(vt->reset(g, 6), 0);
	a[0] = 7;
	a[1] = -1;
	CHECK_RC(vt->step(g, a, r, f), 0);
	CHECK(r[0] == 0.0f && r[1] == 0.0f && r[2] == 1.0f);
	vt->destroy(g);

	/* The turn limit truncates before the natural end. */
	cfg.turn_limit = 2;
	CHECK_RC(vt->create(&cfg, &g), 0);
	CHECK_RC(vt->step(g, a, r, f), 0);
	CHECK_RC(vt->step(g, a, r, f), 1);
	CHECK_EQ(f[0], XR_GAME_TRUNCATED);
	vt->destroy(g);
	cfg.params = "speed=9";
	CHECK_RC(vt->create(&cfg, &g), -EINVAL);
}

static void expect_fail(const char *path, int want, const char *what)
{
	const xr_game_vtable *vt = (const xr_game_vtable *)&vt;
	int rc = xr_game_load(path, &vt);

	if (rc != want)
		FAILF("%s (%s): got %d (%s), want %d (%s); note: %s", what, path ? path : "NULL",
		      rc, xr_err_name(rc), want, xr_err_name(want), xr_game_last_note());
	CHECK(vt == (const xr_game_vtable *)&vt);  /* untouched */
	CHECK(strlen(xr_game_last_note()) > 0);
	printf("%-26s %-8s %s\n", what, xr_err_name(rc), xr_game_last_note());
}

int main(int argc, char **argv)
{
	char text[] = "/tmp/xr-not-a-plugin-XXXXXX";
	const xr_game_vtable *vt;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s COIN.so NOSYM.so BADABI.so\n", argv[0]);
		return 2;
	}
	test_coin(argv[1]);

	expect_fail("/nonexistent/dir/game.so", -ENOENT, "missing file");
	expect_fail(argv[2], -ENOEXEC, "no xr_game_plugin()");
	expect_fail(argv[3], -EPROTO, "another ABI");
	fd = mkstemp(text);
	CHECK(fd >= 0);
	CHECK(write(fd, "not a plugin\n", 13) == 13);
	close(fd);
	expect_fail(text, -ENOEXEC, "a text file");
	unlink(text);
	expect_fail("/tmp", -ENOEXEC, "a directory");
	expect_fail(NULL, -EINVAL, "NULL path");
	CHECK_RC(xr_game_load(argv[1], NULL), -EINVAL);

	/* The built-in game speaks the same ABI. */
	vt = xr_game_builtin_grid();
	CHECK_EQ(vt->abi, XR_GAME_ABI_VERSION);
	printf("game plugins: ok\n");
	return 0;
}
#endif
