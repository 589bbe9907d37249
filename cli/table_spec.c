/* SPDX-License-Identifier: MIT */
#include "cli/table_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"

static int number(const char *key, const char *v, double *out, char *why, size_t len)
{
	char *end;
	double d = strtod(v, &end);

	if (!*v || *end) {
		snprintf(why, len, "%s '%s' is not a number", key, v);
		return -1;
	}
	*out = d;
	return 0;
}

static int count(const char *key, const char *v, uint64_t max, uint64_t *out, char *why,
		 size_t len)
{
	if (!xr_parse_count(v, out) || *out > max) {
		snprintf(why, len, "%s must be a count up to %llu, not '%s'", key,
			 (unsigned long long)max, v);
		return -1;
	}
	return 0;
}

static int word(const char *key, const char *v, const char *const *words, uint32_t n,
		uint32_t *out, char *why, size_t len)
{
	for (uint32_t i = 0; i < n; i++)
		if (!strcmp(v, words[i])) {
			*out = i;
			return 0;
		}
	snprintf(why, len, "%s '%s' is not one of %s|%s|%s%s%s", key, v, words[0], words[1],
		 words[2], n > 3 ? "|" : "", n > 3 ? words[3] : "");
	return -1;
}

static int key_value(char *kv, struct xr_cli_table *t, char *why, size_t len)
{
	static const char *const samplers[] = {"uniform", "prioritized", "fifo", "lifo"};
	static const char *const removers[] = {"fifo", "lifo", "lowest-priority"};
	xr_table_opts *o = &t->opts;
	char *eq = strchr(kv, '=');
	uint64_t n;

	if (!eq) {
		snprintf(why, len, "'%s' is not KEY=VALUE", kv);
		return -1;
	}
	*eq = '\0';
	const char *k = kv, *v = eq + 1;
	if (!strcmp(k, "item_size")) {
		if (count(k, v, 1u << 20, &n, why, len) < 0)
			return -1;
		o->item_size = (uint32_t)n;
	} else if (!strcmp(k, "sampler")) {
		return word(k, v, samplers, 4, &o->sampler, why, len);
	} else if (!strcmp(k, "remover")) {
		return word(k, v, removers, 3, &o->remover, why, len);
	} else if (!strcmp(k, "alpha")) {
		return number(k, v, &o->alpha, why, len);
	} else if (!strcmp(k, "beta")) {
		return number(k, v, &o->beta, why, len);
	} else if (!strcmp(k, "samples_per_insert")) {
		return number(k, v, &o->samples_per_insert, why, len);
	} else if (!strcmp(k, "error_buffer")) {
		return number(k, v, &o->error_buffer, why, len);
	} else if (!strcmp(k, "priority")) {
		return number(k, v, &o->priority, why, len);
	} else if (!strcmp(k, "max_times_sampled")) {
		if (count(k, v, UINT32_MAX, &n, why, len) < 0)
			return -1;
		o->max_times_sampled = (uint32_t)n;
	} else if (!strcmp(k, "min_size")) {
		return count(k, v, 1u << 30, &o->min_size, why, len);
	} else if (!strcmp(k, "seed")) {
		return count(k, v, UINT64_MAX, &o->seed, why, len);
	} else if (!strcmp(k, "source")) {
		o->source = v;
	} else if (!strcmp(k, "restore")) {
		if (!*v || strlen(v) > 255) {
			snprintf(why, len, "restore needs a checkpoint's path of 1 to 255 bytes");
			return -1;
		}
		t->restore = v;
	} else if (!strcmp(k, "item")) {
		static const char *const items[] = {"record", "transition"};
		for (uint32_t i = 0; i < 2; i++)
			if (!strcmp(v, items[i])) {
				o->item = i;
				return 0;
			}
		snprintf(why, len, "item '%s' is not record or transition", v);
		return -1;
	} else {
		snprintf(why, len, "no key '%s' (item_size, sampler, remover, alpha, beta, "
			 "max_times_sampled, min_size, samples_per_insert, error_buffer, seed, "
			 "source, priority, item, restore)", k);
		return -1;
	}
	return 0;
}

int xr_cli_table_parse(const char *v, struct xr_cli_table *t, char *why, size_t len)
{
	uint64_t cap;

	memset(t, 0, sizeof(*t));
	t->opts.alpha = 1.0;
	t->opts.priority = 1.0;
	if (strlen(v) >= sizeof(t->spec)) {
		snprintf(why, len, "too long");
		return -1;
	}
	strcpy(t->spec, v);
	char *cap_s = strchr(t->spec, ':');
	if (!cap_s) {
		snprintf(why, len, "not NAME:CAPACITY[:KEY=VALUE,...]");
		return -1;
	}
	*cap_s++ = '\0';
	t->name = t->spec;
	char *rest = strchr(cap_s, ':');
	if (rest)
		*rest++ = '\0';
	if (count("capacity", cap_s, 1u << 30, &cap, why, len) < 0)
		return -1;
	if (cap == 0) {
		snprintf(why, len, "capacity must be at least 1");
		return -1;
	}
	t->opts.capacity = (uint32_t)cap;
	for (char *kv = rest, *next; kv && *kv; kv = next) {
		next = strchr(kv, ',');
		if (next)
			*next++ = '\0';
		if (key_value(kv, t, why, len) < 0)
			return -1;
	}
	return 0;
}
