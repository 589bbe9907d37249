/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"

/* One line, whatever the message quotes: an argument, a path or a peer's
 * reason with a newline or an escape sequence in it would otherwise break
 * the line (or drive the terminal), so control bytes print as '?'. */
void xr_cli_err(const char *cmd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(stderr, "xring %s: %s\n", cmd, msg);
}

static bool parse_scaled(const char *s, uint64_t unit, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mul = unit; end++; break;
	case 'm': case 'M': mul = unit * unit; end++; break;
	case 'g': case 'G': mul = unit * unit * unit; end++; break;
	default: return false;
	}
	if (*end == 'i' && unit == 1024)
		end++;
	if ((*end == 'B' || *end == 'b') && unit == 1024)
		end++;
	if (*end || (mul > 1 && v > UINT64_MAX / mul))
		return false;
	*out = v * mul;
	return true;
}

bool xr_parse_size(const char *s, uint64_t *out)
{
	return parse_scaled(s, 1024, out);
}

bool xr_parse_count(const char *s, uint64_t *out)
{
	return parse_scaled(s, 1000, out);
}

bool xr_parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

bool xr_parse_board(const char *s, uint32_t *h, uint32_t *w)
{
	unsigned a, b;
	char extra;

	if (sscanf(s, "%ux%u%c", &a, &b, &extra) != 2 || a < 1 || b < 1 || a > 4096 || b > 4096)
		return false;
	*h = a;
	*w = b;
	return true;
}

bool xr_parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0) || v > 1e9)
		return false;
	*out = v;
	return true;
}

int xr_next_opt(const char *cmd, int argc, char **argv, int *i, const struct xr_opt *opts,
		const char **value)
{
	const char *arg = argv[*i];
	const char *eq;
	size_t n;

	(*i)++;
	*value = NULL;
	if (arg[0] != '-' || !strcmp(arg, "-")) {
		*value = arg;
		return -1;
	}
	eq = strchr(arg, '=');
	n = eq ? (size_t)(eq - arg) : strlen(arg);
	for (int k = 0; opts[k].name; k++) {
		if (strlen(opts[k].name) != n || strncmp(opts[k].name, arg, n))
			continue;
		if (!opts[k].has_value) {
			if (eq) {
				xr_cli_err(cmd, "%s takes no value; see `xring %s --help`",
					   opts[k].name, cmd);
				return -2;
			}
			return k;
		}
		if (eq) {
			*value = eq + 1;
		} else if (*i < argc) {
			*value = argv[(*i)++];
		} else {
			xr_cli_err(cmd, "%s needs a value; see `xring %s --help`", opts[k].name, cmd);
			return -2;
		}
		return k;
	}
	xr_cli_err(cmd, "unknown option '%.*s'; see `xring %s --help`", (int)n, arg, cmd);
	return -2;
}
