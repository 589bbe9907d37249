/* SPDX-License-Identifier: MIT */
#ifndef XR_CLI_ARGS_H
#define XR_CLI_ARGS_H

/*
 * Small helpers shared by the subcommands: value parsing with one-line
 * errors, and the exit convention (0 ok, 1 runtime failure, 2 usage).
 */

#include <stdbool.h>
#include <stdint.h>

#define XR_EXIT_FAIL 1
#define XR_EXIT_USAGE 2

/* Prints "xring CMD: " + message + newline to stderr. */
void xr_cli_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a byte size "4096", "64K", "16M", "1G" (binary units). */
bool xr_parse_size(const char *s, uint64_t *out);
/* Parses a non-negative integer with optional K/M/G (decimal units). */
bool xr_parse_count(const char *s, uint64_t *out);
/* Parses a decimal integer in [lo, hi]. */
bool xr_parse_int(const char *s, long lo, long hi, long *out);
/* Parses a board "HxW" (each 1..4096). */
bool xr_parse_board(const char *s, uint32_t *h, uint32_t *w);
/* Parses seconds as a decimal ("0.5", "10"). */
bool xr_parse_seconds(const char *s, double *out);

/*
 * One option parse step over argv, for subcommands with long options that
 * all take a value or none. Sets *name and *value; returns the next index.
 * Handles "--opt=value" and "--opt value".
 */
struct xr_opt {
	const char *name;  /* "--ring-size" */
	bool has_value;
};

/* Returns the index of the matched option in opts, -1 for a positional
 * argument (in *value), -2 for an unknown option or a missing value (an
 * error line has been printed). *i is advanced past what was consumed. */
int xr_next_opt(const char *cmd, int argc, char **argv, int *i, const struct xr_opt *opts,
		const char **value);

#endif
