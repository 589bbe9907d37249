/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "xring/error.h"

struct xr_errdesc {
	int code;
	const char *name;
	const char *text;
};

static const struct xr_errdesc xr_errors[] = {
	{XR_ELAYOUT, "XR_ELAYOUT",
	 "arena was created by an incompatible xring build (layout mismatch)"},
	{XR_ECLOSED, "XR_ECLOSED", "engine closed the arena or is no longer running"},
	{XR_EEVICTED, "XR_EEVICTED", "reader was detached by the engine"},
	{XR_EBADREC, "XR_EBADREC", "record is not a well-formed Experience"},
	{XR_ENOHUGE, "XR_ENOHUGE", "huge pages required but not available"},
	{XR_EPOLICY, "XR_EPOLICY", "reader policy not allowed on this stream"},
	{XR_EDROPPED, "XR_EDROPPED", "record dropped: a reader's lease blocks the ring"},
	{XR_ENOTARENA, "XR_ENOTARENA", "file is not an xring arena"},
	{XR_EUNTRUSTED, "XR_EUNTRUSTED",
	 "a file, socket or directory belongs to a user that is not trusted here"},
};

#define XR_NERR (sizeof(xr_errors) / sizeof(xr_errors[0]))

static const struct xr_errdesc *xr_find(int err)
{
	for (size_t i = 0; i < XR_NERR; i++)
		if (xr_errors[i].code == err)
			return &xr_errors[i];
	return NULL;
}

const char *xr_strerror(int err)
{
	const struct xr_errdesc *d = xr_find(err);

	if (d)
		return d->text;
	if (err < 0 && err > -XR_ERRNO_BASE)
		return strerror(-err);
	if (err == 0)
		return "success";
	return "unknown error";
}

const char *xr_err_name(int err)
{
	const struct xr_errdesc *d = xr_find(err);

	if (d)
		return d->name;
	if (err == 0)
		return "OK";
	if (err < 0 && err > -XR_ERRNO_BASE) {
		const char *n = strerrorname_np(-err);
		if (n)
			return n;
	}
	return "EUNKNOWN";
}
