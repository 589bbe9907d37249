/* Act for every seat of 16 games of one's own: xring's agent API in brief. */
#include <stdio.h>
#include <xring/xring.h>

int main(int argc, char **argv)
{
	const char *engine = argc > 1 ? argv[1] : "demo";
	xr_games *g;
	xr_agent *a;
	xr_obs_batch b;
	xr_game_spec spec = {.seed = 7, .owned = 1}; /* the engine's shape; gone with us */
	uint32_t ids[16];
	int32_t act[1024];
	unsigned answered = 0;
	int n;

	if ((n = xr_games_open(engine, NULL, &g)) < 0 || (n = xr_games_create(g, &spec, 16, ids)) < 0 ||
	    (n = xr_agent_attach(engine, NULL, &a)) < 0) {
		fprintf(stderr, "%s: %s %s\n", engine, xr_strerror(n), xr_last_reason());
		return 1;
	}
	xr_stream_facts sf; /* where each field of a record is */
	xr_exp_template t;
	n = xr_agent_claim(a, ids[0], ids[15], 0, NULL); /* every player of them */
	xr_reader_stream_facts(xr_agent_reader(a), &sf);
	xr_exp_template_init(&t, &sf.shape);
	/* Records of our seats, in place; one answer per record. */
	while (n >= 0 && answered < 1000 && (n = xr_agent_recv(a, 1, 1024, 1000000000, &b)) > 0) {
		for (uint32_t i = 0; i < b.count; i++) {
			const uint8_t *r = xr_frame_data(b.frames[i]);
			act[i] = 0;
			for (uint32_t k = 0; k < t.shape.mask_len; k++)
				if (r[t.off_mask + k])
					act[i] = (int32_t)k; /* the highest legal action */
		}
		xr_agent_send(a, &b, act); /* into the action slots; releases b */
		answered += (unsigned)n;
	}
	printf("answered %u records of %s's 16 games\n", answered, engine);
	xr_agent_detach(a);
	xr_games_close(g); /* our games go */
	return n < 0 ? 1 : 0;
}
