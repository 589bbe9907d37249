# SPDX-License-Identifier: MIT
"""Memory as DESIGN.md states it, checked against what the kernel says rather
than what xring says of itself: the backing in use (hugetlbfs or /dev/shm, the
page size) is the one `xring info` reports; ring sizes are rounded up to a
power of two and to the backing's pages; the arena's memory is bound to the
chosen NUMA node and the shard threads run on that node's CPUs; a ticking
shard sleeps on io_uring and keeps its ticks."""
import json
import os
import subprocess
import time

import pytest

from xrtest import XRING_BIN, wait_for


def info(e):
    out = subprocess.run([str(XRING_BIN), "info", e.name, "--json"], env=e.env,
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def stat(e):
    out = subprocess.run([str(XRING_BIN), "stat", e.name, "--json"], env=e.env,
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def mounts_of(fstype):
    with open("/proc/mounts") as f:
        return [line.split()[1] for line in f if line.split()[2] == fstype]


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def arena_maps(pid, path):
    """The engine's numa_maps lines of its arena: by name, or by the inode
    its unnamed file had when mapped ("#INODE (deleted)")."""
    ino = os.stat(path).st_ino
    lines = []
    with open(f"/proc/{pid}/numa_maps") as f:
        for line in f:
            file = next((w[5:] for w in line.split() if w.startswith("file=")), "")
            if file == path or file.startswith(os.path.dirname(path) + f"/#{ino}"):
                lines.append(line.split())
    return lines


def cpulist(text):
    cpus = set()
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def test_hugepages_off_is_base_pages_in_dev_shm(engines):
    e = engines("--hugepages", "off", games=4)
    i = info(e)
    assert i["backing"] == "shm" and i["page_size"] == os.sysconf("SC_PAGE_SIZE")
    assert os.path.dirname(i["path"]) == "/dev/shm"
    assert os.stat(i["path"]).st_size == i["size"]
    assert "off" in i["note"]


def test_hugepages_require_is_hugetlbfs(engines):
    mounts = mounts_of("hugetlbfs")
    if not mounts or meminfo("HugePages_Free") < 64:
        pytest.skip("no hugetlbfs mount with 64 free huge pages (scripts/hugepages.sh sets "
                    "them up as root)")
    e = engines("--hugepages", "require", games=4, ring_size="8M")
    i = info(e)
    assert i["backing"] == "hugetlbfs"
    assert i["page_size"] == meminfo("Hugepagesize") * 1024
    assert os.path.dirname(i["path"]) in mounts
    assert os.stat(i["path"]).st_size == i["size"] and i["size"] % i["page_size"] == 0
    # The kernel's view of the mapping: huge pages of that size.
    maps = arena_maps(e.proc.pid, i["path"])
    assert maps, "no mapping of the arena in the engine's numa_maps"
    assert all("huge" in m or f"kernelpagesize_kB={i['page_size'] // 1024}" in m
               for m in maps), maps


@pytest.mark.parametrize("asked,hp", [("3M", "off"), ("100K", "off"), ("5M", "prefer")])
def test_ring_sizes_are_rounded_up(engines, asked, hp):
    e = engines("--hugepages", hp, games=4, ring_size=asked)
    i = info(e)
    want = int(asked[:-1]) << (20 if asked[-1] == "M" else 10)
    for ring in i["streams"][0]["rings"]:
        cap = ring["capacity"]
        assert cap & (cap - 1) == 0, f"{cap} is not a power of two"
        assert cap % i["page_size"] == 0
        assert want <= cap < 2 * max(want, i["page_size"]), (asked, cap)


def test_memory_and_shards_on_the_numa_node(engines):
    nodes = sorted(int(d[4:]) for d in os.listdir("/sys/devices/system/node")
                   if d.startswith("node") and d[4:].isdigit())
    if not nodes:
        pytest.skip("no NUMA information in /sys")
    node = nodes[-1]
    e = engines("--numa-node", str(node), "--shards", "2", games=40)
    i = info(e)
    assert i["numa_node"] == node
    maps = arena_maps(e.proc.pid, i["path"])
    assert maps, "no mapping of the arena in the engine's numa_maps"
    # The whole file is mapped once under the binding and touched through
    # it at creation; the rings' second views map pages already placed.
    assert any(f"bind:{node}" in m for m in maps), maps
    pages = {w.split("=")[0]: int(w.split("=")[1]) for m in maps for w in m
             if w[:1] == "N" and w[1:].split("=")[0].isdigit()}
    assert pages and set(pages) == {f"N{node}"}, pages
    with open(f"/sys/devices/system/node/node{node}/cpulist") as f:
        node_cpus = cpulist(f.read())
    pinned = []
    for tid in os.listdir(f"/proc/{e.proc.pid}/task"):
        with open(f"/proc/{e.proc.pid}/task/{tid}/status") as f:
            allowed = next(cpulist(line.split(":")[1]) for line in f
                           if line.startswith("Cpus_allowed_list"))
        assert allowed <= node_cpus, (tid, allowed, node_cpus)
        if len(allowed) == 1:
            pinned.append(tid)
    assert len(pinned) >= min(2, len(node_cpus)), "the shard threads are not pinned"


@pytest.mark.solo
def test_a_ticking_shard_sleeps_on_io_uring(engines):
    e = engines("--tick-ms", "50", games=20)
    def uring():
        fds = []
        for fd in os.listdir(f"/proc/{e.proc.pid}/fd"):
            try:
                fds.append(os.readlink(f"/proc/{e.proc.pid}/fd/{fd}"))
            except FileNotFoundError:
                pass
        return "anon_inode:[io_uring]" in fds
    wait_for(uring, 5, "the ticking shard's io_uring")
    # Ticks kept: 10 of them at 50 ms, none played a tick late (a lax tick
    # on an idle shard).
    s0 = stat(e)["rings"][0]["shard"]
    wait_for(lambda: stat(e)["rings"][0]["shard"]["steps"] >= s0["steps"] + 10 * 20, 10,
             "10 ticks of 20 games")
    s1 = stat(e)["rings"][0]["shard"]
    # Late only under a load the machine cannot carry: one at most.
    assert s1["turns_late"] - s0["turns_late"] <= 1, (s0, s1)
    # Sleeping between ticks, not spinning: well under a CPU.
    t0, c0 = time.monotonic(), s1["cpu_ns"]
    time.sleep(1.5)                      # a measuring interval, not a synchronisation
    c1 = stat(e)["rings"][0]["shard"]["cpu_ns"]
    assert (c1 - c0) / 1e9 < 0.5 * (time.monotonic() - t0), (c0, c1)
