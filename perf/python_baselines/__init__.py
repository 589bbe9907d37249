# SPDX-License-Identifier: MIT
"""The pipelines perf/bench_python.py measures xring's Python reader against.

records     the layout of the records every pipeline carries, and the numpy
            views a consumer makes of a message of them (the same work for
            every baseline)
queue_pipe  a multiprocessing.Queue pipeline: a producer process puts
            messages of N records, the consumer gets them
steady      glibc malloc settings that put a fresh process in the steady state
            of a long-running one (messages of megabytes)
grpc_pipe   a gRPC server-streaming pipeline (grpcio, no protobuf: the
            messages are the records' bytes): a server process streams
            messages of N records to a client in the consumer
replay      replay buffers in one process, numpy only (perf/bench_replay.py):
            a uniform ring, and a prioritized buffer over a binary sum tree
            sampled for a whole batch at once (tests/python/
            test_replay_baselines.py checks its draws)

Producers run in processes started with the "spawn" method, so these modules
import nothing heavy at the top (numpy only where the consumer needs it).
"""
