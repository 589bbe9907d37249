/* SPDX-License-Identifier: MIT */
#ifndef XRING_EXPORT_H
#define XRING_EXPORT_H

/* The library is built with -fvisibility=hidden; only XR_API symbols are
 * exported from libxring.so. The static library needs no decoration. */
#if defined(XRING_BUILDING) && defined(__GNUC__)
#define XR_API __attribute__((visibility("default")))
#else
#define XR_API
#endif

#endif
