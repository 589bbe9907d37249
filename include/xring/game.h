/* SPDX-License-Identifier: MIT */
#ifndef XRING_GAME_H
#define XRING_GAME_H

/*
 * Games: the interface behind which any game lives, built in or loaded from a
 * plugin (a shared object), and the built-in random-legal policy.
 *
 * A game is a table of functions (xr_game_vtable) over an opaque instance.
 * The engine creates one instance per hosted game and drives it in lock step:
 *
 *     vt->create(&cfg, &g);          -- ready to play, as if reset(cfg.seed)
 *     vt->sizes(g, &sz);             -- fixed for the instance's lifetime
 *     for (;;) {
 *         for each player p:  vt->observe(g, p, dtype, obs[p]);
 *                             vt->legal_actions(g, p, mask[p]);
 *         choose actions[p]   (an agent, or xr_policy_random_legal())
 *         rc = vt->step(g, actions, rewards, flags);
 *         if (rc == 1) vt->reset(g, next_seed);
 *     }
 *     vt->destroy(g);
 *
 * Every player acts at every step (simultaneous moves); a game with turns
 * offers only its no-op to the players who are not to move.
 *
 * Observations are one tensor per player, dtype u8 or f32, laid out C x H x W
 * (channel-major, row-major within a channel), obs_channels * obs_h * obs_w
 * elements written straight into the caller's buffer. The legal-action mask
 * is n_actions bytes, 1 = legal, 0 = illegal.
 *
 * Thread safety (every game, built in or plugin, must keep this contract):
 * one instance is used by one thread at a time (its shard); the engine never
 * calls two functions of one instance concurrently, but it may use an
 * instance from different threads over its life (with a happens-before
 * between them, such as a mutex or thread join). Different instances are
 * used concurrently from different threads, so a game keeps no mutable state
 * outside its instance. The vtable itself is immutable.
 *
 * Cost: the engine runs 10,000+ instances and ~1M steps/s on two cores, so
 * step, observe and legal_actions must not allocate and should cost at most
 * O(board) each. create and reset may allocate and take longer.
 *
 * Determinism: a game must be a pure function of its config, its reset seeds
 * and the actions it is given: same inputs, same observations, rewards and
 * flags, bit for bit, on any thread. No rand(), no clocks, no global state.
 *
 * Errors follow xring/error.h: 0 (or a documented count) on success, a
 * negative errno value on failure.
 */

#include <stdint.h>

#include "xring/export.h"
#include "xring/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface: xr_game_vtable.abi. Bumped whenever the
 * vtable, the config or the sizes change in any way. */
#define XR_GAME_ABI_VERSION 1u

/* Players a game may be asked to host. Games may accept fewer combinations
 * (the built-in grid game takes 2..8) and refuse others with -EINVAL. */
#define XR_GAME_MIN_PLAYERS 1u
#define XR_GAME_MAX_PLAYERS 8u

/* Per-player flags written by step(). */
#define XR_GAME_DONE 0x1u      /* this player's episode ended at this step in a
			        * terminal state (it was eliminated, won, or
			        * the game reached its natural end) */
#define XR_GAME_TRUNCATED 0x2u /* this player's episode was cut off at this
			        * step by the turn limit (not terminal) */
#define XR_GAME_OUT 0x4u       /* this player's episode had already ended at an
			        * earlier step: its action was ignored, its
			        * reward is 0, and this step means nothing
			        * for it (the engine emits no experience) */

/* What the engine asks of a game instance. Zero fields mean "the game's
 * default". */
typedef struct xr_game_config {
	uint32_t board_h;     /* rows; 0 = default */
	uint32_t board_w;     /* columns; 0 = default */
	uint32_t players;     /* XR_GAME_MIN_PLAYERS..XR_GAME_MAX_PLAYERS */
	uint32_t turn_limit;  /* steps before truncation; 0 = default */
	uint64_t seed;        /* seed of the first episode (create) */
	/* Game-specific options, "key=value,key=value" by convention, or NULL.
	 * Read during create() only; the game keeps no pointer to it. A game
	 * refuses unknown keys with -EINVAL. */
	const char *params;
} xr_game_config;

/* The shapes of one instance, fixed from create() to destroy(). */
typedef struct xr_game_sizes {
	uint32_t obs_channels; /* C */
	uint32_t obs_h;        /* H */
	uint32_t obs_w;        /* W */
	uint32_t n_actions;    /* actions are 0..n_actions-1; mask length */
	uint32_t players;      /* as created */
} xr_game_sizes;

typedef struct xr_game_vtable {
	/* XR_GAME_ABI_VERSION of the header the game was built with. */
	uint32_t abi;
	/* Short identifier, [a-z0-9_]+ ("grid", "coin"); static storage. */
	const char *name;

	/*
	 * Creates an instance for cfg and puts it in the state reset(cfg->seed)
	 * gives, so it can be observed and stepped at once. *out receives the
	 * instance, owned by the caller and released with destroy(). cfg and
	 * cfg->params are only read during the call.
	 * Errors: -EINVAL (a config the game does not support: players, board,
	 * params), -ENOMEM. On error *out is left unchanged.
	 */
	int (*create)(const xr_game_config *cfg, void **out);

	/* Frees an instance and everything it owns. NULL is a no-op. */
	void (*destroy)(void *game);

	/* Writes the instance's shapes to *out. Never fails. */
	void (*sizes)(const void *game, xr_game_sizes *out);

	/*
	 * Starts a new episode, determined entirely by seed (and the config of
	 * create). Allowed at any time, including in the middle of an episode.
	 * Errors: -EINVAL only if the game cannot build an episode from its
	 * config at all (a game should find that out in create instead).
	 */
	int (*reset)(void *game, uint64_t seed);

	/*
	 * Advances the game one step. actions[p] is player p's action (one per
	 * player, `players` entries). An illegal or out-of-range action must be
	 * treated as the game's no-op, never as an error, so a misbehaving
	 * agent cannot stop a shard. Writes rewards[p] (one per player) and
	 * flags[p] (XR_GAME_* bits, one per player).
	 * Returns 0 while the episode goes on, 1 when it ended at this step
	 * (then every player's flags are non-zero, and the next call must be
	 * reset()). Errors: -EINVAL when called after the episode ended.
	 */
	int (*step)(void *game, const int32_t *actions, float *rewards, uint32_t *flags);

	/*
	 * Writes player's observation, C*H*W elements of dtype (XR_DTYPE_U8 or
	 * XR_DTYPE_F32), into out, which must hold that many elements and be
	 * aligned for dtype. Player numbers are 0..players-1. A player who is
	 * out may still be observed (what it sees is up to the game).
	 * Errors: -EINVAL (player out of range, dtype not U8 or F32).
	 */
	int (*observe)(void *game, uint32_t player, xr_dtype dtype, void *out);

	/*
	 * Writes player's legal-action mask into mask (n_actions bytes, each
	 * 0 or 1). At least one action, the game's no-op, is always legal.
	 * Errors: -EINVAL (player out of range).
	 */
	int (*legal_actions)(void *game, uint32_t player, uint8_t *mask);
} xr_game_vtable;

/* A plugin is a shared object that exports this function (with default
 * visibility, see XR_GAME_PLUGIN_EXPORT) returning a pointer to a vtable in
 * static storage. It is called once per xr_game_load(). */
#define XR_GAME_PLUGIN_SYMBOL "xr_game_plugin"
typedef const xr_game_vtable *(*xr_game_plugin_fn)(void);

#if defined(__GNUC__)
#define XR_GAME_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define XR_GAME_PLUGIN_EXPORT
#endif

/* The entry point a plugin defines (libxring does not). Declared here so a
 * plugin's definition has its prototype and is exported even when the plugin
 * is built with -fvisibility=hidden. */
XR_GAME_PLUGIN_EXPORT const xr_game_vtable *xr_game_plugin(void);

/*
 * Loads the game plugin at path, a file path (a bare "game.so" is the file in
 * the working directory; the library search path is never used), with
 * dlopen(RTLD_NOW | RTLD_LOCAL) so every undefined symbol is resolved now or
 * the load fails, calls its xr_game_plugin() and checks the vtable: abi,
 * name and every function.
 * On success *out points at the plugin's vtable. The plugin stays loaded for
 * the rest of the process (it is never dlclose()d), so the vtable and the
 * instances it creates stay valid. Loading a path twice yields the same
 * vtable.
 * Errors:
 *   -ENOENT     no file at path (other stat() failures: their -errno, such as
 *               -EACCES)
 *   -ENOEXEC    not a loadable shared object (wrong format or architecture,
 *               an unresolved dependency or symbol), no xr_game_plugin
 *               symbol, or it returned NULL or a vtable missing a function
 *               or name
 *   -EPROTO     the vtable's abi is not XR_GAME_ABI_VERSION (built against
 *               another version of this header)
 *   -EINVAL     path or out is NULL
 *   -ENAMETOOLONG  path too long
 * xr_game_last_note() then says why in one line.
 * Thread safety: may be called from any thread.
 */
XR_API int xr_game_load(const char *path, const xr_game_vtable **out);

/* The reason the last failed xr_game_load() in this thread gave (dlerror()
 * text, the abi found, ...), or "" after a success. Thread-local storage,
 * valid until the next xr_game_load() in the same thread. Never NULL. */
XR_API const char *xr_game_last_note(void);

/*
 * The built-in Generals-style grid game ("grid"; docs/games.md has its
 * rules). Board 2..256 x 2..256 (default 20 x 20), 2..8 players, turn limit
 * default 500. Observation 9 x H x W; n_actions = H * W * 4 + 1, the last
 * being the no-op. params: "mountains=F" (fraction of cells, default 0.15),
 * "cities=N" (default H*W/50, at least 1), "shaping=F" (land-change reward
 * term, default 0: off). Never NULL.
 */
XR_API const xr_game_vtable *xr_game_builtin_grid(void);

/*
 * The random-legal policy: an action drawn uniformly from the legal entries
 * (non-zero bytes) of mask[0..n-1], advancing *rng_state (any 64-bit value;
 * the caller keeps one per game or per player). Deterministic: the same mask
 * and state give the same action and the same next state. Uniform up to a
 * bias below (legal count) / 2^32.
 * Returns the action (>= 0), or -ENOENT when no entry is legal (or n is 0).
 * Thread safety: pure function of its arguments.
 */
XR_API int32_t xr_policy_random_legal(const uint8_t *mask, uint32_t n, uint64_t *rng_state);

#ifdef __cplusplus
}
#endif
#endif
