/* SPDX-License-Identifier: MIT */
#ifndef XR_CLI_CONFIG_H
#define XR_CLI_CONFIG_H

/*
 * Config files: a YAML mapping whose keys are a subcommand's long options
 * without the dashes and whose values are what the option takes:
 *
 *     name: trainer-feed
 *     games: 10000
 *     board: 20x20
 *     quiet: true        # options without a value take true or false
 *
 * Every flag has a key, and nothing else is a key: an unknown key is an
 * error naming it. The file becomes a list of arguments placed before the
 * command line's, so flags given on the command line win.
 */

#include "cli/args.h"

/*
 * Reads path and appends "--key" ["value"] pairs to *args (an array of
 * *n heap strings, grown as needed). Returns 0, or prints one line (prefixed
 * "xring CMD: ") and returns XR_EXIT_USAGE (bad key or value shape) or
 * XR_EXIT_FAIL (cannot read, not YAML).
 */
int xr_config_load(const char *cmd, const char *path, const struct xr_opt *opts, char ***args,
		   int *n);

void xr_config_free(char **args, int n);

#endif
