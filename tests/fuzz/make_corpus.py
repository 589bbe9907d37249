#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses (docs/fuzzing.md):

    tests/fuzz/make_corpus.py            # rewrites tests/fuzz/corpus/<h>/seed-*

Each seed is a small valid or near-valid input in the format its harness's
header comment describes; the fuzzer mutates from there. The other files of a
corpus (named by their SHA-1) are inputs libFuzzer found that reach code the
seeds do not, merged in with -merge=1 (docs/fuzzing.md); this script leaves
them alone. The seeds are
committed; this script is how they were made (run it again after changing a
format, and commit what changes). Offsets into the arena header are those of
shm/layout.h at layout version 7; should the layout move, the seeds are still
inputs (the arena harness stamps the identity fields itself), only less
pointed.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- shm/layout.h (layout version 7)
HDR = dict(total_size=24, page_size=32, tab_off=40, tab_size=48, writer_start=64,
           writer_pid=72, n_streams=84, n_rings=88, max_readers=92, name=96,
           state=512, streams=576, rings=1600)
STREAM = 128
STREAM_F = dict(name=0, policy=32, n_rings=36, first_ring=40, frame_align=44,
                record_kind=48, max_frame=52, ring_capacity=56, shape=64)
RING = 256
RING_F = dict(data_off=0, capacity=8, stream=16, frame_align=20, index=24,
              record_len=28, head=64, written=72, blocked=80, pub_gen=84, tail=128)


def ring(r, f):
    return HDR['rings'] + r * RING + RING_F[f]


def stream(s, f):
    return HDR['streams'] + s * STREAM + STREAM_F[f]


def write(seeds, name, data):
    seeds[name] = bytes(data)


# ---- fuzz_arena_open.c
def w(off, data):
    """op 0: write bytes at off."""
    return struct.pack('<BIB', 0, off, len(data)) + bytes(data)


def add(off, d, shift=0):
    """op 1: add (int32)d << shift to the u64 at off."""
    return struct.pack('<BIi', 1 | (shift << 2), off, d)


def size(n):
    """op 2: the file is n bytes long."""
    return struct.pack('<BI', 2, n)


def copy(dst, src, n):
    """op 3: copy n bytes within the file."""
    return struct.pack('<BIIH', 3, dst, src, n)


def u64(v):
    return struct.pack('<Q', v & (2**64 - 1))


def u32(v):
    return struct.pack('<I', v & (2**32 - 1))


def arena_seeds():
    s = {}
    write(s, 'valid', [0])
    write(s, 'valid-stream1', [0x04 | 0x10])
    write(s, 'valid-no-rings', [0x08])
    write(s, 'valid-by-name', [0x0c])
    write(s, 'valid-flipped-policy', [0x40])
    write(s, 'valid-filter', bytes([0x80, 2, 3, 0, 1, 1, 1, 2, 1, 1, 2, 128, 9]))
    write(s, 'filter-lossless', bytes([0xc0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 255, 0]))
    # The reader's walk against hostile producer state.
    write(s, 'head-far-ahead', bytes([0]) + add(ring(0, 'head'), 1, 20))
    write(s, 'head-behind-tail', bytes([0]) + add(ring(0, 'head'), -4096))
    write(s, 'tail-past-head', bytes([0]) + add(ring(0, 'tail'), 1, 16))
    write(s, 'head-odd', bytes([0]) + add(ring(0, 'head'), 8))
    write(s, 'exp-head-odd', bytes([0]) + add(ring(2, 'head'), 64))
    write(s, 'exp-written-back', bytes([0]) + add(ring(2, 'written'), -1000))
    write(s, 'exp-record-len', bytes([0]) + w(ring(2, 'record_len'), u32(64)))
    write(s, 'frames-garbage', bytes([0]) + w(3 * 4096 * 8, b'\xff' * 200))
    # The tables.
    write(s, 'rings-overlap', bytes([0]) + copy(ring(1, 'data_off'), ring(0, 'data_off'), 16))
    write(s, 'ring-past-end', bytes([0]) + add(ring(2, 'data_off'), 1, 30))
    write(s, 'stream-steals-ring', bytes([0]) + w(stream(0, 'n_rings'), u32(3)))
    write(s, 'first-ring-wraps', bytes([0]) + w(stream(1, 'first_ring'), u32(0xffffffff)))
    write(s, 'n-rings-33', bytes([0]) + w(HDR['n_rings'], u32(33)))
    write(s, 'n-streams-0', bytes([0]) + w(HDR['n_streams'], u32(0)))
    write(s, 'max-readers-256', bytes([0]) + w(HDR['max_readers'], u32(256)))
    write(s, 'tab-size-huge', bytes([0]) + add(HDR['tab_size'], 1, 31))
    write(s, 'page-size-odd', bytes([0]) + w(HDR['page_size'], u64(4095)))
    write(s, 'capacity-not-pow2', bytes([0]) + add(ring(1, 'capacity'), 4096))
    write(s, 'align-zero', bytes([0]) + w(ring(0, 'frame_align'), u32(0)))
    write(s, 'shape-dims', bytes([0]) + w(stream(1, 'shape') + 8, u32(0x7fffffff)))
    write(s, 'name-unterminated', bytes([0]) + w(HDR['name'], b'x' * 48))
    write(s, 'state-closed', bytes([0]) + w(HDR['state'], u32(2)))
    write(s, 'by-name-dead-pid', bytes([0x0c]) + w(HDR['writer_pid'], u32(0x7ffffff0)))
    # Truncated and grown files, and the identity left as the bytes say.
    write(s, 'truncated-header', bytes([0]) + size(4096))
    write(s, 'truncated-ring', bytes([0]) + size(3 * 4096 * 8 + 100))
    write(s, 'grown', bytes([0]) + size(200000))
    write(s, 'keep-id-wrong-version', bytes([2]) + w(8, u32(6)))
    write(s, 'raw-empty', bytes([1]))
    write(s, 'raw-magic', bytes([1]) + b'XRARENA1' + bytes(24))
    write(s, 'raw-magic-keep-id', bytes([3]) + b'XRARENA1' + bytes(24))
    return s


# ---- fuzz_control.c
ATTACH, SUBSCRIBE, DETACH, CREATE, DESTROY, RESET, LIST, AGENT_OPEN, CLAIM, RELEASE = range(1, 11)
PRODUCER = 11  # the harness's type byte 11 is PRODUCER_OPEN (14)
TDROP = 0x7f   # ...and 0x7f is TABLE_DROP (15)
BODY = {ATTACH: 0, SUBSCRIBE: 1128, DETACH: 8, CREATE: 72, DESTROY: 4104, RESET: 16, LIST: 8,
        AGENT_OPEN: 24, CLAIM: 16, RELEASE: 8, PRODUCER: 48, TDROP: 32}
WAIT = 0x10
TABLES = 0x20  # with it, the type byte t is TABLE_CREATE, TABLE_OPEN, GROUP_JOIN by t % 3
TCREATE, TOPEN, GJOIN = 0, 1, 2
TBODY = {TCREATE: 144, TOPEN: 32, GJOIN: 40}


def msg(t, body=b'', wait=True, fds=0, mid=1, extra=b''):
    """A structured message of type t (body padded to its type's size)."""
    body = bytes(body).ljust(BODY.get(t, 0), b'\0')[:BODY.get(t, 0)]
    return bytes([(WAIT if wait else 0) | fds]) + extra + bytes([t, 0, mid]) + body


def tmsg(t, body=b'', wait=True, fds=0, mid=1):
    """A table or group request: t is TCREATE, TOPEN or GJOIN."""
    body = bytes(body).ljust(TBODY[t], b'\0')[:TBODY[t]]
    return bytes([(WAIT if wait else 0) | TABLES | fds, t, 0, mid]) + body


def tcreate(name=b'fz', capacity=64, item_size=16, sampler=0, remover=0, mts=0, flags=0,
            alpha=0.6, beta=0.4, spi=0.0, eb=0.0, min_size=0, seed=1, prio=1.0, source=b''):
    return struct.pack('<32sIIIIIIddddQQd32s', name, capacity, item_size, sampler, remover, mts,
                       flags, alpha, beta, spi, eb, min_size, seed, prio, source)


def msg_len(t, body, hdr_len=None, wait=True):
    """A message whose body is len(body) bytes, the header's len hdr_len."""
    f = 1 | (2 if hdr_len is not None else 0)
    out = bytes([WAIT if wait else 0, t, f, 1]) + struct.pack('<H', len(body))
    if hdr_len is not None:
        out += struct.pack('<I', hdr_len)
    return out + bytes(body)


def raw(data, wait=True):
    return bytes([(WAIT if wait else 0) | 8]) + struct.pack('<H', len(data)) + bytes(data)


def hdr(t, length, mid=1, magic=0x31435258, version=2):
    return struct.pack('<IHHII', magic, version, t, length, mid)


def filt(games=(), players=(), min_turn=0, terminal=0, reward=None, rate=0.0, seed=0):
    r = reward or (0.0, 0.0)
    out = struct.pack('<IIIIIffIdQ', len(games), len(players), min_turn, terminal,
                      1 if reward else 0, r[0], r[1], 0, rate, seed)
    g = b''.join(struct.pack('<II', *x) for x in games).ljust(512, b'\0')
    p = b''.join(struct.pack('<II', *x) for x in players).ljust(512, b'\0')
    return out + g + p


def sub(stream=b'experience', policy=0, flags=1, label=b'fz', f=None):
    return struct.pack('<32sII16s', stream, policy, flags, label) + (f or filt())


def create(count=2, flags=1, kind=b'', h=0, w=0, players=0, turn_limit=0, dtype=0, seed=7):
    return struct.pack('<32sIIIIIIIIQ', kind, count, flags, h, w, players, turn_limit, dtype,
                       0, seed)


def control_seeds():
    s = {}
    a = msg(ATTACH)
    write(s, 'attach', a)
    write(s, 'subscribe-detach', a + msg(SUBSCRIBE, sub()) + msg(DETACH, struct.pack('<II', 0, 0)))
    write(s, 'subscribe-filter', a + msg(SUBSCRIBE, sub(policy=2, f=filt(
        games=[(0, 3), (10, 20)], players=[(1, 1)], min_turn=2, terminal=1,
        reward=(-1.0, 1.0), rate=0.5, seed=3))))
    write(s, 'subscribe-bad-filter', a + msg(SUBSCRIBE, sub(f=filt(games=[(5, 1)]))))
    write(s, 'subscribe-no-stream', a + msg(SUBSCRIBE, sub(stream=b'nope')))
    write(s, 'subscribe-lossless-flags', a + msg(SUBSCRIBE, sub(policy=1, flags=3)))
    write(s, 'subscribe-twice', a + msg(SUBSCRIBE, sub()) + msg(SUBSCRIBE, sub()))
    write(s, 'subscribe-unterminated', a + msg(SUBSCRIBE, b'x' * 1128))
    write(s, 'subscribe-before-attach', msg(SUBSCRIBE, sub()))
    write(s, 'detach-wrong-slot', a + msg(SUBSCRIBE, sub()) + msg(DETACH, struct.pack('<II', 7, 0)))
    write(s, 'attach-twice', a + a)
    write(s, 'games', a + msg(CREATE, create()) + msg(LIST, struct.pack('<II', 0, 128)) +
          msg(RESET, struct.pack('<IIQ', 0, 0, 9)) +
          msg(DESTROY, struct.pack('<II', 1, 0) + struct.pack('<I', 4)))
    write(s, 'games-not-owned', a + msg(CREATE, create(count=3, flags=0, h=8, w=8, players=2,
                                                       dtype=1, turn_limit=5)))
    write(s, 'games-no-shape', a + msg(CREATE, create(kind=b'coin')))
    write(s, 'games-malformed', a + msg(CREATE, create(count=0)) + msg(CREATE, create(count=5000)))
    write(s, 'games-bad-flags', a + msg(CREATE, create(flags=6)))
    write(s, 'games-dtype', a + msg(CREATE, create(dtype=13)))
    write(s, 'games-turn-limit', a + msg(CREATE, create(turn_limit=200000000)))
    write(s, 'games-kind-unterminated', a + msg(CREATE, b'g' * 72))
    write(s, 'destroy-many', a + msg(DESTROY, struct.pack('<II', 1024, 0) +
                                     b''.join(struct.pack('<I', i) for i in range(1024))))
    write(s, 'destroy-zero', a + msg(DESTROY, struct.pack('<II', 0, 0)))
    write(s, 'list-bad-max', a + msg(LIST, struct.pack('<II', 0, 0)) + msg(LIST, struct.pack('<II', 0, 129)))
    write(s, 'reset-unknown', a + msg(RESET, struct.pack('<IIQ', 12345, 0, 1)))
    write(s, 'game-before-attach', msg(LIST, struct.pack('<II', 0, 8)))
    ao = msg(AGENT_OPEN, struct.pack('<II16s', 4, 0, b'fz'))
    write(s, 'agent', a + ao + msg(CLAIM, struct.pack('<IIII', 0, 1, 0, 0)) +
          msg(SUBSCRIBE, sub(flags=3, policy=2)) + msg(RELEASE, struct.pack('<II', 0, 0)))
    write(s, 'agent-claim-bad', a + ao + msg(CLAIM, struct.pack('<IIII', 3, 1, 0, 0)) +
          msg(CLAIM, struct.pack('<IIII', 0, 1, 0x100, 0)))
    write(s, 'agent-twice', a + ao + ao)
    write(s, 'agent-flags', a + msg(AGENT_OPEN, struct.pack('<II16s', 4, 1, b'fz')))
    write(s, 'agent-capacity', a + msg(AGENT_OPEN, struct.pack('<II16s', 100000, 0, b'fz')))
    write(s, 'agent-unterminated', a + msg(AGENT_OPEN, struct.pack('<II16s', 4, 0, b'x' * 16)))
    write(s, 'claim-not-agent', a + msg(CLAIM, struct.pack('<IIII', 0, 1, 0, 0)))
    write(s, 'release-unknown', a + ao + msg(RELEASE, struct.pack('<II', 99, 0)))
    po = msg(PRODUCER, struct.pack('<32sQII', b'experience', 0, 0, 0))
    write(s, 'producer', a + po)
    write(s, 'producer-twice', a + po + po)
    write(s, 'producer-two-sessions', a + po + msg(SUBSCRIBE, sub()) + msg(LIST, struct.pack('<II', 0, 8)))
    write(s, 'producer-no-stream', a + msg(PRODUCER, struct.pack('<32sQII', b'nope', 0, 0, 0)))
    write(s, 'producer-stage', a + msg(PRODUCER, struct.pack('<32sQII', b'experience', 100000, 0, 0)) +
          msg(PRODUCER, struct.pack('<32sQII', b'experience', 1 << 16, 0, 0)) +
          msg(PRODUCER, struct.pack('<32sQII', b'experience', 1 << 40, 0, 0)))
    write(s, 'producer-flags', a + msg(PRODUCER, struct.pack('<32sQII', b'experience', 0, 1, 0)))
    write(s, 'producer-unterminated', a + msg(PRODUCER, b'p' * 48))
    write(s, 'table-drop-none', a + msg(TDROP, b'nosuch'))
    write(s, 'table-drop-unterminated', a + msg(TDROP, b't' * 32))
    write(s, 'table-drop-before-attach', msg(TDROP, b'replay'))
    write(s, 'producer-before-attach', msg(PRODUCER, struct.pack('<32sQII', b'experience', 0, 0, 0)))
    write(s, 'table-create-open-drop', a + tmsg(TCREATE, tcreate()) + tmsg(TOPEN, b'fz') +
          msg(TDROP, b'fz'))
    write(s, 'table-prioritized', a + tmsg(TCREATE, tcreate(b'p', 128, 8, sampler=1, remover=2,
                                                            spi=2.0, eb=10.0, min_size=4)))
    write(s, 'table-fed', a + tmsg(TCREATE, tcreate(b'fed', 256, 0, flags=1,
                                                    source=b'experience')))
    write(s, 'table-transitions', a + tmsg(TCREATE, tcreate(b'tr', 256, 0, flags=3,
                                                            source=b'experience')))
    write(s, 'table-bad', a + tmsg(TCREATE, tcreate(b'x' * 32)) +
          tmsg(TCREATE, tcreate(capacity=0)) + tmsg(TCREATE, tcreate(sampler=9)) +
          tmsg(TCREATE, tcreate(alpha=float('nan'))) + tmsg(TCREATE, tcreate(flags=4)))
    write(s, 'table-twice', a + tmsg(TCREATE, tcreate()) + tmsg(TCREATE, tcreate()))
    write(s, 'table-open-none', a + tmsg(TOPEN, b'nosuch') + tmsg(TOPEN, b'o' * 32))
    write(s, 'table-before-attach', tmsg(TCREATE, tcreate()) + tmsg(TOPEN, b'fz'))
    gj = tmsg(GJOIN, struct.pack('<32sII', b'g', 0, 0))
    write(s, 'group-join', a + gj + gj)
    write(s, 'group-bad', a + tmsg(GJOIN, struct.pack('<32sII', b'g' * 32, 0, 0)) +
          tmsg(GJOIN, struct.pack('<32sII', b'g', 7, 0)) +
          tmsg(GJOIN, struct.pack('<32sII', b'g', 0, 1)))
    write(s, 'raw-table-huge', raw(hdr(11, 144) + tcreate(capacity=1 << 30, item_size=1 << 20)))
    for k, what in enumerate(['pipe', 'memfd', 'socket', 'eventfd', 'self'], 1):
        write(s, 'fds-' + what, msg(ATTACH, fds=k))
    write(s, 'fds-many', bytes([WAIT | 6, 252, ATTACH, 0, 1]))
    write(s, 'fds-two-after-attach', a + msg(LIST, struct.pack('<II', 0, 8), fds=7))
    write(s, 'pipelined', msg(ATTACH, wait=False) + msg(CREATE, create(), wait=False) +
          msg(LIST, struct.pack('<II', 0, 16), wait=False) + msg(SUBSCRIBE, sub(), wait=False))
    write(s, 'raw-short', raw(b'XRC1\x02'))
    write(s, 'raw-empty', raw(b''))
    write(s, 'raw-bad-magic', raw(hdr(ATTACH, 0, magic=0x12345678)))
    write(s, 'raw-bad-version', raw(hdr(ATTACH, 0, version=1)))
    write(s, 'raw-len-disagrees', raw(hdr(ATTACH, 4) + b'abcdefgh'))
    write(s, 'raw-unknown-type', raw(hdr(0x55, 0)))
    write(s, 'raw-reply-type', raw(hdr(0x82, 24) + bytes(24)))
    write(s, 'raw-too-long', raw(hdr(DESTROY, 4200 - 16) + bytes(4200 - 16)))
    write(s, 'wrong-body-len', a + msg_len(DETACH, b'1234'))
    write(s, 'hdr-len-lies', a + msg_len(LIST, struct.pack('<II', 0, 8), hdr_len=0xffffffff))
    return s


# ---- fuzz_record_verify.c: records of our builder (xr_record_tool, from a
# build: XR_RECORD_TOOL=build/tests/xr_record_tool), and cut or bent copies.
def record_seeds():
    import subprocess
    import tempfile
    tool = os.environ.get('XR_RECORD_TOOL')
    if not tool:
        print('record_verify: set XR_RECORD_TOOL to build/tests/xr_record_tool', file=sys.stderr)
        return None
    variants = {
        'u8-4': [],
        'u8-9x8x8-mask-extras': ['--shape', '9x8x8', '--mask-len', '65', '--extras-len', '7',
                                 '--game', '3', '--player', '1', '--turn', '12', '--action', '5',
                                 '--reward', '1.5', '--done', '--applied', '4', '--applied-by', '1'],
        'f32-2x3': ['--dtype', 'f32', '--shape', '2x3', '--truncated', '--seq', '99'],
        'f64-scalar': ['--dtype', 'f64', '--shape', 'scalar'],
        'bool-8dims': ['--dtype', 'bool', '--shape', '1x2x1x2x1x2x1x2', '--mask-len', '1'],
        'i64-1': ['--dtype', 'i64', '--shape', '1', '--extras-len', '100'],
    }
    s = {}
    with tempfile.TemporaryDirectory() as d:
        for name, args in variants.items():
            out = os.path.join(d, name)
            subprocess.run([tool, 'encode', out] + args, check=True)
            s[name] = open(out, 'rb').read()
    base = s['u8-9x8x8-mask-extras']
    s['cut-half'] = base[:len(base) // 2]
    s['cut-header'] = base[:7]
    s['root-past-end'] = struct.pack('<I', len(base) + 8) + base[4:]
    s['wrong-identifier'] = base[:4] + b'XXXX' + base[8:]
    s['no-identifier'] = base[:4] + bytes(4) + base[8:]
    root = struct.unpack('<I', base[:4])[0]
    vt = root - struct.unpack('<i', base[root:root + 4])[0]
    s['vtable-huge'] = base[:vt] + struct.pack('<HH', 0xfffe, 0xfffe) + base[vt + 4:]
    s['empty'] = b''
    return s


# ---- fuzz_shm_peers.c
LEASE, POS, NEXT_SEQ, READ, DROPPED, WAKE_POS, WAKE_NEED = range(7)
ABS, HEAD, TAIL, OWN = range(4)


def cur(field, base, v, ring=0):
    return bytes([0, ring, field, base]) + u64(v)


def sleep_gen(v):
    return bytes([1]) + u32(v)


def slot(i, v):
    return bytes([2]) + struct.pack('<H', i) + u64(v)


def wait(n=7):
    return bytes([3, n])


def agent(how, d=0, a=0):
    return bytes([4, how, d & 0xff]) + struct.pack('<i', a)


def read(m):
    return bytes([5, m])


def scribble(seed):
    return bytes([6]) + u64(seed)


def shm_seeds():
    s = {}
    write(s, 'nothing', b'')
    write(s, 'lease-at-head', cur(LEASE, HEAD, 0) + wait())
    write(s, 'lease-in-window', cur(LEASE, HEAD, -4096) + wait() + wait())
    write(s, 'lease-ahead', cur(LEASE, HEAD, 4096) + wait())
    write(s, 'lease-far-behind', cur(LEASE, HEAD, -(1 << 30)) + wait())
    write(s, 'lease-zero', cur(LEASE, ABS, 0) + wait())
    write(s, 'lease-at-tail', cur(LEASE, TAIL, 0) + wait() + wait())
    write(s, 'lease-other-ring', cur(LEASE, HEAD, 0, ring=0x81) + wait())
    write(s, 'sleep-far-behind', cur(WAKE_POS, HEAD, -(1 << 20)) + cur(WAKE_NEED, ABS, 1000) +
          sleep_gen(12345) + wait(7) + wait(7))
    write(s, 'sleep-ahead', cur(WAKE_POS, HEAD, 1 << 20) + cur(WAKE_NEED, ABS, 0) +
          sleep_gen(1) + wait())
    write(s, 'sleep-need-huge', cur(WAKE_POS, HEAD, 0) + cur(WAKE_NEED, ABS, 0xffffffff) +
          sleep_gen(7) + wait())
    write(s, 'counters', cur(POS, HEAD, 0) + cur(NEXT_SEQ, ABS, 2**63) + cur(READ, OWN, -5) +
          cur(DROPPED, ABS, 2**64 - 1) + wait())
    write(s, 'read-hold', read(0x40 | 63) + read(0x40 | 63) + read(0x40 | 63) +
          read(0x40 | 63) + wait() + wait())
    write(s, 'read-hold-release', read(0x40 | 10) + wait() + read(0x80 | 0x40 | 10))
    write(s, 'read-then-lease-back', read(0x40 | 5) + cur(LEASE, OWN, -64) + wait())
    write(s, 'answers', agent(0, 0, 0) + wait() + agent(0, 0, -1) + wait() +
          agent(0, 0, 5000) + wait() + agent(0, 0, -2**31) + wait())
    write(s, 'answers-bent-tags', agent(1, -1, 0) + wait() + agent(1, 1, 0) + wait() +
          agent(1, 100, 3) + wait() + agent(1, -128, 7) + wait())
    write(s, 'answers-none', agent(2) + wait() + agent(3) + wait() + agent(0) + wait())
    write(s, 'slots-raw', slot(0, 2**64 - 1) + slot(1, (1 << 32) | 3) + slot(8, 0) +
          slot(9, 0x7fffffff00000001) + wait() + wait())
    write(s, 'scribble-reader', scribble(0x9e3779b97f4a7c14) + wait() + wait())
    write(s, 'scribble-agent', scribble(0x9e3779b97f4a7c17) + wait() + wait())
    write(s, 'reattach', read(0x40 | 8) + bytes([7]) + read(0x40 | 8) + wait())
    write(s, 'mixed', read(0x40 | 3) + agent(3) + cur(LEASE, HEAD, -1024) + sleep_gen(3) +
          cur(WAKE_POS, TAIL, 0) + slot(2, 5) + wait() + agent(1, 2, 1) + read(0x80) + wait())
    return s


# ---- fuzz_bridge_msg.c: a mode byte, then a bridge message (bridge/wire.h)
def bridge_msg(recs, flags=0, source=0x1234, inc=7, ring=1, prev=0, base=0):
    payload = b''
    for seq, rec in recs:
        payload += struct.pack('<QII', seq, len(rec), 0) + rec + b'\0' * (-len(rec) % 8)
    head = struct.pack('<IHHQQIIIIQ16sQQ', 0x31524258, 2, flags, source, inc, ring, len(recs),
                       len(payload), len(payload), 0, b'', prev, base)
    return head + payload  # the harness makes check (mode bit 0) and mac (bit 2) good


def bridge_seeds():
    s = {}
    one = [(5, bytes(range(40)))]
    many = [(100 + 3 * i, bytes([i]) * (1 + i * 7 % 90)) for i in range(12)]
    # max_rec 64 << 3 = 512 (mode bits 3-7 = 3)
    write(s, 'plain-one', bytes([1 | 3 << 3]) + bridge_msg(one))
    write(s, 'plain-many', bytes([1 | 3 << 3]) + bridge_msg(many))
    write(s, 'keyed-many', bytes([1 | 2 | 4 | 3 << 3]) + bridge_msg(many, flags=2))
    write(s, 'keyed-no-mac', bytes([1 | 2 | 3 << 3]) + bridge_msg(one))
    write(s, 'no-check', bytes([3 << 3]) + bridge_msg(one))
    write(s, 'zstd-flag', bytes([1 | 3 << 3]) + bridge_msg(one, flags=1))
    write(s, 'prev', bytes([1 | 3 << 3]) + bridge_msg(many, flags=4 | 8, prev=99, base=40))
    write(s, 'base-past-prev', bytes([1 | 3 << 3]) + bridge_msg(many, flags=4 | 8, prev=9,
                                                                 base=50))
    write(s, 'prev-past-first', bytes([1 | 3 << 3]) + bridge_msg(one, flags=4, prev=5))
    return s


def emit(harness, seeds):
    if seeds is None:
        return
    d = os.path.join(HERE, 'corpus', harness)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith('seed-'):
            os.unlink(os.path.join(d, f))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, 'seed-' + name), 'wb') as f:
            f.write(data)
    print(f'{harness}: {len(seeds)} seeds in {d}')


def main():
    want = sys.argv[1:]
    for harness, make in [('record_verify', record_seeds), ('arena_open', arena_seeds),
                          ('control', control_seeds), ('shm_peers', shm_seeds),
                          ('bridge_msg', bridge_seeds)]:
        if not want or harness in want:
            emit(harness, make())


if __name__ == '__main__':
    main()
