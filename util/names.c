/* SPDX-License-Identifier: MIT */
/*
 * The names of xring's enumerations, both ways: one table per enumeration,
 * used by the CLI, the Python binding and the config file alike, so that
 * "lossy" means the same thing everywhere and every refusal lists the
 * same choices. (Record dtypes are named in record/experience.c, beside
 * their sizes.)
 */
#include <errno.h>
#include <string.h>

#include "xring/reader.h"
#include "xring/types.h"

struct name {
	const char *s;
	int v;
};

static const struct name policies[] = {
	{"lossless", XR_POLICY_LOSSLESS},
	{"lossy", XR_POLICY_LOSSY},
	{NULL, 0},
};

static const struct name hugepages[] = {
	{"prefer", XR_HUGEPAGES_PREFER},
	{"require", XR_HUGEPAGES_REQUIRE},
	{"off", XR_HUGEPAGES_OFF},
	{NULL, 0},
};

static const struct name transports[] = {
	{"auto", XR_TRANSPORT_AUTO},
	{"control", XR_TRANSPORT_CONTROL},
	{"direct", XR_TRANSPORT_DIRECT},
	{NULL, 0},
};

static int parse(const struct name *t, const char *s, int *out)
{
	for (; s && t->s; t++)
		if (!strcmp(t->s, s)) {
			*out = t->v;
			return 0;
		}
	return -EINVAL;
}

static const char *name_of(const struct name *t, int v)
{
	for (; t->s; t++)
		if (t->v == v)
			return t->s;
	return NULL;
}

int xr_policy_parse(const char *s, xr_policy *out)
{
	int v, rc = parse(policies, s, &v);

	if (rc == 0)
		*out = (xr_policy)v;
	return rc;
}

const char *xr_policy_name(xr_policy p)
{
	return name_of(policies, p);
}

int xr_hugepages_parse(const char *s, xr_hugepages *out)
{
	int v, rc = parse(hugepages, s, &v);

	if (rc == 0)
		*out = (xr_hugepages)v;
	return rc;
}

int xr_transport_parse(const char *s, uint32_t *out)
{
	int v, rc = parse(transports, s, &v);

	if (rc == 0)
		*out = (uint32_t)v;
	return rc;
}
