/*
 * A Promela model of xring's ring protocol: publication, leases, reclaim,
 * drops and eviction (shm/ring_writer.c, shm/ring_reader.c, shm/peers.c,
 * client/reader.c), and, with -DWAKE, the sleep/wake handshake (shm/wake.c,
 * client/reader.c go_to_sleep / sleep_until_woken). docs/protocol-model.md
 * says what is modelled, what is not, and how to run it; tests/test_model.sh
 * runs every configuration below and every broken variant.
 *
 * GRANULARITY. Each step the model takes is one access to shared memory, as
 * the C code makes it (one atomic load, store, CAS or exchange), with the
 * purely private work around it folded in. Comments name the C function and
 * the ordering label its comment uses (W1, R2, RS4, PI2, ...). Ghost
 * variables (prefix g, and rel[]) are the checker's, not the code's: they
 * record what the code cannot see, so that assertions can say what went
 * wrong.
 *
 * MEMORY MODEL. Promela interleaves steps in one order: sequential
 * consistency. That is exactly what the C code's seq_cst accesses give one
 * another (W1 with a wake table, W2, W3, W3a, R1, R2, RS2, RS4, WK2,
 * blocked), and the acquire/release pairs the code relies on (W1/R3,
 * W1c/R6, R4/W3, PI2/RI2) only ever pass data in the direction they order,
 * which an interleaving respects too. What a weaker order would allow is
 * modelled only where the code forbids it, in the broken variants: each
 * BROKEN_* flag below performs a reordering that the missing fence or the
 * weaker memory order would permit (a store moved after a later load, a
 * store made visible late), and the checker must find the failure it causes.
 *
 * ABSTRACTIONS. Positions count frames, not bytes: every frame has one size
 * (a ring with a record_len, as every Experience stream), so each position
 * is a frame boundary and the reader takes runs without walking
 * (take_fixed). The ring holds CAP frames (CAP <= 32: the writer then marks
 * every frame boundary, and make_room finds the first one at or past its
 * goal, as the model does). A frame's header (seq) and its record (the body)
 * are two stores, so a reader can meet a half-written frame. No filters,
 * one ring per stream, no watermarks (a pause is waited out by the same
 * loop as a full ring), no dishonest readers (their leases and sleep words
 * are what the honest code writes), no slot release (a dead reader), no
 * time: a lease timeout may run out at any look that finds a lossy reader
 * in the way.
 *
 * CONFIGURATION (-D flags to spin):
 *   LOSSY        the stream is lossy (default lossless)
 *   MIXED        on a lossless stream, the last reader is lossy (lossy readers may
 *                subscribe to a lossless stream; their leases time out)
 *   NO_TIMEOUT   lease timeout 0: nobody is evicted
 *   WAKE         readers sleep (sleep/wake handshake) instead of spinning
 *   LATE_ATTACH  readers attach at any point of the writer's run (else all
 *                attach before its first record: a smaller state space)
 *   NOCLOSE      the engine never closes: the run ends with sleepers asleep
 *                (for the LTL property, which the close would hide)
 *   CHECK_EVICTED_WAKE  an evicted reader asleep counts as a lost wakeup
 *                (docs/protocol-model.md, Findings 1; RS4 loads the slot)
 *   WAIT_WHILE_HOLDING  a reader holding a batch also waits with no
 *                deadline, rather than only look (Findings 2: its own lease
 *                can keep out what it waits for; it gets -EDEADLK then)
 *   NR CAP NREC MINB MAXB HELD   sizes, below
 */

#ifndef NR
#define NR 2          /* readers */
#endif
#ifndef CAP
#define CAP 2         /* ring capacity, frames (a power of two) */
#endif
#ifndef NREC
#define NREC 4        /* records the writer produces (written or dropped) */
#endif
#ifndef MINB
#define MINB 1        /* a read's min */
#endif
#ifndef MAXB
#define MAXB 2        /* a read's max */
#endif
#ifndef HELD
#define HELD 1        /* batches a reader holds at once */
#endif

/* A walk stops at half the ring's bytes (peek: rr->cap / 2), one frame at
 * least. */
#if CAP >= 4
#define MAXBYTES (CAP / 2)
#else
#define MAXBYTES 1
#endif

#define NONE 255
#define NO_LEASE 255  /* XR_NO_LEASE */

/* slot states (shm/peers.c) */
#define ACTIVE 2
#define EVICTED 3

/* reader policies */
#define P_LOSSLESS 0
#define P_LOSSY 1

/* eviction reasons */
#define EV_CURSOR 1
#define EV_LEASE 2

#ifdef LOSSY
#define STREAM_LOSSY 1
#else
#define STREAM_LOSSY 0
#endif

/* ---- shared memory ---------------------------------------------------- */

/* struct xr_ring_desc (arena header; readers map it read-only) */
byte head;          /* W1 */
byte written;       /* seqlock'd with head */
byte pub_gen;       /* seqlock: odd while (head, written) change */
byte tail;          /* W2 */
bit blocked;        /* xr__wake_blocked */
byte bneed;         /* blocked_need: where every lossless lease must be */
bit closed;         /* arena state != READY (A2, xr_arena_close) */

/* ring data: one slot per frame; the header's seq and the record */
byte fseq[CAP];
byte fbody[CAP];

/* each reader's page (its own, untrusted by the writer) */
byte lease[NR];     /* R1, R4; read by W3 */
#ifdef WAKE
byte sleep_gen[NR]; /* RS2, RS6; WK2 and its CAS */
byte wake_pos[NR];  /* RS1 hints */
byte wake_need[NR];
byte wakes[NR];     /* WAKE messages queued on the control connection */
bit hup[NR];        /* the engine hung up the connection */
#endif

/* the engine's private struct xr_peer.state, and the reader table's copy */
byte pstate[NR];
byte istate[NR];
byte rpol[NR];      /* the slot's policy (engine's record) */

/* ---- ghosts ------------------------------------------------------------ */
byte gpos[CAP];     /* the position whose frame a slot holds */
bit gbusy[CAP];     /* the writer is between header and record */
byte rel[NR];       /* lowest position reader r relies on (NONE: none) */
byte rpos[NR];      /* reader r's read position */
bit in_poll[NR];    /* reader r is in RS5 */
bit wdone;          /* the writer wrote its last record and published */
byte attached;      /* readers that have attached */
byte pi1_late;      /* BROKEN_NO_PI2: slot + 1 whose PI1 is still unseen */

/* A reader asleep although what it waits for is there: a lost wakeup. Its
 * batch is there when MINB frames are past its position (it sleeps only
 * on a walk that found fewer, all it could see). With CHECK_EVICTED_WAKE,
 * an evicted reader asleep is one too: xr__peer_evict kicks it "so that a
 * sleeping reader learns it at once"; the C code does not keep that
 * promise (docs/protocol-model.md, Findings). */
#define batch_there(r) (head - rpos[r] >= MINB || (blocked && head != rpos[r]))
#ifdef CHECK_EVICTED_WAKE
#define lost_wakeup(r) (in_poll[r] && (batch_there(r) || istate[r] != ACTIVE))
#else
#define lost_wakeup(r) (in_poll[r] && batch_there(r))
#endif

#if defined(WAKE) && defined(NOCLOSE)
/* Checked with pan -a: a reader asleep while its batch is there is woken
 * (with a terminal state stuttering forever, a lost wakeup is a reader
 * that stays asleep). */
ltl no_lost_wakeup { [] ((in_poll[0] && (head - rpos[0] >= MINB)) -> <> !in_poll[0]) }
#endif

/* ---- the writer (shm/ring_writer.c, shm/wake.c, shm/peers.c) ---------- */

/* Property: the frame the writer is about to overwrite (position p - CAP)
 * is relied on by no reader it has not evicted: no overwrite of a leased
 * record (invariant 3) and, lossless, of an unread one (invariant 4). */
inline overwrite_check(p)
{
	if
	:: p >= CAP ->
		j = 0;
		do
		:: j < NR ->
			assert(pstate[j] != ACTIVE || rel[j] == NONE || p - CAP < rel[j]);
			j++
		:: else -> break
		od
	:: else
	fi
}

#ifdef WAKE
/* shm/wake.c:xr__wake_kick: WS2 (live, always), load_sc(sleep_gen); if
 * asleep, CAS it to 0 and, if won, send a WAKE (MSG_DONTWAIT: a full queue
 * is readable already, so a send that does not fit is dropped). */
inline kick(b)
{
	atomic { g = sleep_gen[b] };
	if
	:: g != 0 ->
		atomic {
			if
			:: sleep_gen[b] == g -> sleep_gen[b] = 0; won = 1
			:: else -> won = 0
			fi
		};
		if
		:: won -> atomic { if :: wakes[b] < 2 -> wakes[b]++ :: else fi }
		:: else
		fi
	:: else
	fi
}

/* shm/wake.c:batch_ready, for a reader without a filter (counts frames). */
inline batch_ready(b)
{
	if
	:: mpos[b] == published || mneed[b] == 0 -> ready = (mneed[b] == 0)
	:: else ->
		mneed[b] = (pub_frames >= mneed[b] -> 0 : mneed[b] - pub_frames);
		mpos[b] = published;
		ready = (mneed[b] == 0)
	fi
}

/* shm/wake.c:xr__wake_check, after each publish. */
inline wake_check()
{
	k = 0;
	do
	:: k < NR ->
		/* WK2: pairs with RS2. */
		atomic { g = sleep_gen[k] };
		if
		:: g != 0 ->
			if
			:: mgen[k] != g ->
				atomic { at = wake_pos[k] };	/* relaxed, after WK2 */
				atomic { mneed[k] = wake_need[k] };
				mgen[k] = g;
				if :: mneed[k] == 0 -> mneed[k] = 1 :: else fi;
#ifndef BROKEN_MEMO
				/* counted from the head it says if it is this
				 * publish's; else from the previous publish */
				mpos[k] = (at == published -> at : prev_published);
#else
				/* broken: counted from this publish's head */
				mpos[k] = published;
#endif
			:: else
			fi;
			batch_ready(k);
			if
			:: ready ->
				atomic {
					if
					:: sleep_gen[k] == g -> sleep_gen[k] = 0; won = 1
					:: else -> won = 0
					fi
				};
				if
				:: won -> atomic { if :: wakes[k] < 2 -> wakes[k]++ :: else fi }
				:: else
				fi
			:: else
			fi
		:: else
		fi;
		k++
	:: else -> break
	od
}
#endif

/* shm/ring_writer.c:xr_writer_publish. */
inline publish()
{
	if
	:: whead == published && wseq == seq_published -> skip
	:: else ->
#ifdef BROKEN_CHECK_BEFORE_PUBLISH
		/* broken: the sleepers looked at before head is stored */
		prev_published = published; published = whead;
		pub_frames = frames - frames_published; frames_published = frames;
		wake_check();
#endif
#ifdef LATE_ATTACH
		/* store_relaxed(pub_gen, g + 1); fence_release */
		atomic { pub_gen++ };
		/* W1: store_sc (wake table) or store_release; pairs with R3 */
		atomic { head = whead };
		/* store_release(written) */
		atomic { written = wseq };
		/* W1c: closes the seqlock; pairs with R6 */
		atomic { pub_gen++ };
#else
		/* The same four stores, in one step: with every reader
		 * attached before the first record, nobody loads pub_gen or
		 * written while the writer runs (R6 is at attach, and the
		 * final count after the close), so only W1 is seen. */
		atomic { pub_gen++; head = whead; written = wseq; pub_gen++ };
#endif
		seq_published = wseq;
#ifndef BROKEN_CHECK_BEFORE_PUBLISH
		prev_published = published; published = whead;
		pub_frames = frames - frames_published; frames_published = frames;
#ifdef WAKE
		wake_check();
#endif
#endif
	fi
}

/* shm/peers.c:xr__peer_evict. */
inline evict_slot(b, reason)
{
	/* the only evictions an honest reader can get are its lease
	 * timing out; a lease ahead of head or behind by more than a ring
	 * (a stale one, see UNTRUSTED LEASES) never evicts it */
	assert(reason != EV_CURSOR);
	/* PS3: CAS(state, ACTIVE -> EVICTED) */
	atomic {
		if
		:: pstate[b] == ACTIVE -> pstate[b] = EVICTED; won = 1
		:: else -> won = 0
		fi
	};
	if
	:: won ->
#ifndef BROKEN_NO_PI2
		/* PI1: store_sc(info.state, EVICTED); PI2: fence_release,
		 * before any later store into the ring */
		atomic { istate[b] = EVICTED };
#else
		/* broken: no PI2 fence. The reader table's store may become
		 * visible after the writer's next store into the ring. */
		pi1_late = b + 1;
#endif
#ifdef WAKE
		kick(b);
#endif
	:: else
	fi
}

/* shm/ring_writer.c:check_stall: a look that found the writer stopped by
 * slot b. A lossy reader's lease times out at some look (time is not
 * modelled: at any look); a lossless reader's never. */
inline check_stall(b)
{
	if
	:: rpol[b] == P_LOSSY ->
		if
#ifndef NO_TIMEOUT
		:: true -> evict_slot(b, EV_LEASE)
#endif
		:: true -> skip
		fi
	:: else
	fi
}

/* shm/ring_writer.c:scan_leases(w, evict = true). */
inline scan_leases()
{
	worst = 0; blocker = NONE; i = 0;
	do
	:: i < NR ->
		/* W3a: load_sc(peer.state) == ACTIVE; pairs with PS1. Only
		 * this writer changes a slot's state here (no release is
		 * modelled), so the load is folded into the step of W3:
		 * load_sc(lease); pairs with R1 */
		atomic {
			st = pstate[i]; ss[i] = st;
			if :: st == ACTIVE -> L = lease[i]; sl[i] = L :: else fi
		};
		if
		:: st == ACTIVE ->
			if
			:: L == NO_LEASE -> skip
			:: L != NO_LEASE && L > whead ->
				evict_slot(i, EV_CURSOR)
			:: L != NO_LEASE && L <= whead && whead - L > CAP ->
#ifdef BROKEN_EVICT_STALE
				/* broken: a stale lease taken for garbage */
				evict_slot(i, EV_CURSOR);
#endif
				skip	/* stale: ignored */
			:: L != NO_LEASE && L <= whead && whead - L <= CAP ->
				if
				:: whead - L > worst -> worst = whead - L; blocker = i
				:: else
				fi
			fi
		:: else
		fi;
		i++
	:: else -> break
	od
}

/* shm/ring_writer.c:make_room, for a frame of one position. Sets room. */
inline make_room()
{
	need = whead + 1 - CAP;		/* tail must reach this */
	/* readers must be able to consume what is committed */
	publish();
	goal = need; t = wtail;
	/* at least a chunk (cap/8 bytes: CAP/8 frames) past the old tail,
	 * never past head; then the first frame boundary at or past goal */
	if
	:: 8 * (whead - t) > CAP && goal >= t && 8 * (goal - t) < CAP -> goal = t + (CAP + 7) / 8
	:: else
	fi;
	if :: goal > t -> t = goal :: else fi;
#ifndef BROKEN_TAIL_AFTER_SCAN
	/* W2: store_sc(tail); pairs with R2 */
	if :: t != wtail -> atomic { tail = t; wtail = t } :: else fi;
	scan_leases();
#else
	/* broken: the leases scanned before the tail is moved */
	scan_leases();
	if :: t != wtail -> atomic { tail = t; wtail = t } :: else fi;
#endif
	flr = whead - worst;
	if :: wtail < flr -> flr = wtail :: else fi;
	limit = flr + CAP;
	if
	:: whead + 1 <= limit -> room = 1
	:: else ->
		room = 0;
		if :: blocker != NONE -> check_stall(blocker) :: else fi;
#ifndef NO_TIMEOUT
		/* a lossy lease in the way times out with time alone */
		stall_lossy = (blocker != NONE && rpol[blocker] == P_LOSSY && pstate[blocker] == ACTIVE)
#endif
	fi;
	/* dead from here: reset, so that equal states are seen as equal */
	d_step { i = 0; st = 0; L = 0; worst = 0; blocker = 0; t = 0; goal = 0; need = 0; flr = 0; g = 0; won = 0 }
}

/* What the writer's scan depends on has changed: its polling wait
 * (xr_writer_wait's backoff and may_go_on) would find something new. A
 * scan that sees what the last one saw decides the same, so waiting for a
 * change is the same as polling; but for a lossy lease in the way, whose
 * timeout may run out at any later look (stall_lossy). */
#if NR == 1
#define changed() (pstate[0] != ss[0] || (ss[0] == ACTIVE && lease[0] != sl[0]))
#else
#define changed() (pstate[0] != ss[0] || (ss[0] == ACTIVE && lease[0] != sl[0]) || \
		   pstate[1] != ss[1] || (ss[1] == ACTIVE && lease[1] != sl[1]))
#endif

/* shm/ring_writer.c:xr_writer_wait (lossless): publish, may_go_on, else
 * a stop: blocked = 1 and the sleepers kicked (xr__wake_blocked), then
 * wait until may_go_on, and blocked = 0 (end_stop). */
inline writer_wait()
{
	publish();
	room = 1;
	if :: whead + 1 > limit -> make_room() :: else fi;
	if
	:: !room ->
#ifndef BROKEN_NO_BLOCKED
		/* xr_writer_wait: store_relaxed(blocked_need) (the room
		 * make_room looks for); xr__wake_blocked(w, true):
		 * store_sc(blocked, 1), which publishes it */
		atomic { bneed = whead + 1 - CAP; blocked = 1 };
#ifdef WAKE
		/* then load_sc every sleep_gen, waking the sleepers */
		k = 0;
		do :: k < NR -> kick(k); k++ :: else -> break od;
#endif
#endif
		do
		:: changed() || stall_lossy ->
			stall_lossy = 0;
			make_room();
			if :: room -> break :: else fi
		od;
		/* end_stop: xr__wake_blocked(w, false) */
		atomic { blocked = 0 }
	:: else
	fi
}

proctype writer()
{
	byte whead, wseq, wtail, limit = CAP;
	byte published, seq_published, prev_published;
	byte frames, frames_published, pub_frames;
	byte n, i, j, k, st, L, worst, blocker, t, goal, need, flr, g, at;
	byte ss[NR], sl[NR];
	bit room, won, ready, stall_lossy;
#ifdef WAKE
	byte mgen[NR], mneed[NR], mpos[NR];	/* struct xr_wake_memo */
#endif

#ifndef LATE_ATTACH
	/* readers attach before the first record (LATE_ATTACH: any time) */
	(attached == NR);
#endif
	do
	:: n < NREC ->
		/* xr_writer_reserve */
		room = 1;
		if :: whead + 1 > limit -> make_room() :: else fi;
		if
		:: room ->
			/* the frame header in ring space (reserve) */
			atomic {
				overwrite_check(whead);
				fseq[whead % CAP] = wseq;
				gbusy[whead % CAP] = 1;
				gpos[whead % CAP] = whead
			};
#ifdef BROKEN_NO_PI2
			if
			:: pi1_late -> atomic { istate[pi1_late - 1] = EVICTED; pi1_late = 0 }
			:: else
			fi;
#endif
#ifndef BROKEN_PUBLISH_EARLY
			/* the caller writes the record in place */
			atomic { fbody[whead % CAP] = wseq; gbusy[whead % CAP] = 0 };
			/* xr_writer_commit: private */
			whead++; wseq++; frames++; n++
#else
			/* broken: head made visible before the record's bytes
			 * (a W1 that orders nothing before it) */
			whead++; wseq++; frames++; n++;
			publish();
			atomic { fbody[(whead - 1) % CAP] = wseq - 1; gbusy[(whead - 1) % CAP] = 0 }
#endif
		:: !room && STREAM_LOSSY ->
			/* XR_EDROPPED: the seq is consumed, no frame */
			wseq++; n++
		:: !room && !STREAM_LOSSY ->
			/* -EAGAIN: the caller waits, then tries again */
			writer_wait()
		fi;
		/* the engine publishes every so many records, or at the end
		 * of a round: at any point */
		if
		:: true -> publish()
		:: true -> skip
		fi
	:: else -> break
	od;
	publish();
#ifdef BROKEN_NO_PI2
	if :: pi1_late -> atomic { istate[pi1_late - 1] = EVICTED; pi1_late = 0 } :: else fi;
#endif
	wdone = 1;
#ifndef NOCLOSE
	/* Nothing in the system can move any more (Promela's timeout):
	 * no reader may be asleep with its batch there. (With NOCLOSE the
	 * LTL property no_lost_wakeup says it instead.) */
	timeout;
	k = 0;
	do
	:: k < NR -> assert(!lost_wakeup(k)); k++
	:: else -> break
	od;
	/* xr_arena_close: A2 store_release(state, CLOSED), then every
	 * sleeper kicked; the server hangs up the connections */
	closed = 1;
#ifdef WAKE
	k = 0;
	do :: k < NR -> kick(k); hup[k] = 1; k++ :: else -> break od
#endif
#endif
}

/* ---- a reader (shm/ring_reader.c, client/reader.c) --------------------- */

/* shm/ring_reader.c:restart_at: where a lapped reader starts again, t
 * being the tail it saw: halfway from tail to head for a lossy reader of a
 * ring of one frame size (a read: ahead), else at tail. The new position
 * is folded into the step of the load it follows. */
inline restart(ahead)
{
	if
	:: ahead && !lossless ->
		/* R3-like: load_acquire(head) */
		atomic {
			h2 = head;
			rpos[r] = (h2 > t -> t + (h2 - t) / 2 : t)
		}
	:: else
	fi
}
#define LAPPED_TO_TAIL(ahead) if :: t > rpos[r] && !(ahead && !lossless) -> rpos[r] = t :: else fi

/* shm/ring_reader.c:lease_at_pos. */
inline lease_at_pos(ahead)
{
	/* catch up first: load_acquire(tail) */
	atomic { t = tail; LAPPED_TO_TAIL(ahead) };
	if :: t > rpos[r] -> restart(ahead) :: else fi;
	do
	:: true ->
#ifndef BROKEN_LEASE_ORDER
		/* R1: store_sc(lease, pos); pairs with W3 */
		atomic { lease[r] = rpos[r] };
		/* R2: load_sc(tail); pairs with W2. tail <= pos: the lease
		 * holds, and the reader relies on it from here */
		atomic {
			t = tail;
			ok = (t <= rpos[r]);
			if :: ok -> rel[r] = rpos[r] :: else -> LAPPED_TO_TAIL(ahead) fi
		};
#else
		/* broken: R1 and R2 not seq_cst (a release store, an acquire
		 * load): the load may be done before the store is seen */
		atomic { t = tail };
		atomic {
			lease[r] = rpos[r];
			ok = (t <= rpos[r]);
			if :: ok -> rel[r] = rpos[r] :: else -> LAPPED_TO_TAIL(ahead) fi
		};
#endif
		if
		:: ok -> break
		:: else -> restart(ahead)	/* overrun: the seq gap counts it */
		fi
	od;
	rlease = rpos[r]
}

/* shm/ring_reader.c:snapshot (R6): (head, written) as one pair. */
inline snapshot()
{
	do
	:: true ->
		/* load_acquire(pub_gen); odd: spin (a guard here) */
		atomic { (pub_gen % 2 == 0) -> g1 = pub_gen };
#ifndef BROKEN_NO_SEQLOCK
		atomic { rpos[r] = head };
		atomic { start_seq = written };
		/* fence_acquire; load_relaxed(pub_gen) */
		atomic { g2 = pub_gen };
		if :: g1 == g2 -> break :: else fi
#else
		/* broken: the pair read without the seqlock */
		atomic { rpos[r] = head };
		atomic { start_seq = written };
		break
#endif
	od
}

/* shm/ring_reader.c:xr__rr_unpeek: a lossy reader holding nothing holds no
 * lease. */
inline unpeek()
{
	if
	:: !lossless && nheld == 0 && rlease != NO_LEASE ->
		/* R4 */
		atomic { lease[r] = NO_LEASE; rel[r] = NONE };
		rlease = NO_LEASE
	:: else
	fi
}

/* A header load of a walk; stale records whether it read a frame that is
 * not the one at its position, or one half written. */
inline load_seq(p, s)
{
	atomic {
		s = fseq[(p) % CAP];
		stale = stale || gpos[(p) % CAP] != (p) || gbusy[(p) % CAP]
	}
}

/* shm/ring_reader.c:xr__rr_peek (walk -> take_fixed, no filter), then
 * client/reader.c:walked (RI2). Sets n, gaps, tnext, tfull; an eviction
 * found goes to `evicted`. */
inline peek()
{
	if :: rlease == NO_LEASE -> lease_at_pos(1) :: else fi;
	/* R3: load_acquire(head); pairs with W1 */
	atomic { h = head; n = 0; gaps = 0; tfull = 0; eproto = 0; stale = 0; tnext = next_seq };
	if
	:: h - rpos[r] > CAP -> eproto = 1	/* the head more than a ring ahead */
	:: else ->
		avail = h - rpos[r];
		n = (avail > MAXB -> MAXB : avail);
		if :: n > 1 && n > MAXBYTES -> n = MAXBYTES :: else fi;
		if
		:: n > 0 ->
			load_seq(rpos[r], s0);		/* first->seq */
			if	/* last->seq; for one frame, the same load */
			:: n > 1 -> load_seq(rpos[r] + n - 1, s1)
			:: else -> s1 = s0
			fi;
			if
			:: s0 < next_seq -> eproto = 1
			:: s0 >= next_seq && (s1 < s0 || s1 - s0 < n - 1) -> eproto = 1
			:: else ->
				gaps = (s0 - next_seq) + (s1 - s0 - (n - 1));
				tnext = s1 + 1;
				tfull = (n < avail)
			fi
		:: else
		fi
	fi;
#ifndef BROKEN_NO_RI2
	/* RI2: fence_acquire, then RI1 load_acquire(info.state); pairs
	 * with PI2. An evicted slot: XR_EEVICTED, whatever the walk found. */
	atomic { st = istate[r] };
	if
	:: st != ACTIVE -> unpeek(); goto evicted
	:: else
	fi;
#endif
	/* A walk believed: a slot that was ours after it read no frame the
	 * writer was overwriting, and an honest ring is never malformed
	 * behind a lease the writer honours (no -EPROTO). */
	assert(!stale);
	assert(!eproto)
}

/* A scan's temporaries are dead after it: reset, so that equal states are
 * seen as equal (folded into the step they follow). */
#ifdef WAKE
#define FORGET_WAKE ; sc_end = 0; sc_head = 0; sc_count = 0; cancel = 0
#else
#define FORGET_WAKE
#endif
#define FORGET h = 0; n = 0; gaps = 0; tnext = 0; s0 = 0; s1 = 0; avail = 0; \
	tfull = 0; st = 0; bl = 0; t = 0; h2 = 0; ok = 0 FORGET_WAKE

/* client/reader.c:take + shm/ring_reader.c:xr__rr_commit (private), and
 * the caller reading the records of the batch in place, each checked whole:
 * no torn read. One step: a frame overwritten later, while the batch is
 * held, is caught by the writer's overwrite_check. */
inline take()
{
	atomic {
		ndropped = ndropped + gaps;
		nread = nread + n;
		next_seq = tnext;
		b = 0;
		do :: hn[b] != 0 -> b++ :: else -> break od;	/* free_held */
		hstart[b] = rpos[r]; hn[b] = n; nheld++;
		rpos[r] = rpos[r] + n;
		q = hstart[b];
		do
		:: q < hstart[b] + n ->
			assert(pstate[r] == EVICTED ||
			       (gpos[q % CAP] == q && !gbusy[q % CAP]));
			s = fbody[q % CAP];
			if
			:: pstate[r] != EVICTED ->
				/* each record once, in order, none from
				 * before the attach */
				assert(s >= gnext); gnext = s + 1; gread++
			:: else
			fi;
			q++
		:: else -> break
		od;
		q = 0; s = 0;
		FORGET; nowait = 0; cl = 0	/* the read returns */
	}
}

/* client/reader.c:oldest_held, into v (private). */
#define OLDEST_HELD \
	d_step { \
		v = NO_LEASE; b = 0; \
		do \
		:: b < HELD -> \
			if :: hn[b] != 0 && (v == NO_LEASE || hstart[b] < v) -> v = hstart[b] \
			:: else fi; \
			b++ \
		:: else -> break \
		od; \
		b = 0 \
	}

/* client/reader.c:xr_batch_release -> shm/ring_reader.c:xr__rr_set_lease
 * (oldest_held). */
inline release()
{
	if
	:: hn[0] != 0 -> b = 0
	:: HELD > 1 && hn[HELD - 1] != 0 -> b = HELD - 1
	fi;
	hn[b] = 0; nheld--;
	v = NO_LEASE;
	b = 0;
	do
	:: b < HELD ->
		if :: hn[b] != 0 && (v == NO_LEASE || hstart[b] < v) -> v = hstart[b] :: else fi;
		b++
	:: else -> break
	od;
	if :: v == NO_LEASE && lossless -> v = rpos[r] :: else fi;
	/* R4: store_release(lease); the writer's W3 is an acquire */
	atomic { lease[r] = v; rel[r] = (v == NO_LEASE -> NONE : v) };
	rlease = v
}

#ifdef WAKE
/* client/reader.c:go_to_sleep and sleep_until_woken (RS0-RS6). */
inline sleep_until_woken()
{
	/* RS0: drain the control socket of WAKEs */
	atomic { wakes[r] = 0 };
	/* RS1: the hints, relaxed */
	atomic { wake_pos[r] = sc_end };
	atomic { wake_need[r] = MINB - sc_count };
	gen++;
	if :: gen == 0 -> gen = 1 :: else fi;
	cancel = 0;
#ifndef BROKEN_SLEEP_ORDER
	/* RS2: store_sc(sleep_gen, g); pairs with W1, WK2 */
	atomic { sleep_gen[r] = gen };
#endif
#ifndef BROKEN_NO_RS4
	/* RS4: load_sc(head) moved since the walk, or load_sc(blocked)
	 * with records in hand: cancel */
	atomic { cancel = (head != sc_head) };
	if
	:: !cancel && sc_count > 0 -> atomic { cancel = blocked }
	:: else
	fi;
#endif
#ifndef BROKEN_NO_RS4_SLOT
	/* RS4s: load_sc(info.state): evicted, cancel (the evicting
	 * writer's PI1 is seq_cst, before its kick) */
	if :: !cancel -> atomic { cancel = (istate[r] != ACTIVE) } :: else fi;
#endif
#ifndef BROKEN_NO_EDEADLK
	/* waits_on_itself (sleeps here have no deadline): load_sc(blocked),
	 * and blocked_need, against the oldest held batch */
	if
	:: !cancel && lossless && nheld > 0 ->
		OLDEST_HELD;
		atomic { cancel = (blocked && v < bneed) };
		v = 0
	:: else
	fi;
#endif
#ifdef BROKEN_SLEEP_ORDER
	/* broken: RS2 a release store, RS4 acquire loads: the loads may be
	 * done before the store is seen (store buffering) */
	atomic { sleep_gen[r] = gen };
#endif
	if
	:: cancel -> atomic { sleep_gen[r] = 0 }	/* exchange(sleep_gen, 0) */
	:: else ->
		/* RS5: ppoll(control socket), no timeout */
		in_poll[r] = 1;
end_poll:	atomic { (wakes[r] > 0 || hup[r]) -> in_poll[r] = 0; gone = gone || hup[r] };
		/* RS6: exchange(sleep_gen, 0) */
		atomic { sleep_gen[r] = 0 }
	fi
}
#endif

#ifdef LATE_ATTACH
#define ATTACH_BEGIN skip;
#define ATTACH_END skip
#else
#define ATTACH_BEGIN atomic {
#define ATTACH_END }
#endif

proctype reader(byte r)
{
	byte start_seq, next_seq, rlease = NO_LEASE, t, h, h2, g1, g2, st;
	byte n, avail, s0, s1, gaps, tnext, q, s, b, v, at, wr;
	byte nread, ndropped, gread, gnext;
	byte hstart[HELD], hn[HELD], nheld;
	bit lossless, tfull, eproto, stale, cl, bl, gone, ok, nowait, dl;
#ifdef WAKE
	byte sc_end, sc_head, sc_count, gen;
	bit cancel;
#endif

	lossless = (rpol[r] == P_LOSSLESS);

	/* shm/ring_reader.c:xr__rr_start. Before the writer starts (no
	 * LATE_ATTACH), readers attach one at a time: each touches only its
	 * own page and reads what nobody changes yet, so the order of their
	 * steps does not matter and one step each says the same. */
attach:
	ATTACH_BEGIN
	snapshot();
	next_seq = start_seq; gnext = start_seq;
	if
	:: lossless ->
		at = rpos[r];
		lease_at_pos(1);
		/* lapped between the snapshot and the lease: attach again,
		 * unless the head (load_acquire) is behind the tail R2 saw:
		 * -EPROTO, which no honest writer causes (W1 before W2) */
		if
		:: rpos[r] != at ->
			atomic { assert(head >= rpos[r]); rel[r] = NONE };
			goto attach
		:: else
		fi
	:: else
	fi;
	attached++
ATTACH_END;
	do
	:: nheld > 0 -> release()
	:: nheld < HELD ->
		/* client/reader.c:read_or_wait(min MINB, max MAXB, max_wait):
		 * holding nothing it waits for as long as it takes
		 * (max_wait < 0); holding a batch it only looks (max_wait 0),
		 * or, with WAIT_WHILE_HOLDING, waits too: then a wait on its
		 * own batch is -EDEADLK (waits_on_itself) */
		/* check_slot: RI1 load_acquire(info.state); and, each pass,
		 * closed: the engine gone or the arena not READY (A2). Two
		 * loads of what only the writer stores, in one step. */
#ifndef WAIT_WHILE_HOLDING
		atomic { nowait = (nheld > 0); st = istate[r]; cl = closed || gone };
#else
		atomic { st = istate[r]; cl = closed || gone };
#endif
		if :: st != ACTIVE -> goto evicted :: else -> st = 0 fi;
		do
		:: true ->
			peek();
			if
			:: n > 0 && n < MINB && !cl && !tfull ->
				atomic { bl = blocked }	/* load_acquire */
			:: else
			fi;
			if
			:: n >= MINB || (n > 0 && (cl || tfull || bl)) ->
				take(); break
			:: else ->
#ifdef WAKE
				sc_end = rpos[r] + n; sc_head = h; sc_count = n;
#endif
				unpeek();
				if
				:: nowait && n > 0 ->
					/* expired with some: that ring again */
					d_step { FORGET };
					peek();
					assert(n > 0);
					take(); break
				:: else
				fi;
				if :: cl -> goto closed_end :: else fi;
				if	/* 0 */
				:: nowait -> d_step { FORGET; nowait = 0; cl = 0 }; break
				:: else
				fi;
#ifndef BROKEN_NO_EDEADLK
				/* waits_on_itself: -EDEADLK, and the caller
				 * (here) goes on, releasing or reading again */
				dl = 0;
				if
				:: lossless && nheld > 0 ->
					OLDEST_HELD;
					atomic { dl = (blocked && v < bneed) };
					v = 0
				:: else
				fi;
				if :: dl -> d_step { FORGET; dl = 0; cl = 0 }; break :: else fi;
#endif
#ifdef WAKE
				sleep_until_woken()
#else
				/* XR_WAIT_SPIN: scans again; one that would see
				 * what this one saw is skipped */
				atomic { (head != h || closed || istate[r] != ACTIVE ||
					  (n > 0 && blocked)) }
#endif
			fi;
			/* the next pass loads closed again */
			atomic { FORGET; cl = closed || gone }
		od
	od;

closed_end:
	/* XR_ECLOSED: everything published has been read. Accounting is
	 * exact (invariant 6): written == read + dropped + unseen drops,
	 * each record read once and whole, the drops exactly the others. */
	atomic { wr = written };
	assert(nread + ndropped + (wr - next_seq) == wr - start_seq);
	assert(gread == nread && gnext == next_seq);
	if
	:: lossless -> assert(ndropped == 0 && next_seq == wr)
	:: else
	fi;
	do
	:: nheld > 0 -> release()
	:: else -> break
	od;
evicted:
	skip
}

init
{
	byte r;

	atomic {
		r = 0;
		do
		:: r < NR ->
			pstate[r] = ACTIVE;	/* PS1 */
			istate[r] = ACTIVE;	/* PI1 */
			lease[r] = NO_LEASE;	/* new_page */
			rel[r] = NONE;
#if defined(LOSSY)
			rpol[r] = P_LOSSY;
#elif defined(MIXED)
			rpol[r] = (r == NR - 1 -> P_LOSSY : P_LOSSLESS);
#else
			rpol[r] = P_LOSSLESS;
#endif
			r++
		:: else -> break
		od;
		r = 0;
		do
		:: r < CAP -> gpos[r] = NONE; r++
		:: else -> break
		od;
		run writer();
		r = 0;
		do
		:: r < NR -> run reader(r); r++
		:: else -> break
		od
	}
}
