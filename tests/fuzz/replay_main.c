/* SPDX-License-Identifier: MIT */
/*
 * A main() for the fuzz harnesses without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named, and on every file of
 * every directory named (in name order, dot files skipped), each in a
 * buffer of exactly its size so that ASan sees a read past its end. This
 * is how the committed corpora and the regressions (tests/fuzz/regressions)
 * run in every build, gcc's included (tests/fuzz/fuzz.cmake). A harness
 * aborts on what it finds; this returns 0 when every input ran.
 *
 *   fuzz_<h>_replay DIR_OR_FILE...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *buf;

	if (!f || fstat(fileno(f), &st) < 0) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		exit(1);
	}
	/* malloc(0) may return NULL: one byte then, of which none is given. */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	if (getenv("FZ_NAMES"))
		fprintf(stderr, "replay: %s\n", path);
	LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
	free(buf);
	return 1;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		struct dirent **ents;
		char path[4096];

		/* A harness without regressions has no directory of them (git
		 * keeps no empty directory). */
		if (stat(argv[i], &st) < 0) {
			printf("replay: no %s: nothing to run there\n", argv[i]);
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			n += run_file(argv[i]);
			continue;
		}
		int k = scandir(argv[i], &ents, NULL, by_name);
		if (k < 0) {
			fprintf(stderr, "replay: cannot list %s\n", argv[i]);
			return 1;
		}
		for (int j = 0; j < k; j++) {
			snprintf(path, sizeof(path), "%s/%s", argv[i], ents[j]->d_name);
			if (ents[j]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
				n += run_file(path);
			free(ents[j]);
		}
		free(ents);
	}
	printf("replay: %d inputs ran, none crashed\n", n);
	return 0;
}
