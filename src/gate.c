/*-------------------------------------------------------------------------
 *
 * gate.c
 *		The gate: what keeps the global log exact while appends to different
 *		streams run in parallel.
 *
 * THE PROBLEM
 *
 * Global positions come from a sequence when an event is inserted, but an
 * event becomes visible when its transaction commits.  A slow transaction can
 * take position 100 and a fast one 101, and the fast one can commit first.  A
 * reader that returned 101 and saved "after 101" as its checkpoint would skip
 * 100 forever.  Worse, between taking position 100 (nextval) and inserting
 * the row there is a moment when 100 is taken but no tuple exists at all, not
 * even an uncommitted one, so "100 is absent" proves nothing by itself.
 *
 * THE LOCKING PROTOCOL
 *
 * The gate is a relation lock on a relation that nothing else ever locks: the
 * relation of the composite type event_store.event.
 *
 * Writers.  Every call of an append function, for the first event it
 * inserts, takes the gate in RowExclusiveLock just before it takes that
 * event's position, and releases it (LockRelease, before the transaction
 * ends) as soon as the event's heap tuple and all its index entries are in.
 * That stretch is the call's window.  The call's other events are inserted
 * after the window, without the gate.  If the call fails inside the window,
 * the (sub)transaction's abort releases the gate.
 *
 * Nothing in the window waits for another transaction: the first event's
 * unique and exclusion checks are made without waiting, as for a deferrable
 * constraint, and finished after the window, and the locks the window would
 * take for the first time in the transaction (the position sequence, the
 * TOAST table of a large event) are taken before it (storage.c).  The
 * window lasts microseconds, longer only for a first event of many
 * megabytes or for a constraint or index expression of the user's own that
 * is slow or waits.
 * RowExclusiveLock does not conflict with itself and is taken through the
 * per-backend fast path, so writers never wait for each other on the gate
 * and touch no shared lock table.
 *
 * Readers (read_all, read_category, safe_position) never lock the gate, so
 * no writer ever queues behind a reader:
 *	1. Read L, the last position the sequence has handed out.
 *	2. List the appends that hold the gate now (GetLockConflicts, which also
 *	   reads other backends' fast-path locks), and wait until each of them
 *	   has released it, by polling.  A writer that enters a window after
 *	   step 1 takes positions above L and is not waited for.
 *	3. Take the snapshot S (read_all and read_category) and scan positions
 *	   up to L, stopping at the first event of the reader's that S does not
 *	   see (global_log.c).
 *
 * PROOF SKETCH
 *
 * Lemma 1 (no open window below L).  Let p <= L, taken by an append call A
 * whose first position is p1 <= p.  p1 was handed out before step 1, and A
 * took the gate before taking p1; the fast-path lock is recorded under A's
 * fpInfoLock before nextval locks the sequence's buffer, and step 1 reads
 * that buffer before step 2 reads the record under the same fpInfoLock.  So
 * at step 2 A was inside its window, and step 2 waited for it to leave, or
 * A had already left it, or it failed and aborted.  After step 2, then, A's
 * first event has its tuple and index entries in place, or never will have a
 * committed one.
 *
 * Lemma 2 (the first event shadows the rest).  All events of one call are in
 * one stream, hence in one category and one consumer-group share, at
 * positions p1 < p2 < ... in version order.  While A's transaction is open,
 * its tuple at p1 is seen by a dirty snapshot and by no other session's
 * snapshot, so a scan that reaches p1 stops there and never passes to p2.
 * Once A commits, all its events are in (the call returned first); if it
 * aborts, none of its positions ever holds a committed tuple.
 *
 * Exact.  Let a reader's call return c as its last position, and let e be a
 * committed event of the reader's at position p, after < p <= c.  Since
 * p <= c <= L, A's first event was in the index after step 2 (lemma 1).  If
 * S sees A's events, all of them were in (lemma 2) and the scan returned e.
 * If not, A's transaction was open or committed after S, the scan stopped at
 * p1 <= p, and could not have returned c >= p: a contradiction.  So every
 * committed event at or below the checkpoint was returned, by this call or,
 * by induction, an earlier one; and since each call returns positions above
 * "after" in ascending order, none is returned twice.
 *
 * Never backwards.  L never decreases: the sequence never goes back (no
 * CYCLE, no CACHE, never setval; after a crash it resumes above what it had
 * logged).  So the high-water mark, and safe_position built on it, never
 * decrease either, also after VACUUM removes rolled-back tuples.
 *
 * Waiting.  A reader waits only for appends that are inside their window,
 * and never queues for a mode that appends take, so it holds up no one.  Its
 * polling starts with a few immediate re-checks, then sleeps of doubling
 * length up to a millisecond; it honours cancel, statement_timeout and
 * lock_timeout, and shows as wait event "Extension" in pg_stat_activity.
 * Since the wait is not a lock wait, the deadlock detector does not see it:
 * a constraint of the user's that makes the first event wait for a
 * transaction that then reads the global log would hang until one of those
 * timeouts.  The gate's holders may also include DDL on the type
 * (COMMENT, ALTER TYPE), which holds ShareUpdateExclusiveLock or stronger
 * until its transaction ends; the reader waits for that in the lock manager,
 * in ShareUpdateExclusiveLock, which conflicts with those modes and not with
 * RowExclusiveLock, so that the deadlock detector sees the wait and appends
 * still never queue behind the reader.
 *
 * Hot standbys.  A standby cannot see the primary's gate; readers there use
 * the watermark the primary publishes instead of L (watermark.c), for which
 * lemma 1 holds on the standby.  Before 0.5.0 created the watermark's
 * sequence, a standby reads up to the highest position stored, which is not
 * exact.
 *
 * Not covered.  Rows inserted by plain INSERT (as pg_restore does) do not
 * take the gate.  The sequence must hand out one value at a time (CACHE 1,
 * checked by catalog.c): a cached value would be a position taken outside
 * the gate.
 *
 * src/gate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "compat.h"
#include "event_store.h"

/* Re-checks without sleeping before a reader starts to sleep. */
#define GATE_SPINS				4

/* A reader's first and longest sleep between checks, in microseconds. */
#define GATE_FIRST_SLEEP_US		20L
#define GATE_MAX_SLEEP_US		1000L

static void GateTag(LOCKTAG *tag, Oid gate);
static int64 HighestStored(Relation events, Relation pkey);
static VirtualTransactionId *GateHolders(const LOCKTAG *tag, int *count);
static bool DdlOnGate(const LOCKTAG *tag);
static void WaitForDdl(const LOCKTAG *tag);
static void WaitForWindows(const LOCKTAG *tag);

static void
GateTag(LOCKTAG *tag, Oid gate)
{
	SET_LOCKTAG_RELATION(*tag, MyDatabaseId, gate);
}

/* Writer: take the gate just before taking the first event's position. */
void
es_gate_enter(Oid gate)
{
	LOCKTAG		tag;

	GateTag(&tag, gate);
	(void) LockAcquire(&tag, RowExclusiveLock, false, false);
}

/* Writer: release the gate once the first event is wholly in. */
void
es_gate_exit(Oid gate)
{
	LOCKTAG		tag;

	GateTag(&tag, gate);
	LockRelease(&tag, RowExclusiveLock, false);
}

/*
 * The last value a sequence handed out, read from its page as nextval or
 * setval leaves it: for the position sequence, which caches nothing, the
 * last position taken; for the watermark's, the watermark.  0 before the
 * first value (the sequences start at 0 or 1).  On a standby, the page as
 * replayed.
 */
int64
es_sequence_last_value(Oid seqid)
{
	Relation	seq = relation_open(seqid, AccessShareLock);
	Buffer		buf = ReadBuffer(seq, 0);
	Page		page;
	ItemId		lp;
	HeapTupleData tuple;
	Form_pg_sequence_data data;
	int64		last;

	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	lp = PageGetItemId(page, FirstOffsetNumber);
	if (!ItemIdIsNormal(lp))
		elog(ERROR, "sequence \"%s\" has no tuple", RelationGetRelationName(seq));
	tuple.t_data = (HeapTupleHeader) PageGetItem(page, lp);
	tuple.t_len = ItemIdGetLength(lp);
	data = (Form_pg_sequence_data) GETSTRUCT(&tuple);

	/* Before the first nextval, last_value is the first value to hand out. */
	last = data->is_called ? data->last_value : data->last_value - 1;
	UnlockReleaseBuffer(buf);
	relation_close(seq, NoLock);
	return Max(last, 0);
}

/* The highest position of any tuple of the events table, live or dead. */
static int64
HighestStored(Relation events, Relation pkey)
{
	IndexScanDesc scan;
	TupleTableSlot *slot;
	int64		high = 0;

	slot = table_slot_create(events, NULL);
	scan = es_index_beginscan(events, pkey, SnapshotAny, 0, 0);
	index_rescan(scan, NULL, 0, NULL, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;

		high = DatumGetInt64(slot_getattr(slot, Anum_es_events_global_position,
										  &isnull));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return high;
}

/*
 * The backends that hold the gate in a mode that conflicts with ShareLock,
 * other than this one: the appends inside their window, and anyone holding
 * a stronger lock on the type's relation (DDL on event_store.event).
 */
static VirtualTransactionId *
GateHolders(const LOCKTAG *tag, int *count)
{
	return GetLockConflicts(tag, ShareLock, count);
}

/*
 * Is anyone holding the type's relation in ShareUpdateExclusiveLock or
 * stronger, that is, running DDL on event_store.event (COMMENT, ALTER TYPE)?
 * Appends never hold such a lock, and none of these modes takes the fast
 * path, so this looks at the shared lock table only.
 */
static bool
DdlOnGate(const LOCKTAG *tag)
{
	int			n;
	VirtualTransactionId *holders = GetLockConflicts(tag,
												   ShareUpdateExclusiveLock,
												   &n);

	pfree(holders);
	return n > 0;
}

/*
 * Wait for DDL on the type's relation to end, in the lock manager, where
 * the deadlock detector and lock_timeout see the wait: ShareUpdateExclusive
 * conflicts with every mode DDL takes and with none that appends take, so
 * this never makes an append queue.
 */
static void
WaitForDdl(const LOCKTAG *tag)
{
	(void) LockAcquire(tag, ShareUpdateExclusiveLock, false, false);
	LockRelease(tag, ShareUpdateExclusiveLock, false);
}

/*
 * Wait until every append that is inside its window now has left it.  An
 * append seen again later may be in a new window of the same transaction;
 * waiting for that one too is harmless and short.  A holder that is not an
 * append but DDL on the type is waited for in the lock manager instead.
 */
static void
WaitForWindows(const LOCKTAG *tag)
{
	VirtualTransactionId *waiting;
	int			nwaiting;
	long		sleep_us;
	TimestampTz start;

restart:
	waiting = GateHolders(tag, &nwaiting);
	if (nwaiting == 0)
	{
		pfree(waiting);
		return;
	}
	if (DdlOnGate(tag))
	{
		pfree(waiting);
		WaitForDdl(tag);
		goto restart;
	}

	sleep_us = GATE_FIRST_SLEEP_US;
	start = 0;
	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	for (int attempt = 0;; attempt++)
	{
		VirtualTransactionId *now;
		int			nnow;
		int			kept = 0;

		CHECK_FOR_INTERRUPTS();
		if (attempt >= GATE_SPINS)
		{
			if (start == 0)
				start = GetCurrentTimestamp();
			else if (LockTimeout > 0 &&
					 TimestampDifferenceExceeds(start, GetCurrentTimestamp(),
												LockTimeout))
				ereport(ERROR,
						(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
						 errmsg("could not read the global log: an append has been taking its position for longer than \"lock_timeout\""),
						 errdetail("The append's first event is still being inserted."),
						 errhint("A very large first event, or a constraint or index expression that waits, holds readers this long.")));
			pg_usleep(sleep_us);
			sleep_us = Min(sleep_us * 2, GATE_MAX_SLEEP_US);
		}

		/* Keep those of the first list that still hold the gate. */
		now = GateHolders(tag, &nnow);
		for (int i = 0; i < nwaiting; i++)
		{
			for (int j = 0; j < nnow; j++)
			{
				if (VirtualTransactionIdEquals(waiting[i], now[j]))
				{
					waiting[kept++] = waiting[i];
					break;
				}
			}
		}
		pfree(now);
		nwaiting = kept;
		if (nwaiting == 0)
			break;

		/* One of them may have gone on to DDL on the type. */
		if (attempt >= GATE_SPINS && DdlOnGate(tag))
		{
			pgstat_report_wait_end();
			pfree(waiting);
			WaitForDdl(tag);
			goto restart;
		}
	}
	pgstat_report_wait_end();
	pfree(waiting);
}

/*
 * Reader: steps 1 and 2 of the protocol.  Returns the high-water mark L,
 * after waiting for every append that may still be inserting the first event
 * at a position at or below it.
 */
int64
es_gate_high_water(Relation events, Relation pkey, Oid gate, Oid seqid,
				   Oid watermark_seq)
{
	LOCKTAG		tag;
	int64		high;

	/*
	 * On a hot standby the gate is out of sight: read up to the watermark the
	 * primary published (watermark.c), or, before 0.5.0 created its
	 * sequence, up to the highest position stored, which is not exact.
	 */
	if (RecoveryInProgress())
		return OidIsValid(watermark_seq) ? es_sequence_last_value(watermark_seq) :
			HighestStored(events, pkey);

	GateTag(&tag, gate);

	/*
	 * A read from inside an append of this very backend (a user's constraint
	 * or index expression calling it) would not wait for that append, which
	 * has taken a position it has not inserted yet.
	 */
	if (es_lock_held_by_me(&tag, RowExclusiveLock))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot read the global log from inside an append")));

	high = es_sequence_last_value(seqid);
	WaitForWindows(&tag);
	return high;
}

/*
 * The high-water mark without waiting, for a writer about to commit
 * (watermark.c): true, with *high, when no append is inside its window after
 * a few immediate re-checks; false otherwise, and nothing waited for.
 */
bool
es_gate_high_water_nowait(Oid gate, Oid seqid, int64 *high)
{
	LOCKTAG		tag;

	GateTag(&tag, gate);
	*high = es_sequence_last_value(seqid);
	for (int attempt = 0; attempt < GATE_SPINS; attempt++)
	{
		int			n;
		VirtualTransactionId *holders = GateHolders(&tag, &n);

		pfree(holders);
		if (n == 0)
			return true;
	}
	return false;
}
