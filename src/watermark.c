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
 * Appends do, as they commit (XACT_EVENT_PRE_COMMIT), when the transaction's
 * last position is above the stored watermark and either this transaction
 * holds the last position taken (it is the latest append, so nobody else
 * would cover it) or this backend has not published for
 * event_store.watermark_interval.  A committing append never waits for
 * this: if another publisher holds the sequence, or an append is inside its
 * window (after a few immediate re-checks), it does not publish, and the
 * append that follows does.  event_store.publish_watermark() publishes on
 * demand, waiting like a reader, for a job that runs when nothing is
 * appended (a rolled-back last append leaves the watermark below the
 * committed events before it until the next append or such a call).
 * Nothing is published with wal_level minimal or max_wal_senders 0, where
 * no standby can exist.
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
#include "commands/sequence.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "replication/walsender.h"
#include "storage/lmgr.h"
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
static void Publish(Oid watermark_seq, int64 high);

/* Can this server have a standby to publish for? */
static bool
StandbysPossible(void)
{
	return XLogStandbyInfoActive() && max_wal_senders > 0;
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
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	(void) DirectFunctionCall3(setval3_oid, ObjectIdGetDatum(watermark_seq),
							   Int64GetDatum(high), BoolGetDatum(true));
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
	int64		high;

	if (es_watermark_interval < 0 || !OidIsValid(watermark_seq) ||
		!StandbysPossible())
		return;

	/*
	 * The cheap checks first, without a lock: the watermark only rises, so
	 * one known to cover this transaction still does.
	 */
	if (watermark_seq != known_seq)
	{
		known_seq = watermark_seq;
		known_watermark = 0;
	}
	if (last_position <= known_watermark)
		return;
	if (es_sequence_last_value(events_seq) != last_position &&
		!TimestampDifferenceExceeds(last_published, GetCurrentTimestamp(),
									es_watermark_interval))
		return;
	if (!ConditionalLockRelationOid(watermark_seq, ShareUpdateExclusiveLock))
		return;

	/* Taking the lock read invalidations: the sequence may be gone. */
	if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(watermark_seq)))
	{
		known_watermark = es_sequence_last_value(watermark_seq);
		if (last_position > known_watermark &&
			es_gate_high_water_nowait(gate, events_seq, &high))
			Publish(watermark_seq, high);
	}
	UnlockRelationOid(watermark_seq, ShareUpdateExclusiveLock);
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
