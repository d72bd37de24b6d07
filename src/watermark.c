/*-------------------------------------------------------------------------
 *
 * watermark.c
 *		The watermark: what keeps the global log exact on a hot standby.
 *
 * THE PROBLEM
 *
 * On the primary, gate.c gives a reader a high-water mark L such that every
 * position at or below L has its first event's tuple and index entries in
 * place, or will never hold a committed event.  A standby cannot see the
 * gate: it replays the WAL, and a position taken on the primary but not yet
 * inserted leaves no trace there.  Reading up to the highest position it has
 * replayed, a standby reader could return 101 while the primary is still
 * inserting 100, and then skip 100.
 *
 * THE PROTOCOL
 *
 * Publishing (on the primary).  A publisher computes L as a reader does
 * (steps 1 and 2 of gate.c), then stores it in the sequence
 * event_store.watermark_seq with setval, which writes it to the WAL at once.
 * Every insert at or below L was WAL-logged before the publisher saw its
 * window closed, so the watermark's record comes after all of them in the
 * WAL.  Publishers take the sequence in ShareUpdateExclusiveLock, which
 * conflicts with itself, and write only a value above the stored one, so the
 * watermark never goes back.
 *
 * Reading (on a standby).  Readers use the watermark W, read from the
 * sequence as replayed, as their high-water mark (gate.c), and scan as on
 * the primary.  The standby replays the WAL in order, so when it has
 * replayed W's record it has replayed every first event at or below W:
 * lemma 1 of gate.c holds for W.  Lemma 2 holds as on the primary: a
 * transaction whose commit the standby has not replayed is in progress for
 * its snapshots, so its first event stops the scan.  Hence the proof of
 * gate.c carries over, and the guarantee is the primary's, up to W.
 *
 * WHO PUBLISHES, AND WHEN
 *
 * Appends do, as they commit or prepare (XACT_EVENT_PRE_COMMIT,
 * XACT_EVENT_PRE_PREPARE), when the transaction's last position is above
 * the stored watermark and publishing is due: this transaction holds the
 * last position taken (it is the latest append: nobody else would cover
 * it), or this backend has not published for event_store.watermark_interval,
 * or an earlier committer could not publish and said so.  A committing
 * append never waits for this, so a due publication can fail: another
 * publisher holds the sequence, or an append is inside its window (after a
 * few immediate re-checks).  Then it is owed, not dropped: the committer
 * raises the owed watermark of its database (its position sequence's slot
 * in shared memory, wait.c) before it tries the
 * lock; a publisher re-reads the owed watermark after letting the lock go
 * and publishes again (a few rounds at most), and the append inside its
 * window, or any later committer, finds it owed and publishes when it
 * commits.  What is left: an owed publication whose last candidate rolls
 * back waits for the next append, or for event_store.publish_watermark(),
 * which publishes on demand, waiting like a reader; and without shared
 * memory (15 and 16 without shared_preload_libraries) nothing is owed
 * across sessions, so a failed publication of the latest append waits the
 * same way.
 *
 * Publishing must never fail or delay a commit: it is skipped in a
 * read-only transaction, when the sequence's owner lost UPDATE on it or its
 * bounds exclude the value, and it holds interrupts across setval.  Nothing
 * is published with wal_level minimal, where no standby can exist.
 *
 * src/watermark.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_sequence.h"
#include "commands/sequence.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "event_store.h"

PG_FUNCTION_INFO_V1(watermark);
PG_FUNCTION_INFO_V1(publish_watermark);

/* event_store.watermark_interval, in milliseconds; -1: appends never publish */
int			es_watermark_interval = 100;

/* When this backend last published, for the interval. */
static TimestampTz last_published = 0;

/*
 * The highest watermark this backend has seen stored in the sequence
 * known_seq (it only rises, as long as that sequence lives).
 */
static int64 known_watermark = 0;
static Oid	known_seq = InvalidOid;

static bool StandbysPossible(void);
static bool WithinBounds(Oid seqid, int64 value);

/* How many times a committing append publishes for others at most. */
#define PUBLISH_ROUNDS	3
static void Publish(Oid watermark_seq, int64 high);

/*
 * Can this server have a standby to publish for?  Any wal_level from
 * replica up: a standby may also replay the WAL from an archive, with no
 * WAL sender.
 */
static bool
StandbysPossible(void)
{
	return XLogStandbyInfoActive();
}

/* May setval store value in the sequence? */
static bool
WithinBounds(Oid seqid, int64 value)
{
	HeapTuple	tuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seqid));
	bool		ok;

	if (!HeapTupleIsValid(tuple))
		return false;
	ok = value >= ((Form_pg_sequence) GETSTRUCT(tuple))->seqmin &&
		value <= ((Form_pg_sequence) GETSTRUCT(tuple))->seqmax;
	ReleaseSysCache(tuple);
	return ok;
}

/*
 * Store high as the watermark if it is above the stored one.  The caller
 * holds the sequence in ShareUpdateExclusiveLock.  setval runs as the
 * sequence's owner, since the right to publish comes with the right to
 * append or to call publish_watermark, not with UPDATE on the sequence.
 */
static void
Publish(Oid watermark_seq, int64 high)
{
	Oid			save_userid;
	int			save_sec;
	Relation	seq;
	Oid			owner;

	if (high <= es_sequence_last_value(watermark_seq))
		return;
	seq = relation_open(watermark_seq, AccessShareLock);
	owner = seq->rd_rel->relowner;
	relation_close(seq, NoLock);

	/*
	 * Nothing here may fail a commit for reasons of its own: skip a sequence
	 * whose owner lost UPDATE on it or whose maximum was lowered, and hold
	 * cancel and die interrupts across setval (the transaction is ending).
	 */
	if (pg_class_aclcheck(watermark_seq, owner, ACL_UPDATE) != ACLCHECK_OK ||
		!WithinBounds(watermark_seq, high))
		return;
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	HOLD_INTERRUPTS();
	(void) DirectFunctionCall3(setval3_oid, ObjectIdGetDatum(watermark_seq),
							   Int64GetDatum(high), BoolGetDatum(true));
	RESUME_INTERRUPTS();
	SetUserIdAndSecContext(save_userid, save_sec);
	last_published = GetCurrentTimestamp();
	if (watermark_seq == known_seq)
		known_watermark = high;
}

/*
 * A committing transaction that appended up to last_position, with the
 * extension's relations as they were then: publish if that is due (see the
 * top of this file) and costs no wait.
 */
void
es_watermark_at_commit(int64 last_position, Oid gate, Oid events_seq,
					   Oid watermark_seq)
{
	int64		owed;
	int64		target;

	if (es_watermark_interval < 0 || !OidIsValid(watermark_seq) ||
		!StandbysPossible() || XactReadOnly)
		return;

	/*
	 * The relations are those of the transaction's appends; the transaction
	 * may have dropped them since (DROP EXTENSION).
	 */
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(watermark_seq)) ||
		!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(events_seq)))
		return;

	/*
	 * The cheap checks first, without a lock: the watermark only rises, so
	 * one known to cover this transaction and what is owed still does.
	 */
	if (watermark_seq != known_seq)
	{
		known_seq = watermark_seq;
		known_watermark = 0;
	}
	owed = es_wake_owed_watermark(events_seq);
	target = Max(last_position, owed);
	if (target <= known_watermark)
		return;
	if (owed <= known_watermark &&
		es_sequence_last_value(events_seq) != last_position &&
		!TimestampDifferenceExceeds(last_published, GetCurrentTimestamp(),
									es_watermark_interval))
		return;

	/*
	 * Due.  Say so before trying: if another publisher holds the sequence,
	 * it reads what is owed after it lets go, and publishes again.
	 */
	es_wake_owe_watermark(events_seq, target);
	for (int round = 0; round < PUBLISH_ROUNDS; round++)
	{
		bool		windows_closed = true;
		int64		high;

		if (!ConditionalLockRelationOid(watermark_seq, ShareUpdateExclusiveLock))
			return;
		/* Taking the lock read invalidations: the sequence may be gone. */
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(watermark_seq)))
		{
			UnlockRelationOid(watermark_seq, ShareUpdateExclusiveLock);
			return;
		}
		known_watermark = es_sequence_last_value(watermark_seq);
		if (target > known_watermark)
		{
			windows_closed = es_gate_high_water_nowait(gate, events_seq, &high);
			if (windows_closed)
				Publish(watermark_seq, high);
		}
		UnlockRelationOid(watermark_seq, ShareUpdateExclusiveLock);

		/*
		 * An append inside its window publishes what is owed when it commits;
		 * otherwise serve what others owed while this one held the lock.
		 */
		if (!windows_closed)
			return;
		target = es_wake_owed_watermark(events_seq);
		if (target <= known_watermark)
			return;
	}
}

/*
 * event_store.watermark() returns bigint: the watermark as stored; on a
 * standby, as replayed.
 */
Datum
watermark(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat;
	Relation	events;
	int64		w = 0;

	cat = es_catalog_open(AccessShareLock, &events, NULL);
	es_check_select(events);
	if (OidIsValid(cat->watermark_seq))
		w = es_sequence_last_value(cat->watermark_seq);
	table_close(events, NoLock);
	PG_RETURN_INT64(w);
}

/*
 * event_store.publish_watermark() returns bigint: publish the watermark now,
 * waiting as a reader does for appends inside their window; returns it.
 */
Datum
publish_watermark(PG_FUNCTION_ARGS)
{
	const EsCatalog *cat;
	Relation	events;
	Relation	pkey;
	int64		high;
	int64		w;

	PreventCommandIfReadOnly("publish_watermark()");
	cat = es_catalog_open(AccessShareLock, &events, NULL);
	es_check_select(events);
	if (!OidIsValid(cat->watermark_seq))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the watermark needs event_store 0.5.0"),
				 errhint("Run ALTER EXTENSION event_store UPDATE.")));
	LockRelationOid(cat->watermark_seq, ShareUpdateExclusiveLock);
	pkey = es_open_index(cat, events, ES_INDEX_POSITION, AccessShareLock);
	high = es_gate_high_water(events, pkey, cat->gate, cat->events_seq,
							  cat->watermark_seq);
	Publish(cat->watermark_seq, high);
	w = es_sequence_last_value(cat->watermark_seq);
	UnlockRelationOid(cat->watermark_seq, ShareUpdateExclusiveLock);
	index_close(pkey, NoLock);
	table_close(events, NoLock);
	PG_RETURN_INT64(w);
}

/* Define the setting; called from _PG_init. */
void
es_watermark_init(void)
{
	DefineCustomIntVariable("event_store.watermark_interval",
							"Sets how often an appending backend publishes the watermark for hot standbys.",
							"Milliseconds between publications by one backend; the latest append publishes in any case. -1 stops appends from publishing.",
							&es_watermark_interval,
							100, -1, 3600 * 1000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}
