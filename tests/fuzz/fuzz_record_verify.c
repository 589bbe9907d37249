/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the record verifier. Built only with clang and
 * -DXRING_LIBFUZZER=ON (see tests/record.cmake); the deterministic twin that
 * runs in ctest everywhere is tests/test_record_fuzz.c.
 *
 *   CC=clang cmake -S . -B build-fuzz -DXRING_LIBFUZZER=ON
 *   cmake --build build-fuzz --target fuzz_record_verify
 *   build-fuzz/tests/fuzz_record_verify -max_len=4096 corpus/
 *
 * Any accepted input must yield a view that stays inside the input and
 * whose shape accounts for its data exactly; violations abort.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xring/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* Keeps the reads of the view's bytes from being optimised away. */
static volatile unsigned int sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const uint8_t *end = data + len;
	unsigned int sum = 0;
	xr_exp_view v;
	uint64_t n;

	if (xr_exp_view_init(&v, data, len))
		return 0;
	if (v.obs_ndim > XR_EXP_MAX_DIMS)
		abort();
	if (v.obs) {
		const uint8_t *o = v.obs;

		if (o < data || o > end || v.obs_bytes > (uint64_t)(end - o))
			abort();
		n = xr_dtype_size(v.obs_dtype);
		for (uint32_t i = 0; i < v.obs_ndim; i++) {
			if (v.obs_dims[i] < 1)
				abort();
			n *= (uint64_t)v.obs_dims[i];
		}
		if (n != v.obs_bytes)
			abort();
		for (uint64_t i = 0; i < v.obs_bytes; i++)
			sum += o[i];
	}
	if (v.mask && (v.mask < data || v.mask > end ||
		       v.mask_len > (size_t)(end - v.mask)))
		abort();
	if (v.extras && (v.extras < data || v.extras > end ||
			 v.extras_len > (size_t)(end - v.extras)))
		abort();
	for (uint32_t i = 0; v.mask && i < v.mask_len; i++)
		sum += v.mask[i];
	for (uint32_t i = 0; v.extras && i < v.extras_len; i++)
		sum += v.extras[i];
	sink = sum;
	return 0;
}
