# SPDX-License-Identifier: MIT
"""The gRPC server-streaming pipeline (grpcio, Debian's python3-grpcio).

Server (its own process): one generic unary-stream method,
/xring.bench.Experience/Stream, with no serializers: the request is the
batch size as ASCII, each response message is the bytes of that many
records, one pre-built bytes object yielded again and again (no protobuf,
no per-message work in Python beyond the yield). gRPC frames it in HTTP/2
and sends it over a loopback TCP socket (or a Unix socket).
Client (in the benchmark): iterates the call and makes numpy views of each
message's fields, the same arrays xring's Batch gives.
"""
import os

from .steady import malloc_steady

METHOD = "/xring.bench.Experience/Stream"
# Messages of 1024 f32 records are 16 MiB; gRPC's default limit is 4 MiB.
OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def serve(payload, stride, target, cpu, ready):
    """Runs in the server process: streams payload[:n * stride] (n from the
    request) until the client cancels; puts the bound address on `ready`."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    malloc_steady()
    from concurrent import futures

    import grpc

    cache = {}

    def stream(request, context):
        n = int(request)
        msg = cache.get(n)
        if msg is None:
            msg = cache[n] = payload[:n * stride]
        while True:
            yield msg

    handler = grpc.method_handlers_generic_handler(
        METHOD.split("/")[1], {METHOD.split("/")[2]: grpc.unary_stream_rpc_method_handler(stream)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    if target.startswith("unix:"):
        server.add_insecure_port(target)
        addr = target
    else:
        port = server.add_insecure_port(target)
        addr = f"{target.rsplit(':', 1)[0]}:{port}"
    server.start()
    ready.put(addr)
    server.wait_for_termination()


class Client:
    """A channel to the server; stream(n) opens one call of n-record messages."""

    def __init__(self, addr):
        import grpc
        self.channel = grpc.insecure_channel(addr, options=OPTIONS)
        self.method = self.channel.unary_stream(METHOD)

    def stream(self, n):
        return self.method(str(n).encode())

    def close(self):
        self.channel.close()
