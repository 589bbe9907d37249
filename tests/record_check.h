/* SPDX-License-Identifier: MIT */
#ifndef XR_TESTS_RECORD_CHECK_H
#define XR_TESTS_RECORD_CHECK_H

/*
 * Non-fatal checks for the record codec tests: a failed check prints where
 * and why and counts, so one run reports every broken field and shape, and
 * main() exits non-zero when `failures` is not 0. (The ring tests use the
 * fatal CHECK of ring_helpers.h instead: their failures leave other
 * processes and threads in states not worth continuing from.)
 */

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: check failed: %s: ",          \
				__FILE__, __LINE__, #cond);                   \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
			failures++;                                           \
		}                                                             \
	} while (0)

#endif
