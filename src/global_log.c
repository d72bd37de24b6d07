/*-------------------------------------------------------------------------
 *
 * global_log.c
 *		The global log: read_all, read_category and safe_position.
 *
 * A reader asks for the events after a checkpoint, the last position it has
 * received.  Positions are taken at insert time and become visible at
 * commit, so a reader must never pass a position whose event may still
 * commit.  gate.c gives each read a high-water mark L such that every
 * position at or below L has its event in the indexes, is shadowed by an
 * earlier event of the same uncommitted append, or will never be committed
 * (its protocol and proof are at the top of gate.c).  The scan here then
 * reads positions (after, L] in ascending order:
 *
 *	read_category scans its index with a dirty snapshot, which shows tuples
 *	of committed and of in-progress transactions and hides those of aborted
 *	ones.  For each tuple that is the reader's (its category, its
 *	consumer-group member): if the read's snapshot S sees it, return it;
 *	otherwise (its transaction is still open, or committed after S) stop.
 *
 *	read_all does the same more cheaply: it scans the primary key with S
 *	itself, which returns exactly the tuples S sees, and wherever two
 *	consecutive ones leave a gap in positions, it probes the gap with a dirty
 *	snapshot.  A tuple found there is one S does not see, so the scan stops
 *	before it; an empty gap holds only aborted or never-inserted positions.
 *
 * S is a new snapshot under READ COMMITTED, the transaction's under
 * REPEATABLE READ and SERIALIZABLE, taken after the high-water mark.
 *
 * One number.  The checkpoint is the last position received; nothing else.
 *
 * Live.  An open transaction with an event at position p stops every scan at
 * p: readers get everything before p, and pass p the moment the transaction
 * commits or rolls back.  Nothing waits on a timeout.
 *
 * Notes.
 *	- A transaction that appended and then reads sees its own events (S sees
 *	  them); if it rolls back, whatever it saved with them goes too.  A read
 *	  from inside an append's own window (a constraint calling read_all
 *	  while the first event is inserted) is refused: it would not wait for
 *	  that append.
 *	- The category index must be valid and ready: an index being built
 *	  concurrently lacks entries, so read_category refuses it.
 *	- On a hot standby the high-water mark is the watermark the primary
 *	  published (watermark.c), and the scan is the same.
 *	- Filters.  A reader's filter has stream-level parts (the category of
 *	  read_category or read_all's categories, the consumer-group member) and
 *	  an event-level part (the event types).  Every event of an append call
 *	  is in one stream, so an event outside the stream-level filter, open or
 *	  not, says nothing the reader needs: lemma 2 of gate.c holds within
 *	  the filter, and the scan passes it.  An event of an unwanted type does
 *	  not: while its transaction is open, the same call may still insert a
 *	  wanted one after it, so an open event stops the scan whatever its
 *	  type; a settled one of an unwanted type is passed.
 *	- How far a read got (last_read_position): the last position returned
 *	  when the page filled; otherwise the position before the event the scan
 *	  stopped at, or the high-water mark when nothing stopped it.  Every
 *	  position at or below it is settled for the reader's filter, and every
 *	  wanted event among them was returned (by this call or, by induction
 *	  from the checkpoint, an earlier one), so a subscriber may save it as
 *	  its checkpoint although no event came back.  read_all probes the gap
 *	  from its last row up to the high-water mark for that, as it probes
 *	  every other gap.
 *	- Row-level security.  For a caller subject to policies on the events
 *	  table, the scan above runs unchanged, as the extension's own reading,
 *	  but collects positions instead of rows; those positions are then read
 *	  back with a SELECT through SPI, with the same snapshot S and the
 *	  caller's rights, so the policies decide which of them the caller gets.
 *	  Each position was settled when the scan passed it, so filtering cannot
 *	  make the scan pass anything it would not have passed.  When the
 *	  policies drop rows, the scan goes on in chunks from where it stopped
 *	  until the page is full or the scan stops.  A caller's read can still
 *	  stop at another tenant's open transaction, as it must to stay exact.
 *	- Rows inserted into event_store.events by plain INSERT (as pg_restore
 *	  does) do not take the gate; the guarantee covers the append functions.
 *	- Each call's result is a tuplestore in the query's memory, which the
 *	  executor frees when it is done with it, so a query that calls a read
 *	  function many times (LATERAL) does not keep every call's result.
 *
 * src/global_log.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/subtrans.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/visibilitymap.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "event_store.h"

PG_FUNCTION_INFO_V1(read_all);
PG_FUNCTION_INFO_V1(read_category);
PG_FUNCTION_INFO_V1(safe_position);
PG_FUNCTION_INFO_V1(consumer_group_member);
PG_FUNCTION_INFO_V1(log_holder);
PG_FUNCTION_INFO_V1(last_read_position);

/* The relations a read works on, opened under the extension's catalog. */
typedef struct EsReadRelations
{
	Relation	events;
	Relation	pkey;
	Relation	category;		/* NULL unless asked for */
	Oid			gate;
	Oid			seq;			/* the position sequence */
	Oid			watermark;		/* the watermark's sequence, or InvalidOid */
	bool		rls;			/* row-level security applies to the caller */
} EsReadRelations;

/* A set of strings a filter compares against, sorted for binary search. */
typedef struct NameSet
{
	int			n;				/* -1: no set given, nothing filtered */
	text	  **names;			/* sorted by NameCompare */
} NameSet;

/*
 * Which events a reader wants.  The stream-level parts (consumer-group
 * member, categories) hold for every event of an append call, since a call
 * appends to one stream; the event types do not.  That difference decides
 * what a scan may pass (see the top of this file).
 */
typedef struct LogFilter
{
	bool		by_member;
	uint32		member;
	uint32		size;
	NameSet		categories;		/* n == 0: every category */
	NameSet		types;			/* n == 0: every type */
} LogFilter;

/*
 * Where a scan puts the events it accepts.  Normally straight into the
 * function's result: the stored tuple is copied as it is, since
 * event_store.event has the columns of the events table (catalog.c checks
 * the table's shape), so no column needs deforming.  For a caller subject to
 * row-level security, only the positions are kept, for FilterByPolicies.
 */
typedef struct LogSink
{
	Tuplestorestate *store;		/* NULL: keep no rows (wait_for_event) */
	int64		first;			/* the first row's position; 0: none yet */
	bool		positions_only;
	Datum	   *positions;
	int			npositions;
} LogSink;

/*
 * What a scan did: how many events it accepted, the last one's position, and
 * how far it got: every event of the reader's at or below "reached" that the
 * scan had to accept, it accepted (last_read_position).
 */
typedef struct ScanResult
{
	int64		accepted;
	int64		last;
	int64		reached;
} ScanResult;

/* What read_all's and read_category's scans need. */
typedef struct ScanArgs
{
	EsReadRelations rels;
	Snapshot	snapshot;
	int64		high;			/* the high-water mark of gate.c */
	text	   *category;		/* read_category only */
	LogFilter	filter;
	EsHiding	hiding;			/* the streams' bounds (visibility.c) */
} ScanArgs;

/* A scan of the log from a position, for at most max_count events. */
typedef ScanResult (*ScanFunc) (LogSink *sink, int64 after, int64 max_count,
								ScanArgs *args);

/* Positions a caller subject to row-level security is read at a time. */
#define POLICY_CHUNK	4096

static void OpenForRead(EsReadRelations *r, bool need_category);
static void CloseForRead(EsReadRelations *r);
static int64 HighWaterMark(EsReadRelations *r);
static Snapshot ReadSnapshot(void);
static uint32 MemberOf(text *stream_id, uint32 size);
static Tuplestorestate *InitResult(FunctionCallInfo fcinfo);
static int64 SlotPosition(TupleTableSlot *slot);
static void Accept(LogSink *sink, TupleTableSlot *slot, ScanResult *result);
static ScanResult ScanLog(LogSink *sink, Relation events, Relation index,
						  Relation pkey, Snapshot snapshot, ScanKey keys,
						  int nkeys, int64 high, int64 max_count,
						  const LogFilter *filter, EsHiding *hiding);
static bool IsRedactedVersion(TupleTableSlot *slot);
static bool FetchByPosition(Relation events, Relation pkey, Snapshot snapshot,
							int64 position, TupleTableSlot *slot);
static int	NameCompare(const void *a, const void *b);
static void NameSetFromArray(NameSet *set, ArrayType *array,
							 const char *argname);
static bool NameSetHas(const NameSet *set, const char *p, int len);
static bool WantsStream(const LogFilter *filter, TupleTableSlot *slot);
static bool WantsType(const LogFilter *filter, TupleTableSlot *slot);
static int64 GapBlocker(IndexScanDesc *scan, SnapshotData *dirty,
						Relation events, Relation pkey, TupleTableSlot *slot,
						int64 low, int64 high, const LogFilter *filter);
static ScanResult ScanAll(LogSink *sink, Relation events, Relation pkey,
						  Snapshot snapshot, int64 after, int64 high,
						  int64 max_count, const LogFilter *filter,
						  EsHiding *hiding);
static int64 FilterByPolicies(LogSink *sink, SPIPlanPtr plan,
							  Snapshot snapshot, int64 max_count,
							  int64 *last);
static int64 RunScan(LogSink *sink, ScanArgs *args, int64 after,
					 int64 max_count, ScanFunc scanfn);
static void InitFilter(LogFilter *filter);
static void ForgetLastRead(XactEvent event, void *arg);
static void ForgetLastReadOnSubAbort(SubXactEvent event,
									 SubTransactionId mySubid,
									 SubTransactionId parentSubid, void *arg);
static ScanResult AllScan(LogSink *sink, int64 after, int64 max_count,
						  ScanArgs *args);
static ScanResult CategoryScan(LogSink *sink, int64 after, int64 max_count,
							   ScanArgs *args);
static int64 ScanToHighWater(LogSink *sink, ScanArgs *args, int64 after,
							 int64 max_count, ScanFunc scanfn,
							 EsHighWaterFn high_water);
static void ReadLog(FunctionCallInfo fcinfo, ScanArgs *args, int64 after,
					int64 max_count, ScanFunc scanfn);
static int64 MaxCount(FunctionCallInfo fcinfo, int argno);

/*
 * Open what a read needs, with AccessShareLock: the events table and the
 * indexes the catalog found for positions and categories.  These functions
 * read the table below the executor, so they check what a SELECT would: the
 * caller's SELECT privilege, and whether row-level security applies to the
 * caller, in which case the rows go through the policies (FilterByPolicies).
 */
static void
OpenForRead(EsReadRelations *r, bool need_category)
{
	const EsCatalog *cat = es_catalog_open(AccessShareLock, &r->events, NULL);

	es_check_select(r->events);
	r->rls = (check_enable_rls(RelationGetRelid(r->events), InvalidOid,
							   false) == RLS_ENABLED);
	r->gate = cat->gate;
	r->seq = cat->events_seq;
	r->watermark = cat->watermark_seq;
	r->pkey = es_open_index(cat, r->events, ES_INDEX_POSITION, AccessShareLock);
	r->category = need_category ?
		es_open_index(cat, r->events, ES_INDEX_CATEGORY, AccessShareLock) :
		NULL;
}

static void
CloseForRead(EsReadRelations *r)
{
	if (r->category != NULL)
		index_close(r->category, NoLock);
	index_close(r->pkey, NoLock);
	table_close(r->events, NoLock);
}

/* The high-water mark of a read (gate.c). */
static int64
HighWaterMark(EsReadRelations *r)
{
	return es_gate_high_water(r->events, r->pkey, r->gate, r->seq,
							  r->watermark);
}

/* The snapshot a read runs against, taken after the high-water mark. */
static Snapshot
ReadSnapshot(void)
{
	if (IsolationUsesXactSnapshot())
		return RegisterSnapshot(GetTransactionSnapshot());
	return RegisterSnapshot(GetLatestSnapshot());
}

/* The consumer-group member a stream belongs to. */
static uint32
MemberOf(text *stream_id, uint32 size)
{
	uint64		h = hash_bytes_extended((const unsigned char *) VARDATA_ANY(stream_id),
										VARSIZE_ANY_EXHDR(stream_id), 0);

	return (uint32) (h % size);
}

/*
 * Set up the function's result, as InitMaterializedSRF does: a tuplestore
 * in the query's memory, which the executor ends (and so frees) when it is
 * done with this call's rows.  The result type must still have the layout
 * of the events table, whose tuples are stored as they are (Accept).
 */
static Tuplestorestate *
InitResult(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	TupleDesc	desc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));

	/*
	 * The descriptor the type cache hands out is a copy made in the current,
	 * short-lived context; only the one the executor frees goes into the
	 * query's memory.
	 */
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	es_check_row_type(desc);
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	rsinfo->setDesc = CreateTupleDescCopy(desc);
	rsinfo->setResult = tuplestore_begin_heap(false, false, work_mem);
	rsinfo->returnMode = SFRM_Materialize;
	MemoryContextSwitchTo(old);
	if (desc->tdrefcount == -1)
		FreeTupleDesc(desc);
	return rsinfo->setResult;
}

static int64
SlotPosition(TupleTableSlot *slot)
{
	bool		isnull;

	return DatumGetInt64(slot_getattr(slot, Anum_es_events_global_position,
									  &isnull));
}

static void
Accept(LogSink *sink, TupleTableSlot *slot, ScanResult *result)
{
	int64		position = SlotPosition(slot);

	if (sink->positions_only)
		sink->positions[sink->npositions++] = Int64GetDatum(position);
	else
	{
		if (sink->store != NULL)
			tuplestore_puttupleslot(sink->store, slot);
		if (sink->first == 0)
			sink->first = position;
	}
	result->accepted++;
	result->last = position;
}

/* Order of a NameSet: by length, then bytes. */
static int
NameCompare(const void *a, const void *b)
{
	text	   *x = *(text *const *) a;
	text	   *y = *(text *const *) b;
	int			lx = VARSIZE_ANY_EXHDR(x);
	int			ly = VARSIZE_ANY_EXHDR(y);

	if (lx != ly)
		return lx < ly ? -1 : 1;
	return memcmp(VARDATA_ANY(x), VARDATA_ANY(y), lx);
}

/*
 * Fill a NameSet from a text[] argument; an empty array is a set that
 * nothing matches.  Null elements are refused.
 */
static void
NameSetFromArray(NameSet *set, ArrayType *array, const char *argname)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	set->names = palloc(sizeof(text *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", argname)));
		set->names[i] = DatumGetTextPP(elems[i]);
	}
	set->n = n;
	qsort(set->names, n, sizeof(text *), NameCompare);
}

/* Is the string of len bytes at p in the set? */
static bool
NameSetHas(const NameSet *set, const char *p, int len)
{
	int			lo = 0;
	int			hi = set->n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		text	   *t = set->names[mid];
		int			tl = VARSIZE_ANY_EXHDR(t);
		int			c;

		c = (tl != len) ? (tl < len ? -1 : 1) : memcmp(VARDATA_ANY(t), p, len);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/*
 * Is the slot's event in a stream the reader wants: its consumer-group
 * member, and one of its categories (a stream's id up to the first '-', as
 * event_store.category() computes it)?  True for every event of an append
 * call alike.
 */
static bool
WantsStream(const LogFilter *filter, TupleTableSlot *slot)
{
	bool		isnull;
	text	   *sid;

	if (!filter->by_member && filter->categories.n < 0)
		return true;
	sid = DatumGetTextPP(slot_getattr(slot, Anum_es_events_stream_id, &isnull));
	if (filter->by_member &&
		MemberOf(sid, filter->size) != filter->member)
		return false;
	if (filter->categories.n >= 0)
	{
		const char *p = VARDATA_ANY(sid);
		int			len = VARSIZE_ANY_EXHDR(sid);
		const char *dash = memchr(p, '-', len);

		if (!NameSetHas(&filter->categories, p, dash ? (int) (dash - p) : len))
			return false;
	}
	return true;
}

/* Is the slot's event of a type the reader wants? */
static bool
WantsType(const LogFilter *filter, TupleTableSlot *slot)
{
	bool		isnull;
	text	   *type;

	if (filter->types.n < 0)
		return true;
	type = DatumGetTextPP(slot_getattr(slot, Anum_es_events_event_type, &isnull));
	return NameSetHas(&filter->types, VARDATA_ANY(type),
					  VARSIZE_ANY_EXHDR(type));
}

/*
 * Scan an index of the events table whose last key column is the global
 * position, in ascending order, with a dirty snapshot, under the rules at the
 * top of this file, and accept the reader's events, at most max_count.
 */
static ScanResult
ScanLog(LogSink *sink, Relation events, Relation index, Relation pkey,
		Snapshot snapshot, ScanKey keys, int nkeys, int64 high,
		int64 max_count, const LogFilter *filter, EsHiding *hiding)
{
	SnapshotData dirty;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanResult	result = {0, 0, 0};
	int64		done = 0;		/* the last position settled */
	int64		blocked = 0;	/* the position the scan stopped at */

	InitDirtySnapshot(dirty);
	slot = table_slot_create(events, NULL);
	scan = es_index_beginscan(events, index, &dirty, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);

	while (result.accepted < max_count &&
		   index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		int64		position = SlotPosition(slot);

		CHECK_FOR_INTERRUPTS();
		if (position > high)
			break;

		/*
		 * A second version of an event already settled (a redaction not
		 * updated in place leaves two index entries for one position).
		 */
		if (position == done)
			continue;

		/*
		 * Another member's stream: so are the call's later events, which
		 * this event shadows, so the scan may pass it whatever its state.
		 */
		if (!WantsStream(filter, slot))
			continue;

		/*
		 * Not settled as S sees it: open, or committed after S.  Stop, of
		 * whatever type it is: the call's later events, not yet inserted,
		 * may be of a type the reader wants.  But a redaction's new version
		 * is no new event: the version of the event that S sees, if any, is
		 * the one to return.
		 */
		if (!table_tuple_satisfies_snapshot(events, slot, snapshot) &&
			(!IsRedactedVersion(slot) ||
			 !FetchByPosition(events, pkey, snapshot, position, slot)))
		{
			blocked = position;
			break;
		}
		done = position;

		/* Settled, but hidden by its stream's bound as S sees it. */
		if (hiding->active && es_hidden(hiding, slot))
			continue;
		if (!WantsType(filter, slot))
			continue;

		Accept(sink, slot, &result);
	}

	if (result.accepted >= max_count)
		result.reached = result.last;
	else if (blocked != 0)
		result.reached = blocked - 1;
	else
		result.reached = high;

	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	return result;
}

/*
 * Is the slot's tuple the new version an UPDATE made?  Appends only insert,
 * so such a version is a redaction's (lifecycle.c) of an event stored
 * before.
 */
static bool
IsRedactedVersion(TupleTableSlot *slot)
{
	HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, NULL);

	return (tuple->t_data->t_infomask & HEAP_UPDATED) != 0;
}

/* Fetch the event at a position as a snapshot sees it; false if none. */
static bool
FetchByPosition(Relation events, Relation pkey, Snapshot snapshot,
				int64 position, TupleTableSlot *slot)
{
	IndexScanDesc scan;
	ScanKeyData key;
	bool		found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(position));
	scan = es_index_beginscan(events, pkey, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	return found;
}

/*
 * The first position strictly between low and high that holds a tuple a
 * dirty snapshot sees, in a stream the reader wants; 0 if none.  Used on the
 * gaps of read_all's scan, where every such tuple is one S does not see.
 * The probe's index scan is begun on the first gap and rescanned for the
 * next ones (*scan), since a log with purged events has a gap every few
 * rows.
 */
static int64
GapBlocker(IndexScanDesc *scan, SnapshotData *dirty, Relation events,
		   Relation pkey, TupleTableSlot *slot, int64 low, int64 high,
		   const LogFilter *filter)
{
	ScanKeyData keys[2];
	int64		found = 0;

	ScanKeyInit(&keys[0], 1, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(low));
	ScanKeyInit(&keys[1], 1, BTLessStrategyNumber, F_INT8LT,
				Int64GetDatum(high));
	if (*scan == NULL)
	{
		InitDirtySnapshot(*dirty);
		*scan = es_index_beginscan(events, pkey, dirty, 2, 0);
	}
	index_rescan(*scan, keys, 2, NULL, 0);
	while (index_getnext_slot(*scan, ForwardScanDirection, slot))
	{
		CHECK_FOR_INTERRUPTS();
		if (WantsStream(filter, slot))
		{
			found = SlotPosition(slot);
			break;
		}
	}
	ExecClearTuple(slot);
	return found;
}

/*
 * read_all's scan of the primary key: with the snapshot S itself, probing
 * each gap in positions with a dirty snapshot (see the top of this file).
 */
static ScanResult
ScanAll(LogSink *sink, Relation events, Relation pkey, Snapshot snapshot,
		int64 after, int64 high, int64 max_count, const LogFilter *filter,
		EsHiding *hiding)
{
	IndexScanDesc scan;
	TupleTableSlot *slot;
	TupleTableSlot *probe;
	ScanKeyData key;
	ScanResult	result = {0, 0, 0};
	int64		previous = after;
	int64		blocked = 0;
	IndexScanDesc gapscan = NULL;
	SnapshotData dirty;

	slot = table_slot_create(events, NULL);
	probe = table_slot_create(events, NULL);
	ScanKeyInit(&key, 1, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(after));
	scan = es_index_beginscan(events, pkey, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);

	while (result.accepted < max_count &&
		   index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		int64		position = SlotPosition(slot);

		CHECK_FOR_INTERRUPTS();
		if (position > high)
			break;
		if (position > previous + 1 &&
			(blocked = GapBlocker(&gapscan, &dirty, events, pkey, probe,
								  previous, position, filter)) != 0)
			break;
		previous = position;

		/* Settled; returned unless unwanted or hidden by its bound. */
		if (!WantsStream(filter, slot) || !WantsType(filter, slot))
			continue;
		if (!hiding->active || !es_hidden(hiding, slot))
			Accept(sink, slot, &result);
	}

	/*
	 * How far the scan got.  When it ran out of events before the page was
	 * full, the positions from the last one it passed up to the high-water
	 * mark are a gap like any other.
	 */
	if (result.accepted >= max_count)
		result.reached = result.last;
	else
	{
		if (blocked == 0 && previous < high)
			blocked = GapBlocker(&gapscan, &dirty, events, pkey, probe,
								 previous, high + 1, filter);
		result.reached = (blocked != 0) ? blocked - 1 : high;
	}

	index_endscan(scan);
	if (gapscan != NULL)
		index_endscan(gapscan);
	ExecDropSingleTupleTableSlot(probe);
	ExecDropSingleTupleTableSlot(slot);
	return result;
}

/*
 * Read back the events at the collected positions through a SELECT run with
 * the caller's rights and the snapshot S, so that row-level security policies
 * decide which of them the caller gets, and put at most max_count of them
 * into the function's result.  Returns how many it put there, and in *last
 * the position of the last of them.  The caller has connected to SPI and
 * prepared the plan.
 */
static int64
FilterByPolicies(LogSink *sink, SPIPlanPtr plan, Snapshot snapshot,
				 int64 max_count, int64 *last)
{
	Datum		args[1];
	ArrayType  *array;
	int			ret;
	uint64		n;

	if (sink->npositions == 0)
		return 0;

	array = construct_array(sink->positions, sink->npositions,
							INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
							TYPALIGN_DOUBLE);
	args[0] = PointerGetDatum(array);
	ret = SPI_execute_snapshot(plan, args, NULL, snapshot, InvalidSnapshot,
							   true, false,
							   max_count < sink->npositions ? max_count : 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_snapshot failed: %s", SPI_result_code_string(ret));

	n = SPI_processed;
	if (sink->store != NULL)
		for (uint64 i = 0; i < n; i++)
			tuplestore_puttuple(sink->store, SPI_tuptable->vals[i]);
	if (n > 0)
	{
		bool		isnull;

		if (sink->first == 0)
			sink->first = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc,
													  1, &isnull));
		*last = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[n - 1],
											SPI_tuptable->tupdesc, 1,
											&isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	pfree(array);
	sink->npositions = 0;
	return (int64) n;
}

/*
 * Run a scan (read_all's or read_category's) for max_count events after a
 * position.  Without row-level security, that is one scan into the result.
 * With it, the scan runs in chunks of positions, each read back through the
 * policies, until max_count events got through or a chunk came back short,
 * which means the scan stopped (end, high-water mark, or an unsettled event).
 * The chunks are large, so that a tenant whose events are few among many
 * pays one read-back per few thousand positions it passes.  Returns how far
 * the read got (last_read_position): where the scan got, or, when the page
 * filled with events the policies let through, the last of them.
 */
static int64
RunScan(LogSink *out, ScanArgs *args, int64 after, int64 max_count,
		ScanFunc scanfn)
{
	EsReadRelations *rels = &args->rels;
	LogSink		sink = *out;
	int64		returned = 0;
	int64		reached = after;
	Oid			argtypes[1] = {INT8ARRAYOID};
	char	   *query;
	SPIPlanPtr	plan;

	if (!rels->rls)
	{
		reached = scanfn(out, after, max_count, args).reached;
		return reached;
	}

	query = psprintf("SELECT e.global_position, e.stream_id, e.version, e.event_id,"
					 " e.event_type, e.data, e.metadata, e.created_at"
					 " FROM %s e"
					 " WHERE e.global_position OPERATOR(pg_catalog.=) ANY ($1)"
					 " ORDER BY e.global_position",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rels->events)),
												RelationGetRelationName(rels->events)));
	sink.positions_only = true;
	sink.positions = palloc(sizeof(Datum) * POLICY_CHUNK);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(query, 1, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));

	while (returned < max_count)
	{
		int64		chunk = Min(Max(max_count - returned, POLICY_CHUNK / 4),
								POLICY_CHUNK);
		ScanResult	result = scanfn(&sink, after, chunk, args);
		int64		last = 0;

		returned += FilterByPolicies(&sink, plan, args->snapshot,
									 max_count - returned, &last);
		if (returned >= max_count)
		{
			reached = last;
			break;
		}
		reached = result.reached;
		if (result.accepted < chunk)
			break;
		after = result.last;
	}

	SPI_freeplan(plan);
	SPI_finish();
	pfree(sink.positions);
	pfree(query);
	out->first = sink.first;
	return reached;
}

/* read_all's scan, for RunScan. */
static ScanResult
AllScan(LogSink *sink, int64 after, int64 max_count, ScanArgs *args)
{
	return ScanAll(sink, args->rels.events, args->rels.pkey, args->snapshot,
				   after, args->high, max_count, &args->filter, &args->hiding);
}

/* read_category's scan, for RunScan. */
static ScanResult
CategoryScan(LogSink *sink, int64 after, int64 max_count, ScanArgs *args)
{
	ScanKeyData keys[2];

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(args->category));
	ScanKeyInit(&keys[1], 2, BTGreaterStrategyNumber, F_INT8GT,
				Int64GetDatum(after));
	return ScanLog(sink, args->rels.events, args->rels.category,
				   args->rels.pkey, args->snapshot, keys, 2, args->high,
				   max_count, &args->filter, &args->hiding);
}

/*
 * Where this transaction's last read got to (last_read_position), and the
 * subtransaction that read: forgotten when that subtransaction or the
 * transaction ends without committing, and when the transaction ends.
 */
static bool last_read_valid = false;
static int64 last_read = 0;
static SubTransactionId last_read_subxact = InvalidSubTransactionId;
static bool last_read_callbacks = false;

static void
ForgetLastRead(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			last_read_valid = false;
			break;
		default:
			break;
	}
}

static void
ForgetLastReadOnSubAbort(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	/*
	 * Subtransaction ids rise, and a subtransaction ends before a later
	 * sibling starts, so a read at or above the aborting one was made in it.
	 */
	if (event == SUBXACT_EVENT_ABORT_SUB && last_read_valid &&
		last_read_subxact >= mySubid)
		last_read_valid = false;
}

static void
RememberLastRead(int64 reached)
{
	if (!last_read_callbacks)
	{
		RegisterXactCallback(ForgetLastRead, NULL);
		RegisterSubXactCallback(ForgetLastReadOnSubAbort, NULL);
		last_read_callbacks = true;
	}
	last_read = reached;
	last_read_subxact = GetCurrentSubTransactionId();
	last_read_valid = true;
}

/*
 * Read the log after a position, for at most max_count events, into the
 * sink: take the high-water mark (from high_water: es_gate_high_water, or
 * wait.c's shared one), and scan up to it with the read's snapshot.
 * Returns how far the read got (at least after).
 */
static int64
ScanToHighWater(LogSink *sink, ScanArgs *args, int64 after, int64 max_count,
				ScanFunc scanfn, EsHighWaterFn high_water)
{
	int64		reached = after;

	OpenForRead(&args->rels, scanfn == CategoryScan);
	args->high = high_water(args->rels.events, args->rels.pkey,
							args->rels.gate, args->rels.seq,
							args->rels.watermark);
	if (args->high > after)
	{
		args->snapshot = ReadSnapshot();
		es_hiding_begin(&args->hiding, args->rels.events, args->snapshot);
		reached = RunScan(sink, args, after, max_count, scanfn);
		es_hiding_end(&args->hiding);
		UnregisterSnapshot(args->snapshot);
	}
	CloseForRead(&args->rels);
	return Max(reached, after);
}

/*
 * What read_all and read_category share once their arguments are checked:
 * set up the result and read the log into it.  Remembers how far it got.
 */
static void
ReadLog(FunctionCallInfo fcinfo, ScanArgs *args, int64 after,
		int64 max_count, ScanFunc scanfn)
{
	LogSink		sink;

	memset(&sink, 0, sizeof(sink));
	sink.store = InitResult(fcinfo);
	if (max_count == 0)
	{
		RememberLastRead(after);
		return;
	}
	RememberLastRead(ScanToHighWater(&sink, args, after, max_count, scanfn,
									 es_gate_high_water));
}

/* No filter: every event. */
static void
InitFilter(LogFilter *filter)
{
	filter->by_member = false;
	filter->categories.n = -1;
	filter->types.n = -1;
}

/*
 * Check and return a max_count argument; NULL means no limit.  It is bigint
 * from 0.2.0 on and integer in 0.1.0, whose SQL definitions the library also
 * serves until the extension is updated.  A negative count is refused as a
 * negative LIMIT is (read_stream's max_count is one).
 */
static int64
MaxCount(FunctionCallInfo fcinfo, int argno)
{
	int64		n;

	if (PG_ARGISNULL(argno))
		return PG_INT64_MAX;
	if (get_fn_expr_argtype(fcinfo->flinfo, argno) == INT4OID)
		n = PG_GETARG_INT32(argno);
	else
		n = PG_GETARG_INT64(argno);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_ROW_COUNT_IN_LIMIT_CLAUSE),
				 errmsg("max_count must not be negative")));
	return n;
}

/*
 * event_store.read_all(after_position bigint, max_count bigint,
 *		event_types text[], categories text[]) returns setof event_store.event
 */
Datum
read_all(PG_FUNCTION_ARGS)
{
	int64		after = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	int64		max_count = MaxCount(fcinfo, 1);
	ScanArgs	args;

	memset(&args, 0, sizeof(args));
	InitFilter(&args.filter);
	/* 0.4.0's SQL definition has no filter arguments. */
	if (PG_NARGS() >= 4)
	{
		if (!PG_ARGISNULL(2))
			NameSetFromArray(&args.filter.types, PG_GETARG_ARRAYTYPE_P(2),
							 "event_types");
		if (!PG_ARGISNULL(3))
			NameSetFromArray(&args.filter.categories,
							 PG_GETARG_ARRAYTYPE_P(3), "categories");
	}
	ReadLog(fcinfo, &args, after, max_count, AllScan);
	PG_RETURN_NULL();
}

/*
 * event_store.read_category(category text, after_position bigint,
 *		max_count bigint, consumer_group_member integer,
 *		consumer_group_size integer, event_types text[])
 * returns setof event_store.event
 */
Datum
read_category(PG_FUNCTION_ARGS)
{
	int64		after = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	int64		max_count = MaxCount(fcinfo, 2);
	ScanArgs	args;

	memset(&args, 0, sizeof(args));
	InitFilter(&args.filter);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("category must not be null")));
	args.category = PG_GETARG_TEXT_PP(0);
	if (PG_NARGS() >= 6 && !PG_ARGISNULL(5))
		NameSetFromArray(&args.filter.types, PG_GETARG_ARRAYTYPE_P(5),
						 "event_types");

	if (PG_ARGISNULL(3) != PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("consumer_group_member and consumer_group_size must be given together")));
	if (!PG_ARGISNULL(3))
	{
		int32		member = PG_GETARG_INT32(3);
		int32		size = PG_GETARG_INT32(4);

		if (size < 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("consumer_group_size must be at least 1")));
		if (member < 0 || member >= size)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("consumer_group_member must be between 0 and %d",
							size - 1)));
		args.filter.by_member = true;
		args.filter.member = (uint32) member;
		args.filter.size = (uint32) size;
	}

	ReadLog(fcinfo, &args, after, max_count, CategoryScan);
	PG_RETURN_NULL();
}

/*
 * The lowest position at or below high of an event whose transaction is
 * still open (the caller's own included), with that transaction's id in
 * *xid; PG_INT64_MAX when there is none.  Such an event cannot sit on a page
 * the visibility map marks all-visible, so only the other pages are read:
 * one visibility-map bit per page of the table plus the pages written since
 * the last vacuum.
 */
static int64
LowestOpen(EsReadRelations *rels, int64 high, TransactionId *xid)
{
	int64		lowest_open = PG_INT64_MAX;
	BlockNumber nblocks;
	Buffer		vmbuf = InvalidBuffer;
	TupleDesc	desc;

	desc = RelationGetDescr(rels->events);
	nblocks = RelationGetNumberOfBlocks(rels->events);
	*xid = InvalidTransactionId;

	for (BlockNumber blk = 0; blk < nblocks; blk++)
	{
		Buffer		buf;
		Page		page;
		OffsetNumber maxoff;

		CHECK_FOR_INTERRUPTS();
		if (VM_ALL_VISIBLE(rels->events, blk, &vmbuf))
			continue;

		buf = ReadBuffer(rels->events, blk);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			ItemId		lp = PageGetItemId(page, off);
			HeapTupleData tuple;
			TransactionId xmin;
			bool		isnull;
			int64		position;

			if (!ItemIdIsNormal(lp))
				continue;
			tuple.t_data = (HeapTupleHeader) PageGetItem(page, lp);
			tuple.t_len = ItemIdGetLength(lp);
			tuple.t_tableOid = RelationGetRelid(rels->events);
			ItemPointerSet(&tuple.t_self, blk, off);

			if (HeapTupleHeaderXminCommitted(tuple.t_data) ||
				HeapTupleHeaderXminInvalid(tuple.t_data))
				continue;
			/* A redaction's new version: its event was settled before. */
			if (tuple.t_data->t_infomask & HEAP_UPDATED)
				continue;
			xmin = HeapTupleHeaderGetXmin(tuple.t_data);
			if (!TransactionIdIsCurrentTransactionId(xmin) &&
				!TransactionIdIsInProgress(xmin))
				continue;

			position = DatumGetInt64(heap_getattr(&tuple,
												  Anum_es_events_global_position,
												  desc, &isnull));
			if (position <= high && position < lowest_open)
			{
				lowest_open = position;
				*xid = xmin;
			}
		}
		UnlockReleaseBuffer(buf);
	}
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
	return lowest_open;
}

/*
 * event_store.safe_position() returns bigint
 *
 * The highest position up to which everything is settled: every event at or
 * below it is committed, or will never exist.  After the gate has given the
 * high-water mark L, the lowest position of an event whose transaction is
 * still open bounds it.  Neither ever decreases (gate.c), so neither does
 * the result.
 */
Datum
safe_position(PG_FUNCTION_ARGS)
{
	EsReadRelations rels;
	int64		high;
	int64		lowest_open;
	TransactionId xid;

	OpenForRead(&rels, false);
	high = HighWaterMark(&rels);
	lowest_open = LowestOpen(&rels, high, &xid);
	CloseForRead(&rels);

	PG_RETURN_INT64(lowest_open == PG_INT64_MAX ? high : lowest_open - 1);
}

/*
 * event_store.log_holder(OUT position bigint, OUT pid integer)
 * returns setof record
 *
 * What holds the global log back: the lowest position whose transaction is
 * still open, as safe_position finds it, and the process running that
 * transaction; no row when nothing does.  The pid is NULL for a prepared
 * transaction, for one that ended in the meantime, and on a hot standby
 * (the transaction runs on the primary).
 */
Datum
log_holder(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	EsReadRelations rels;
	int64		high;
	int64		lowest_open;
	TransactionId xid;

	InitMaterializedSRF(fcinfo, 0);
	OpenForRead(&rels, false);
	high = HighWaterMark(&rels);
	lowest_open = LowestOpen(&rels, high, &xid);
	CloseForRead(&rels);

	if (lowest_open != PG_INT64_MAX)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};
		int			pid = 0;

		values[0] = Int64GetDatum(lowest_open);
		if (!RecoveryInProgress())
			pid = BackendXidGetPid(SubTransGetTopmostTransaction(xid));
		if (TransactionIdIsCurrentTransactionId(xid))
			pid = MyProcPid;
		values[1] = Int32GetDatum(pid);
		nulls[1] = (pid == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}

/*
 * For wait_for_event: the position of the first event after *reached that
 * read_all (category NULL) or read_category would return now, of the given
 * types if types is not NULL; 0 when there is none.  *reached moves on to
 * where the read got (as last_read_position), so that the next probe starts
 * there.  It must run in a READ COMMITTED transaction, to see new commits.
 * high_water gives the read's high-water mark: es_gate_high_water, or one
 * that shares the work of computing it among waiters (wait.c).
 */
int64
es_log_probe(int64 *reached, text *category, ArrayType *types,
			 EsHighWaterFn high_water)
{
	ScanArgs	args;
	LogSink		sink;
	ScanFunc	scanfn = (category != NULL) ? CategoryScan : AllScan;

	memset(&args, 0, sizeof(args));
	memset(&sink, 0, sizeof(sink));
	InitFilter(&args.filter);
	if (types != NULL)
		NameSetFromArray(&args.filter.types, types, "event_types");
	args.category = category;

	*reached = ScanToHighWater(&sink, &args, *reached, 1, scanfn, high_water);
	return sink.first;
}

/*
 * event_store.last_read_position() returns bigint: where this transaction's
 * last read_all or read_category call got to, NULL if it made none.
 */
Datum
last_read_position(PG_FUNCTION_ARGS)
{
	if (!last_read_valid)
		PG_RETURN_NULL();
	PG_RETURN_INT64(last_read);
}

/*
 * event_store.consumer_group_member(stream_id text, group_size integer)
 * returns integer: the member of a consumer group of that size that reads
 * the stream's events in read_category.
 */
Datum
consumer_group_member(PG_FUNCTION_ARGS)
{
	text	   *stream_id = PG_GETARG_TEXT_PP(0);
	int32		size = PG_GETARG_INT32(1);

	if (size < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("consumer_group_size must be at least 1")));
	PG_RETURN_INT32((int32) MemberOf(stream_id, (uint32) size));
}
