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
 *	- A hot standby cannot see the primary's gate, so there the guarantee
 *	  does not hold: the scan still stops at events of transactions the
 *	  standby knows to be open, but it can pass a position the primary is
 *	  still inserting (see the README).
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

/* The relations a read works on, opened under the extension's catalog. */
typedef struct EsReadRelations
{
	Relation	events;
	Relation	pkey;
	Relation	category;		/* NULL unless asked for */
	Oid			gate;
	Oid			seq;			/* the position sequence */
	bool		rls;			/* row-level security applies to the caller */
} EsReadRelations;

/* Which streams a reader wants. */
typedef struct LogFilter
{
	bool		by_member;
	uint32		member;
	uint32		size;
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
	FunctionCallInfo fcinfo;
	bool		positions_only;
	Datum	   *positions;
	int			npositions;
} LogSink;

/* What a scan did: how many events it accepted, and the last one's position. */
typedef struct ScanResult
{
	int64		accepted;
	int64		last;
} ScanResult;

/* What read_all's and read_category's scans need. */
typedef struct ScanArgs
{
	EsReadRelations rels;
	Snapshot	snapshot;
	int64		high;			/* the high-water mark of gate.c */
	text	   *category;		/* read_category only */
	LogFilter	filter;			/* read_category only */
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
static void InitResult(FunctionCallInfo fcinfo);
static int64 SlotPosition(TupleTableSlot *slot);
static void Accept(LogSink *sink, TupleTableSlot *slot, ScanResult *result);
static ScanResult ScanLog(LogSink *sink, Relation events, Relation index,
						  Relation pkey, Snapshot snapshot, ScanKey keys,
						  int nkeys, int64 high, int64 max_count,
						  const LogFilter *filter, EsHiding *hiding);
static bool IsRedactedVersion(TupleTableSlot *slot);
static bool FetchByPosition(Relation events, Relation pkey, Snapshot snapshot,
							int64 position, TupleTableSlot *slot);
static bool GapHasTuple(IndexScanDesc *scan, SnapshotData *dirty,
						Relation events, Relation pkey, TupleTableSlot *slot,
						int64 low, int64 high);
static ScanResult ScanAll(LogSink *sink, Relation events, Relation pkey,
						  Snapshot snapshot, int64 after, int64 high,
						  int64 max_count, EsHiding *hiding);
static int64 FilterByPolicies(LogSink *sink, SPIPlanPtr plan,
							  Snapshot snapshot, int64 max_count);
static void RunScan(FunctionCallInfo fcinfo, ScanArgs *args, int64 after,
					int64 max_count, ScanFunc scanfn);
static ScanResult AllScan(LogSink *sink, int64 after, int64 max_count,
						  ScanArgs *args);
static ScanResult CategoryScan(LogSink *sink, int64 after, int64 max_count,
							   ScanArgs *args);
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
	return es_gate_high_water(r->events, r->pkey, r->gate, r->seq);
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
static void
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
		ReturnSetInfo *rsinfo = (ReturnSetInfo *) sink->fcinfo->resultinfo;

		tuplestore_puttupleslot(rsinfo->setResult, slot);
	}
	result->accepted++;
	result->last = position;
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
	ScanResult	result = {0, 0};
	int64		done = 0;		/* the last position settled */

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

		if (filter->by_member)
		{
			bool		isnull;
			Datum		sid = slot_getattr(slot, Anum_es_events_stream_id,
										   &isnull);

			if (MemberOf(DatumGetTextPP(sid), filter->size) != filter->member)
				continue;
		}

		/*
		 * Not settled as S sees it: open, or committed after S.  Stop.  But
		 * a redaction's new version is no new event: the version of the
		 * event that S sees, if any, is the one to return.
		 */
		if (!table_tuple_satisfies_snapshot(events, slot, snapshot) &&
			(!IsRedactedVersion(slot) ||
			 !FetchByPosition(events, pkey, snapshot, position, slot)))
			break;
		done = position;

		/* Settled, but hidden by its stream's bound as S sees it. */
		if (hiding->active && es_hidden(hiding, slot))
			continue;

		Accept(sink, slot, &result);
	}

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
 * Is there a tuple that a dirty snapshot sees strictly between two
 * positions?  Used on the gaps of read_all's scan.  The probe's index scan
 * is begun on the first gap and rescanned for the next ones (*scan), since a
 * log with purged events has a gap every few rows.
 */
static bool
GapHasTuple(IndexScanDesc *scan, SnapshotData *dirty, Relation events,
			Relation pkey, TupleTableSlot *slot, int64 low, int64 high)
{
	ScanKeyData keys[2];
	bool		found;

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
	found = index_getnext_slot(*scan, ForwardScanDirection, slot);
	ExecClearTuple(slot);
	return found;
}

/*
 * read_all's scan of the primary key: with the snapshot S itself, probing
 * each gap in positions with a dirty snapshot (see the top of this file).
 */
static ScanResult
ScanAll(LogSink *sink, Relation events, Relation pkey, Snapshot snapshot,
		int64 after, int64 high, int64 max_count, EsHiding *hiding)
{
	IndexScanDesc scan;
	TupleTableSlot *slot;
	TupleTableSlot *probe;
	ScanKeyData key;
	ScanResult	result = {0, 0};
	int64		previous = after;
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
			GapHasTuple(&gapscan, &dirty, events, pkey, probe, previous,
						position))
			break;

		/* Settled; returned unless its stream's bound hides it. */
		if (!hiding->active || !es_hidden(hiding, slot))
			Accept(sink, slot, &result);
		previous = position;
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
 * into the function's result.  Returns how many it put there.  The caller
 * has connected to SPI and prepared the plan.
 */
static int64
FilterByPolicies(LogSink *sink, SPIPlanPtr plan, Snapshot snapshot,
				 int64 max_count)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) sink->fcinfo->resultinfo;
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
	for (uint64 i = 0; i < n; i++)
		tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
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
 * pays one read-back per few thousand positions it passes.
 */
static void
RunScan(FunctionCallInfo fcinfo, ScanArgs *args, int64 after, int64 max_count,
		ScanFunc scanfn)
{
	EsReadRelations *rels = &args->rels;
	LogSink		sink = {fcinfo, false, NULL, 0};
	int64		returned = 0;
	Oid			argtypes[1] = {INT8ARRAYOID};
	char	   *query;
	SPIPlanPtr	plan;

	if (!rels->rls)
	{
		(void) scanfn(&sink, after, max_count, args);
		return;
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

		returned += FilterByPolicies(&sink, plan, args->snapshot,
									 max_count - returned);
		if (result.accepted < chunk)
			break;
		after = result.last;
	}

	SPI_freeplan(plan);
	SPI_finish();
	pfree(sink.positions);
	pfree(query);
}

/* read_all's scan, for RunScan. */
static ScanResult
AllScan(LogSink *sink, int64 after, int64 max_count, ScanArgs *args)
{
	return ScanAll(sink, args->rels.events, args->rels.pkey, args->snapshot,
				   after, args->high, max_count, &args->hiding);
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
 * What read_all and read_category share once their arguments are checked:
 * set up the result, take the high-water mark, and scan up to it with the
 * read's snapshot.
 */
static void
ReadLog(FunctionCallInfo fcinfo, ScanArgs *args, int64 after,
		int64 max_count, ScanFunc scanfn)
{
	InitResult(fcinfo);
	if (max_count == 0)
		return;

	OpenForRead(&args->rels, scanfn == CategoryScan);
	args->high = HighWaterMark(&args->rels);
	if (args->high > after)
	{
		args->snapshot = ReadSnapshot();
		es_hiding_begin(&args->hiding, args->rels.events, args->snapshot);
		RunScan(fcinfo, args, after, max_count, scanfn);
		es_hiding_end(&args->hiding);
		UnregisterSnapshot(args->snapshot);
	}
	CloseForRead(&args->rels);
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
 * event_store.read_all(after_position bigint, max_count bigint)
 * returns setof event_store.event
 */
Datum
read_all(PG_FUNCTION_ARGS)
{
	int64		after = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	int64		max_count = MaxCount(fcinfo, 1);
	ScanArgs	args;

	memset(&args, 0, sizeof(args));
	ReadLog(fcinfo, &args, after, max_count, AllScan);
	PG_RETURN_NULL();
}

/*
 * event_store.read_category(category text, after_position bigint,
 *		max_count bigint, consumer_group_member integer,
 *		consumer_group_size integer) returns setof event_store.event
 */
Datum
read_category(PG_FUNCTION_ARGS)
{
	int64		after = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	int64		max_count = MaxCount(fcinfo, 2);
	ScanArgs	args;

	memset(&args, 0, sizeof(args));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("category must not be null")));
	args.category = PG_GETARG_TEXT_PP(0);
	args.filter.by_member = false;

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
 * event_store.safe_position() returns bigint
 *
 * The highest position up to which everything is settled: every event at or
 * below it is committed, or will never exist.  After the gate has given the
 * high-water mark L, the lowest position of an event whose transaction is
 * still open (the caller's own included) bounds it.  Neither ever decreases
 * (gate.c), so neither does the result.  Such an event cannot sit
 * on a page the visibility map marks all-visible, so only the other pages are
 * read.  The cost is one visibility-map bit per page of the table plus the
 * pages written since the last vacuum.
 */
Datum
safe_position(PG_FUNCTION_ARGS)
{
	EsReadRelations rels;
	int64		high;
	int64		lowest_open = PG_INT64_MAX;
	BlockNumber nblocks;
	Buffer		vmbuf = InvalidBuffer;
	TupleDesc	desc;

	OpenForRead(&rels, false);
	high = HighWaterMark(&rels);
	desc = RelationGetDescr(rels.events);
	nblocks = RelationGetNumberOfBlocks(rels.events);

	for (BlockNumber blk = 0; blk < nblocks; blk++)
	{
		Buffer		buf;
		Page		page;
		OffsetNumber maxoff;

		CHECK_FOR_INTERRUPTS();
		if (VM_ALL_VISIBLE(rels.events, blk, &vmbuf))
			continue;

		buf = ReadBuffer(rels.events, blk);
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
			tuple.t_tableOid = RelationGetRelid(rels.events);
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
				lowest_open = position;
		}
		UnlockReleaseBuffer(buf);
	}
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
	CloseForRead(&rels);

	PG_RETURN_INT64(lowest_open == PG_INT64_MAX ? high : lowest_open - 1);
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
