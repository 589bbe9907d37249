#!/usr/bin/env bash
# The protocol model (model/ring.pml; docs/protocol-model.md): spin checks
# each configuration of the protocol as the code has it, which must show no
# error, and each deliberately broken variant, which must show one: a model
# that stopped seeing a torn read, an overwritten lease, a lost wakeup or a
# wrong count would fail here.
# Usage: test_model.sh [ROOT] [extended] [NAME...]
#   extended: larger configurations too (minutes, a few GB); NAME...: only those
# Exit 77 (skipped) without spin or a C compiler.
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
shift || true
extended=
if [ "${1:-}" = extended ]; then extended=1; shift; fi
only=" $* "
model=$root/model/ring.pml
# pan.c only has to compile fast: clang -O0 does it in about half gcc's time.
cc=${CC:-$(command -v clang || echo cc)}
command -v spin >/dev/null || { echo "SKIP: spin is not installed (scripts/deps.sh)"; exit 77; }
command -v "$cc" >/dev/null || { echo "SKIP: no C compiler ($cc)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$model" "$work/ring.pml"
cd "$work" || exit 1
fails=0
start=$(date +%s)
memlim=1536	# MB; a search that needs more fails, rather than swap
[ -n "$extended" ] && memlim=6144

# run_check NAME good|bad MODE FLAGS...: one search, in the current
# directory; prints one line, and what went wrong; returns 1 on a failure.
#   MODE safety: assertions and invalid end states (deadlocks);
#   MODE ltl: the never claim no_lost_wakeup, acceptance cycles (pan -a).
run_check() {
	local name=$1 want=$2 mode=$3 out errs states t0 t1 fails=0
	shift 3
	t0=$(date +%s.%N)
	if ! out=$(spin -a "$@" ring.pml 2>&1); then
		echo "FAIL $name: spin -a $*"; printf '%s\n' "$out"; return 1
	fi
	local cflags=(-O0 -w -DMEMLIM=$memlim -DVECTORSZ=512) hash=-w23
	[ "$want" = bad ] && hash=-w20	# stops at the first error: a small table
	[ "$mode" = safety ] && cflags+=(-DSAFETY)
	[ -n "$extended" ] && cflags+=(-DCOLLAPSE)	# smaller states, a little slower
	if ! out=$("$cc" "${cflags[@]}" -o pan pan.c 2>&1); then
		echo "FAIL $name: $cc pan.c"; printf '%s\n' "$out"; return 1
	fi
	if [ "$mode" = ltl ]; then
		out=$(./pan -a -m1000000 $hash -N no_lost_wakeup 2>&1)
	else
		out=$(./pan -m1000000 $hash 2>&1)
	fi
	t1=$(date +%s.%N)
	errs=$(printf '%s\n' "$out" | sed -n 's/.*errors: \([0-9]*\).*/\1/p' | tail -1)
	states=$(printf '%s\n' "$out" | sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' | tail -1)
	local what
	what=$(printf '%s\n' "$out" | grep -m1 -E '^pan:[0-9]+:' | sed 's/^pan:[0-9]*: *//')
	printf '%-30s %-4s errors=%-2s states=%-9s %5.1fs %s\n' "$name" "$want" "${errs:-?}" \
		"${states:-?}" "$(awk "BEGIN { print $t1 - $t0 }")" "$what"
	if [ -z "$errs" ] || printf '%s\n' "$out" | grep -qE 'out of memory|MEMLIM|max search depth too small'; then
		echo "FAIL $name: the search did not complete"; printf '%s\n' "$out" | tail -20
		fails=$((fails + 1))
	elif [ "$want" = good ] && [ "$errs" != 0 ]; then
		echo "FAIL $name: spin found an error in the protocol as the code has it"
		printf '%s\n' "$out" | head -20
		spin -t -p "$@" ring.pml 2>&1 | tail -40
		fails=$((fails + 1))
	elif [ "$want" = bad ] && [ "$errs" = 0 ]; then
		echo "FAIL $name: the broken variant passed; the model no longer detects it"
		fails=$((fails + 1))
	fi
	return $((fails > 0))
}

# check NAME ARGS...: run_check in NAME's own directory, as one of $jobs
# searches at a time (each is one process: the CPUs are used by running
# them side by side). Their reports are printed in order at the end.
jobs=$(nproc 2>/dev/null || echo 1)
[ -n "$extended" ] && jobs=1	# each may take several GB
names=()
check() {
	local name=$1
	case $only in "  ") ;; *" $name "*) ;; *) return ;; esac
	names+=("$name")
	mkdir "$name" && cp ring.pml "$name/"
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
	( cd "$name" && run_check "$@" > ../"$name.out" 2>&1; echo $? > ../"$name.rc" ) &
}

# The protocol as the code has it: 0 errors each. Sizes are kept small for
# the suite (a few million states at most); `extended` adds larger ones.
ring=(-DCAP=2 -DNREC=4)
lossy=(-DLOSSY -DCAP=4 -DNREC=6)
wake=(-DWAKE -DNR=1 -DCAP=4 -DMINB=2)
blk=(-DWAKE -DNR=1 -DCAP=2 -DMINB=3 -DMAXB=3 -DNREC=3)
wlossy=(-DWAKE -DLOSSY -DNR=1 -DCAP=2 -DMINB=2 -DNREC=3)
check lossless_2readers      good safety "${ring[@]}" -DNR=2
check lossless_late_attach   good safety "${ring[@]}" -DNR=1 -DHELD=2 -DMINB=2 -DLATE_ATTACH
check lossy_on_lossless      good safety "${ring[@]}" -DNR=1 -DMIXED
check lossy_late_attach      good safety "${lossy[@]}" -DNR=1 -DLATE_ATTACH
check lossy_held             good safety "${lossy[@]}" -DNR=1 -DHELD=2 -DMINB=2 -DNREC=5
check wake_blocked           good safety "${blk[@]}"
check wake_batches           good safety "${wake[@]}" -DNREC=4 -DLATE_ATTACH
check wake_lossy             good safety "${wlossy[@]}" -DCHECK_EVICTED_WAKE
check wait_while_holding     good safety -DWAKE -DNR=1 -DCAP=2 -DNREC=3 -DHELD=2 -DWAIT_WHILE_HOLDING
check wake_ltl               good ltl    "${wake[@]}" -DNREC=4 -DNOCLOSE
if [ -n "$extended" ]; then
	check x_mixed_2readers   good safety -DCAP=2 -DNREC=3 -DNR=2 -DMIXED
	check x_lossy_2readers   good safety -DLOSSY -DCAP=2 -DNREC=3 -DNR=2
	check x_lossy_on_lossless_late good safety "${ring[@]}" -DNR=1 -DMIXED -DNREC=5 -DLATE_ATTACH
	check x_wake_blocked_4   good safety "${blk[@]}" -DNREC=4
	check x_wake_lossy_4     good safety "${wlossy[@]}" -DNREC=4
	check x_wake_2readers    good safety -DWAKE -DNR=2 -DCAP=2 -DMINB=2 -DNREC=2
	check x_wait_while_holding_4 good safety -DWAKE -DNR=1 -DCAP=2 -DNREC=4 -DHELD=2 -DWAIT_WHILE_HOLDING
fi

# Broken on purpose: spin must find each.
check broken_lease_order     bad safety "${lossy[@]}" -DNR=1 -DNREC=5 -DNO_TIMEOUT -DBROKEN_LEASE_ORDER
check broken_tail_after_scan bad safety "${lossy[@]}" -DNR=1 -DNREC=5 -DNO_TIMEOUT -DBROKEN_TAIL_AFTER_SCAN
check broken_no_ri2          bad safety "${lossy[@]}" -DNR=1 -DBROKEN_NO_RI2
check broken_no_pi2          bad safety "${lossy[@]}" -DNR=1 -DBROKEN_NO_PI2
check broken_evict_stale     bad safety -DLOSSY -DCAP=2 -DNREC=5 -DNR=1 -DBROKEN_EVICT_STALE
check broken_publish_early   bad safety "${ring[@]}" -DNR=1 -DBROKEN_PUBLISH_EARLY
check broken_no_seqlock      bad safety "${ring[@]}" -DNR=1 -DLATE_ATTACH -DBROKEN_NO_SEQLOCK
check broken_no_rs4          bad safety "${wake[@]}" -DNREC=4 -DBROKEN_NO_RS4
check broken_sleep_order     bad safety "${wake[@]}" -DNREC=4 -DBROKEN_SLEEP_ORDER
check broken_check_before_publish bad safety "${wake[@]}" -DNREC=4 -DBROKEN_CHECK_BEFORE_PUBLISH
check broken_memo            bad safety "${wake[@]}" -DNREC=4 -DBROKEN_MEMO
check broken_no_blocked      bad safety "${blk[@]}" -DBROKEN_NO_BLOCKED
check broken_no_rs4_ltl      bad ltl    "${wake[@]}" -DNREC=4 -DNOCLOSE -DBROKEN_NO_RS4

# What the model found in the C code (docs/protocol-model.md, Findings),
# fixed since; each fix removed must fail again. 1. An eviction's kick can
# miss a reader on its way to sleep unless RS4 loads the slot too. 2. A
# lossless reader that holds a batch, has read what follows it and waits
# with no deadline waits for good, and so does its writer, unless it is told
# -EDEADLK.
check broken_no_rs4_slot     bad safety "${wlossy[@]}" -DCHECK_EVICTED_WAKE -DBROKEN_NO_RS4_SLOT
check broken_no_edeadlk      bad safety -DWAKE -DNR=1 -DCAP=2 -DNREC=3 -DHELD=2 -DWAIT_WHILE_HOLDING -DBROKEN_NO_EDEADLK

wait
for name in "${names[@]}"; do
	cat "$name.out"
	[ "$(cat "$name.rc" 2>/dev/null)" = 0 ] || fails=$((fails + 1))
done
echo "model checks: $fails failed, $(($(date +%s) - start)) s, $jobs at a time"
[ "$fails" -eq 0 ]
