/* Print the first records an engine writes: xring's reader API in brief. */
#include <stdio.h>
#include <xring/xring.h>

int main(int argc, char **argv)
{
	const char *engine = argc > 1 ? argv[1] : "demo";
	xr_reader *r;
	xr_batch b;
	unsigned seen = 0;
	int n = xr_reader_attach(engine, NULL, &r); /* stream "experience" */

	if (n < 0) {
		fprintf(stderr, "attach %s: %s\n", engine, xr_strerror(n));
		return 1;
	}
	/* 1..64 records, waiting at most 1 s; they stay in the ring (no copy). */
	while (seen < 5 && (n = xr_reader_read(r, 1, 64, 1000000000, &b)) > 0) {
		const xr_frame *f = b.first;
		for (uint32_t i = 0; i < b.count; i++, f = xr_frame_next(f)) {
			xr_exp_view e;
			if (xr_exp_view_init(&e, xr_frame_data(f), f->len) == 0)
				printf("seq %llu game %u turn %u reward %.3f\n",
				       (unsigned long long)e.f.seq, e.f.game_id, e.f.turn,
				       (double)e.f.reward);
		}
		seen += b.count;
		xr_batch_release(r, &b); /* the writer may reuse the space now */
	}
	xr_reader_detach(r);
	return n < 0 ? 1 : 0;
}
