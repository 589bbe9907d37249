/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cli/config.h"

static int push(char ***args, int *n, const char *s)
{
	char **grown = realloc(*args, (size_t)(*n + 1) * sizeof(char *));

	if (!grown)
		return -ENOMEM;
	*args = grown;
	if (!(grown[*n] = strdup(s)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

void xr_config_free(char **args, int n)
{
	for (int i = 0; i < n; i++)
		free(args[i]);
	free(args);
}

/* The option whose name is "--" + key, or NULL. */
static const struct xr_opt *find(const struct xr_opt *opts, const char *key)
{
	for (int k = 0; opts[k].name; k++)
		if (!strncmp(opts[k].name, "--", 2) && !strcmp(opts[k].name + 2, key))
			return &opts[k];
	return NULL;
}

int xr_config_load(const char *cmd, const char *path, const struct xr_opt *opts, char ***args,
		   int *n)
{
	FILE *f = fopen(path, "re");
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = 0, depth = 0;
	char key[128] = "";
	bool have_key = false, done = false;

	if (!f) {
		xr_cli_err(cmd, "--config %s: %s", path, strerror(errno));
		return XR_EXIT_FAIL;
	}
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	while (!done && rc == 0) {
		if (!yaml_parser_parse(&p, &ev)) {
			xr_cli_err(cmd, "--config %s: line %zu: %s", path, p.problem_mark.line + 1,
				   p.problem ? p.problem : "not YAML");
			rc = XR_EXIT_FAIL;
			break;
		}
		size_t line = ev.start_mark.line + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_MAPPING_START_EVENT:
			if (++depth > 1) {
				xr_cli_err(cmd, "--config %s: line %zu: '%s' must have a plain value, not a "
					   "mapping", path, line, key);
				rc = XR_EXIT_USAGE;
			}
			break;
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_SEQUENCE_START_EVENT:
			xr_cli_err(cmd, "--config %s: line %zu: %s%s%s must be a plain value, not a list",
				   path, line, have_key ? "'" : "the file", have_key ? key : "",
				   have_key ? "'" : "");
			rc = XR_EXIT_USAGE;
			break;
		case YAML_SCALAR_EVENT: {
			const char *s = (const char *)ev.data.scalar.value;
			if (depth != 1) {
				xr_cli_err(cmd, "--config %s: the file must be a mapping of option: value",
					   path);
				rc = XR_EXIT_USAGE;
			} else if (!have_key) {
				const struct xr_opt *o = find(opts, s);
				if (!o || !strcmp(s, "config") || !strcmp(s, "help")) {
					xr_cli_err(cmd, "--config %s: line %zu: unknown key '%s'; keys are "
						   "the long options of `xring %s --help` without the dashes",
						   path, line, s, cmd);
					rc = XR_EXIT_USAGE;
				}
				snprintf(key, sizeof(key), "%s", s);
				have_key = true;
			} else {
				const struct xr_opt *o = find(opts, key);
				char flag[160];
				snprintf(flag, sizeof(flag), "--%s", key);
				if (!o->has_value) {
					if (!strcmp(s, "true") || !strcmp(s, "yes")) {
						rc = push(args, n, flag) < 0 ? XR_EXIT_FAIL : 0;
					} else if (strcmp(s, "false") && strcmp(s, "no")) {
						xr_cli_err(cmd, "--config %s: line %zu: '%s' takes true or "
							   "false, not '%s'", path, line, key, s);
						rc = XR_EXIT_USAGE;
					}
				} else if (push(args, n, flag) < 0 || push(args, n, s) < 0) {
					rc = XR_EXIT_FAIL;
				}
				have_key = false;
			}
			break;
		}
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	fclose(f);
	return rc;
}
