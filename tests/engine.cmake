# Tests of the engine's parts (engine/).
xr_test(NAME test_timer_wheel SOURCES test_timer_wheel.c LABELS "unit;engine")
# Threads (shards): TSan runs it too.
xr_test(NAME test_engine_shard SOURCES test_engine_shard.c LABELS "unit;engine;threads")
# 10,000 games on 2 shards for a bounded time, two reader processes through
# the control socket: zero loss and exact accounting.
xr_test(NAME test_engine_readers SOURCES test_engine_readers.c LABELS "stress;engine;threads"
  ARGS 2 TIMEOUT 300)
# Games created, reset and destroyed through the control socket while the
# engine runs; refusals; garbage; episodes ended at stop. Threads: TSan too.
xr_test(NAME test_engine_games SOURCES test_engine_games.c LABELS "unit;engine;threads;control")
# Games at runtime under load, short variants (perf/games_load.sh runs the
# full ones): 0 -> 1,000 games by 10 creator processes; 2,000 games with two
# lossless readers; 500 creations and destructions a second. Zero loss,
# every episode ended, threads/fds/RSS flat, stats equal what was done.
# Under the sanitizers the sustained run is 4 s: what it finds there is a
# memory error or a race, which the load's first seconds reach as well as
# its last; its rates and flatness are the release pass's. Labelled
# threads: the TSan pass runs them against its engine (xring_cli).
foreach(mode_secs "ramp;3" "sustained;12" "burst;6")
  list(GET mode_secs 0 mode)
  list(GET mode_secs 1 secs)
  if(mode STREQUAL "sustained" AND (XRING_ASAN OR XRING_UBSAN OR XRING_TSAN))
    set(secs 4)
  endif()
  xr_test(NAME test_games_load_${mode} SOURCES test_games_load.c LABELS "stress;engine;threads"
          ARGS $<TARGET_FILE:xring_cli> ${mode} ${secs} TIMEOUT 300)
endforeach()
# Agents acting for seats through shared memory: the turn protocol paired
# record by record, bad answers and their fallbacks, seat conflicts, an
# agent stopped and killed. Threads: TSan too.
xr_test(NAME test_agents SOURCES test_agents.c LABELS "unit;engine;threads;control")
# Red team of agents: hostile peers and careless callers (one case a
# finding). Threads: TSan too. Two tests of one program: the cases that
# measure a share of the shards' work (test_agents_red_rates) run alone in
# every pass; the rest run beside other tests.
set(XR_AGENTS_RED_RATES claim_churn claim_walk drops_stall engine_games_taken)
xr_test(NAME test_agents_red SOURCES test_agents_red.c LABELS "unit;engine;threads;control"
  TIMEOUT 300 ARGS --except ${XR_AGENTS_RED_RATES})
add_test(NAME test_agents_red_rates COMMAND test_agents_red ${XR_AGENTS_RED_RATES})
# Not labelled threads, and labelled rates: under TSan or ASan its cases
# would measure the sanitizer, and their threads and claims are
# test_agents_red's (which both sanitizer passes run).
set_tests_properties(test_agents_red_rates PROPERTIES
  LABELS "unit;engine;control;rates" SKIP_RETURN_CODE 77 TIMEOUT 300
  ENVIRONMENT "XRING_RUN_DIR=${XR_TEST_RUN_DIR}")
# Its measures are of shards' CPU time per step, not wall time, but CPU time
# is not immune to what runs beside: in a -j2 run claim_churn saw each step
# cost 2.7 times as much while seats were claimed and released, against 1.1
# times alone. Each claim makes every game look its seats up again on its
# next turn; with less of the CPUs, the shard plays fewer turns between
# claims, so each turn pays for more of them.
set_tests_properties(test_agents_red_rates PROPERTIES RUN_SERIAL TRUE)
