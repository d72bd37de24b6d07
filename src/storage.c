/*-------------------------------------------------------------------------
 *
 * storage.c
 *		Direct index and heap access to event_store.streams and
 *		event_store.events.
 *
 * An append reads one head row by its primary key, probes the event_id index
 * for ids the caller supplied, inserts event rows and moves the head.  Doing
 * that through the table and index access methods, instead of SPI, saves the
 * planner and executor start-up of every statement, and there is no cached
 * plan that can go stale as the tables grow.
 *
 * What SQL would have done and this code must do itself:
 *	- take RowExclusiveLock on both tables, as an INSERT or UPDATE would;
 *	- maintain every index of the table, the user's own included
 *	  (ExecOpenIndices and ExecInsertIndexTuples, as COPY does);
 *	- fill the defaults: the global position from the sequence and the
 *	  creation time from now();
 *	- read with a snapshot taken after the stream lock was granted
 *	  (GetLatestSnapshot), so that the head committed by the previous lock
 *	  holder is seen whatever the isolation level;
 *	- leave the head update heap-only when it can: only the version changes,
 *	  and no index covers it.
 * NOT NULL and CHECK constraints are checked (ExecConstraints), and unique
 * and exclusion constraints by the index insertions.  Triggers are not fired:
 * the guard triggers exist to refuse changes made by any other path.
 *
 * src/storage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_index.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "event_store.h"

static Relation IndexFor(const EsCatalog *cat, ResultRelInfo *rri,
						 EsIndexRole role);
static void LockBeforeWindow(EsStorage *st, const EsEventInput *ev,
							 text *stream_id);
static ResultRelInfo *OpenForWrite(Relation rel);
static void InsertIndexEntries(EsStorage *st, ResultRelInfo *rri,
							   TupleTableSlot *slot, bool only_summarizing);
static bool SameText(text *a, text *b);
static void FinishIndexChecks(EsStorage *st, ResultRelInfo *rri,
							  TupleTableSlot *slot, List *indexes);

/*
 * The open index of a table's ResultRelInfo that the catalog found for a
 * role.
 */
static Relation
IndexFor(const EsCatalog *cat, ResultRelInfo *rri, EsIndexRole role)
{
	Oid			indexid = es_index_for(cat, rri->ri_RelationDesc, role);

	for (int i = 0; i < rri->ri_NumIndices; i++)
	{
		Relation	index = rri->ri_IndexRelationDescs[i];

		if (RelationGetRelid(index) == indexid)
			return index;
	}
	/* The table is locked, so its index list cannot have changed since. */
	elog(ERROR, "index %u of table \"%s\" is not open", indexid,
		 RelationGetRelationName(rri->ri_RelationDesc));
	return NULL;				/* keep compiler quiet */
}

/*
 * Lock now what taking a position and inserting the first event would lock
 * for the first time inside the gate's window, where a lock wait would hold
 * readers without the deadlock detector knowing: the position sequence, and
 * for an event large enough to be stored out of line, the TOAST table and
 * its indexes.  Locks already held are found in the backend's own table.
 */
static void
LockBeforeWindow(EsStorage *st, const EsEventInput *ev, text *stream_id)
{
	Oid			toastid = st->events->rd_rel->reltoastrelid;
	Size		size;

	LockRelationOid(st->events_seq, RowExclusiveLock);
	if (!OidIsValid(toastid))
		return;
	size = VARSIZE_ANY(stream_id) + VARSIZE_ANY(ev->event_type) +
		toast_raw_datum_size(ev->data) +
		(ev->has_metadata ? toast_raw_datum_size(ev->metadata) : 0);
	if (size > TOAST_TUPLE_THRESHOLD / 2)
	{
		Relation	toast = table_open(toastid, RowExclusiveLock);
		List	   *indexes = RelationGetIndexList(toast);
		ListCell   *lc;

		foreach(lc, indexes)
			LockRelationOid(lfirst_oid(lc), RowExclusiveLock);
		list_free(indexes);
		table_close(toast, NoLock);
	}
}

/* Open a table's indexes for inserting into them. */
static ResultRelInfo *
OpenForWrite(Relation rel)
{
	ResultRelInfo *rri = makeNode(ResultRelInfo);

	/* No range table: nothing here asks for one. */
	InitResultRelInfo(rri, rel, 0, NULL, 0);
	ExecOpenIndices(rri, false);
	return rri;
}

/* Open both tables and their indexes; no snapshot is taken yet. */
void
es_storage_open(EsStorage *st)
{
	const EsCatalog *cat;

	memset(st, 0, sizeof(EsStorage));
	cat = es_catalog_open(RowExclusiveLock, &st->events, &st->streams);
	st->cat = cat;
	st->events_seq = cat->events_seq;
	st->gate = cat->gate;

	st->estate = CreateExecutorState();
	st->events_rri = OpenForWrite(st->events);
	st->streams_rri = OpenForWrite(st->streams);

	st->event_id_idx = IndexFor(cat, st->events_rri, ES_INDEX_EVENT_ID);
	st->streams_pkey = IndexFor(cat, st->streams_rri, ES_INDEX_STREAM_ID);

	st->events_slot = MakeSingleTupleTableSlot(RelationGetDescr(st->events),
											   table_slot_callbacks(st->events));
	st->streams_slot = MakeSingleTupleTableSlot(RelationGetDescr(st->streams),
												table_slot_callbacks(st->streams));
}

/*
 * Insert the index entries of a head row just stored, with immediate checks
 * (a deferrable constraint that may have been violated is refused).
 */
static void
InsertIndexEntries(EsStorage *st, ResultRelInfo *rri, TupleTableSlot *slot,
				   bool only_summarizing)
{
	List	   *recheck = es_insert_index_tuples(rri, slot, st->estate, false,
												 only_summarizing);

	if (recheck != NIL)
		FinishIndexChecks(st, rri, slot, recheck);
}

/*
 * Read the stream's head row.  The snapshot is taken here, on first use: the
 * caller holds the stream lock by now.
 */
void
es_storage_read_head(EsStorage *st, text *stream_id)
{
	IndexScanDesc scan;
	ScanKeyData key;

	if (st->snapshot == NULL)
		st->snapshot = RegisterSnapshot(GetLatestSnapshot());

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	scan = es_index_beginscan(st->streams, st->streams_pkey, st->snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);

	st->head_found = index_getnext_slot(scan, ForwardScanDirection,
										st->streams_slot);
	st->head_moved_after_snapshot = false;
	st->head_natts = RelationGetDescr(st->streams)->natts;
	if (st->head_found)
	{
		HeapTuple	copy = ExecCopySlotHeapTuple(st->streams_slot);

		heap_deform_tuple(copy, RelationGetDescr(st->streams),
						  st->head_values, st->head_nulls);
		st->head_version = st->head_nulls[Anum_es_streams_version - 1] ? 0 :
			DatumGetInt64(st->head_values[Anum_es_streams_version - 1]);
		st->head_tid = st->streams_slot->tts_tid;

		/*
		 * Under REPEATABLE READ and SERIALIZABLE, note whether the head has
		 * moved since the transaction's snapshot was taken (see
		 * es_storage_write_head).
		 */
		if (IsolationUsesXactSnapshot() &&
			!table_tuple_satisfies_snapshot(st->streams, st->streams_slot,
											GetTransactionSnapshot()))
			st->head_moved_after_snapshot = true;
	}
	else
	{
		/* A new stream's row: the columns' defaults. */
		st->head_version = 0;
		memset(st->head_nulls, 0, sizeof(st->head_nulls));
		if (st->head_natts == Natts_es_streams)
		{
			st->head_values[Anum_es_streams_visible_from - 1] = Int64GetDatum(1);
			st->head_values[Anum_es_streams_tombstoned - 1] = BoolGetDatum(false);
			st->head_nulls[Anum_es_streams_max_count - 1] = true;
			st->head_nulls[Anum_es_streams_max_age - 1] = true;
		}
	}

	index_endscan(scan);
	ExecClearTuple(st->streams_slot);
}

/* Do two text values hold the same bytes? */
static bool
SameText(text *a, text *b)
{
	int			len = VARSIZE_ANY_EXHDR(a);

	return len == (int) VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), len) == 0;
}

/*
 * Look up a stored event by id.  Returns false when there is none; else sets
 * whether it belongs to stream_id, and its version.
 *
 * The look-up uses a dirty snapshot, so it also finds an id that another,
 * still open transaction has just inserted: it then waits for that
 * transaction to end and looks again.  Waiting here, before the inserts,
 * keeps the unique index from making the insert wait later (an insertion
 * that does is finished outside the gate's window anyway, see gate.c).
 */
bool
es_storage_find_event(EsStorage *st, const pg_uuid_t *id, text *stream_id,
					  bool *same_stream, int64 *version)
{
	for (;;)
	{
		SnapshotData dirty;
		IndexScanDesc scan;
		ScanKeyData key;
		bool		found;
		TransactionId wait_for = InvalidTransactionId;
		ItemPointerData tid;

		InitDirtySnapshot(dirty);
		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ,
					UUIDPGetDatum(id));
		scan = es_index_beginscan(st->events, st->event_id_idx, &dirty, 1, 0);
		index_rescan(scan, &key, 1, NULL, 0);

		found = index_getnext_slot(scan, ForwardScanDirection, st->events_slot);
		if (found && TransactionIdIsValid(dirty.xmin))
		{
			wait_for = dirty.xmin;
			tid = st->events_slot->tts_tid;
		}
		else if (found)
		{
			bool		isnull;
			Datum		sid = slot_getattr(st->events_slot,
										   Anum_es_events_stream_id, &isnull);
			Datum		ver = slot_getattr(st->events_slot,
										   Anum_es_events_version, &isnull);

			*same_stream = SameText(DatumGetTextPP(sid), stream_id);
			*version = DatumGetInt64(ver);
		}

		index_endscan(scan);
		ExecClearTuple(st->events_slot);
		if (!TransactionIdIsValid(wait_for))
			return found;
		XactLockTableWait(wait_for, st->events, &tid, XLTW_InsertIndexUnique);
	}
}

/*
 * Finish the unique and exclusion checks that an insertion left open: wait
 * for each other transaction that inserted a conflicting entry, and fail if
 * it committed, as an immediate check would have.  A constraint declared
 * deferrable would need an after-trigger queue, which appends do not have,
 * so a possible violation of one is refused.
 */
static void
FinishIndexChecks(EsStorage *st, ResultRelInfo *rri, TupleTableSlot *slot,
				  List *indexes)
{
	ExprContext *econtext = GetPerTupleExprContext(st->estate);
	ListCell   *lc;

	econtext->ecxt_scantuple = slot;
	foreach(lc, indexes)
	{
		Oid			indexid = lfirst_oid(lc);
		Relation	index = NULL;
		IndexInfo  *info = NULL;
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];

		for (int i = 0; i < rri->ri_NumIndices; i++)
		{
			if (RelationGetRelid(rri->ri_IndexRelationDescs[i]) == indexid)
			{
				index = rri->ri_IndexRelationDescs[i];
				info = rri->ri_IndexRelationInfo[i];
				break;
			}
		}
		if (index == NULL)
			elog(ERROR, "index %u is not open for insertion", indexid);

		if (!index->rd_index->indimmediate)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot defer a constraint check on table \"%s\"",
							RelationGetRelationName(rri->ri_RelationDesc)),
					 errdetail("Appends check the constraints of the extension's tables at once, and this one may have been violated."),
					 errhint("Make the constraint NOT DEFERRABLE.")));

		FormIndexDatum(info, slot, st->estate, values, isnull);
		if (info->ii_ExclusionOps != NULL)
			check_exclusion_constraint(rri->ri_RelationDesc, index, info,
									   &slot->tts_tid, values, isnull,
									   st->estate, false);
		else
			(void) index_insert(index, values, isnull, &slot->tts_tid,
								rri->ri_RelationDesc, UNIQUE_CHECK_EXISTING,
								false, info);
	}
}

/*
 * Insert one event row and its index entries; returns its position.
 *
 * The first event of a call is inserted inside the gate's window (gate.c),
 * from taking its position to its last index entry.  Nothing there may wait
 * for another transaction, since readers wait for the window: its unique and
 * exclusion checks are made without waiting, as for a deferrable
 * constraint, and finished once the gate is released.  The other events are
 * inserted outside the window, with ordinary immediate checks.
 */
int64
es_storage_insert_event(EsStorage *st, text *stream_id, int64 version,
						const EsEventInput *ev, bool first)
{
	TupleTableSlot *slot = st->events_slot;
	Datum	   *values;
	bool	   *isnull;
	int64		position;
	List	   *recheck;

	ExecClearTuple(slot);
	values = slot->tts_values;
	isnull = slot->tts_isnull;
	memset(isnull, 0, sizeof(bool) * Natts_es_events);

	values[Anum_es_events_stream_id - 1] = PointerGetDatum(stream_id);
	values[Anum_es_events_version - 1] = Int64GetDatum(version);
	values[Anum_es_events_event_id - 1] = UUIDPGetDatum(&ev->id);
	values[Anum_es_events_event_type - 1] = PointerGetDatum(ev->event_type);
	values[Anum_es_events_data - 1] = ev->data;
	values[Anum_es_events_metadata - 1] = ev->metadata;
	isnull[Anum_es_events_metadata - 1] = !ev->has_metadata;
	values[Anum_es_events_created_at - 1] =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	if (first)
	{
		LockBeforeWindow(st, ev, stream_id);
		es_gate_enter(st->gate);
	}
	position = nextval_internal(st->events_seq, false);
	values[Anum_es_events_global_position - 1] = Int64GetDatum(position);
	ExecStoreVirtualTuple(slot);

	if (RelationGetDescr(st->events)->constr != NULL)
		ExecConstraints(st->events_rri, slot, st->estate);
	table_tuple_insert(st->events, slot, GetCurrentCommandId(true), 0, NULL);
	recheck = es_insert_index_tuples(st->events_rri, slot, st->estate, first,
									 false);
	if (first)
		es_gate_exit(st->gate);

	if (recheck != NIL)
		FinishIndexChecks(st, st->events_rri, slot, recheck);
	ExecClearTuple(slot);
	ResetPerTupleExprContext(st->estate);
	return position;
}

/*
 * Move the stream's head to version, creating the row for a new stream.
 *
 * Under REPEATABLE READ and SERIALIZABLE, a head that moved after the
 * transaction's snapshot was taken fails the append, as an UPDATE of that
 * row would: the transaction's reads are older than the stream it is about
 * to extend.  The expected-version check has run by then, so a stale
 * expectation still reports the conflict SQLSTATE first.
 */
void
es_storage_write_head(EsStorage *st, text *stream_id, int64 version)
{
	TupleTableSlot *slot = st->streams_slot;
	bool		update_indexes = true;
	bool		only_summarizing = false;

	if (st->head_moved_after_snapshot)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent append to stream \"%s\"",
						text_to_cstring(stream_id)),
				 errhint("Retry the transaction.")));

	ExecClearTuple(slot);
	memcpy(slot->tts_values, st->head_values, sizeof(Datum) * st->head_natts);
	memcpy(slot->tts_isnull, st->head_nulls, sizeof(bool) * st->head_natts);
	slot->tts_values[Anum_es_streams_stream_id - 1] = PointerGetDatum(stream_id);
	slot->tts_isnull[Anum_es_streams_stream_id - 1] = false;
	slot->tts_values[Anum_es_streams_version - 1] = Int64GetDatum(version);
	slot->tts_isnull[Anum_es_streams_version - 1] = false;
	ExecStoreVirtualTuple(slot);
	if (RelationGetDescr(st->streams)->constr != NULL)
		ExecConstraints(st->streams_rri, slot, st->estate);

	if (st->head_found)
	{
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		TM_Result	result;

		result = es_tuple_update(st->streams, &st->head_tid, slot,
								 GetCurrentCommandId(true), st->snapshot,
								 InvalidSnapshot, true, &tmfd, &lockmode,
								 &update_indexes, &only_summarizing);
		if (result != TM_Ok)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update of the head of stream \"%s\"",
							text_to_cstring(stream_id)),
					 errhint("Retry the transaction.")));
	}
	else
		table_tuple_insert(st->streams, slot, GetCurrentCommandId(true), 0,
						   NULL);

	if (update_indexes)
		InsertIndexEntries(st, st->streams_rri, slot, only_summarizing);
	ExecClearTuple(slot);
}

/*
 * Begin a scan of one stream's events on the index of events on (stream_id,
 * version), for the versions = , < or >= a version (by strategy), in
 * version order.
 */
IndexScanDesc
es_begin_version_scan(Relation events, Relation index, Snapshot snapshot,
					  text *stream_id, StrategyNumber strategy, int64 version)
{
	ScanKeyData keys[2];
	IndexScanDesc scan;
	RegProcedure proc;

	switch (strategy)
	{
		case BTLessStrategyNumber:
			proc = F_INT8LT;
			break;
		case BTGreaterEqualStrategyNumber:
			proc = F_INT8GE;
			break;
		default:
			Assert(strategy == BTEqualStrategyNumber);
			proc = F_INT8EQ;
			break;
	}
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
				PointerGetDatum(stream_id));
	ScanKeyInit(&keys[1], 2, strategy, proc, Int64GetDatum(version));
	scan = es_index_beginscan(events, index, snapshot, 2, 0);
	index_rescan(scan, keys, 2, NULL, 0);
	return scan;
}

/*
 * The open index of events on (stream_id, version), which the lifecycle
 * functions scan; appends do not need it.
 */
Relation
es_storage_stream_index(EsStorage *st)
{
	return IndexFor(st->cat, st->events_rri, ES_INDEX_STREAM_VERSION);
}

/*
 * Delete a stream's events below a version, at most limit of them, lowest
 * versions first, with the storage's snapshot; returns how many were
 * deleted, and the lowest and highest positions among them.  The rows are
 * deleted below the executor, as appends insert them, so the guard trigger
 * does not fire: this is one of the lifecycle functions' sanctioned paths.
 * A row that another transaction deleted meanwhile (a concurrent purge) is
 * waited for and skipped; one it updated (a redaction) is left for later.
 */
int64
es_storage_delete_events(EsStorage *st, Relation stream_idx, text *stream_id,
						 int64 below, int64 limit, int64 *first_position,
						 int64 *last_position)
{
	IndexScanDesc scan;
	TupleTableSlot *slot = st->events_slot;
	int64		deleted = 0;
	CommandId	cid = GetCurrentCommandId(true);

	/* As a DELETE would: a publication must be able to replicate it. */
	CheckCmdReplicaIdentity(st->events, CMD_DELETE);

	scan = es_begin_version_scan(st->events, stream_idx, st->snapshot,
								 stream_id, BTLessStrategyNumber, below);

	while (deleted < limit &&
		   index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		TM_FailureData tmfd;
		TM_Result	result;
		bool		isnull;
		int64		position;

		CHECK_FOR_INTERRUPTS();
		position = DatumGetInt64(slot_getattr(slot,
											  Anum_es_events_global_position,
											  &isnull));
		result = table_tuple_delete(st->events, &slot->tts_tid, cid,
									st->snapshot, InvalidSnapshot, true,
									&tmfd, false);
		if (result == TM_Ok)
		{
			if (deleted == 0 || position < *first_position)
				*first_position = position;
			if (deleted == 0 || position > *last_position)
				*last_position = position;
			deleted++;
		}
		else if (result != TM_Deleted && result != TM_Updated &&
				 result != TM_SelfModified)
			elog(ERROR, "unexpected table_tuple_delete status: %u", result);
	}

	index_endscan(scan);
	ExecClearTuple(slot);
	return deleted;
}

/*
 * Rewrite one event's data and metadata in place: the same position,
 * version, id and type, in a new version of its row (the old one is removed
 * by VACUUM).  Below the executor, like es_storage_delete_events.  Returns
 * false when the stream has no such version with that event id.
 */
bool
es_storage_update_event(EsStorage *st, Relation stream_idx, text *stream_id,
						int64 version, const pg_uuid_t *event_id, Datum data,
						Datum metadata, bool metadata_null)
{
	IndexScanDesc scan;
	TupleTableSlot *slot = st->events_slot;
	Datum		values[Natts_es_events];
	bool		nulls[Natts_es_events];
	ItemPointerData tid;
	bool		found;

	CheckCmdReplicaIdentity(st->events, CMD_UPDATE);

	scan = es_begin_version_scan(st->events, stream_idx, st->snapshot,
								 stream_id, BTEqualStrategyNumber, version);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
	{
		slot_getallattrs(slot);
		for (int i = 0; i < Natts_es_events; i++)
		{
			nulls[i] = slot->tts_isnull[i];
			values[i] = nulls[i] ? (Datum) 0 :
				datumCopy(slot->tts_values[i],
						  TupleDescAttr(slot->tts_tupleDescriptor, i)->attbyval,
						  TupleDescAttr(slot->tts_tupleDescriptor, i)->attlen);
		}
		tid = slot->tts_tid;
		found = memcmp(DatumGetUUIDP(values[Anum_es_events_event_id - 1]),
					   event_id, sizeof(pg_uuid_t)) == 0;
	}
	index_endscan(scan);
	ExecClearTuple(slot);
	if (!found)
		return false;

	values[Anum_es_events_data - 1] = data;
	nulls[Anum_es_events_data - 1] = false;
	values[Anum_es_events_metadata - 1] = metadata;
	nulls[Anum_es_events_metadata - 1] = metadata_null;
	memcpy(slot->tts_values, values, sizeof(values));
	memcpy(slot->tts_isnull, nulls, sizeof(nulls));
	ExecStoreVirtualTuple(slot);
	if (RelationGetDescr(st->events)->constr != NULL)
		ExecConstraints(st->events_rri, slot, st->estate);

	{
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		TM_Result	result;
		bool		update_indexes = true;
		bool		only_summarizing = false;

		result = es_tuple_update(st->events, &tid, slot,
								 GetCurrentCommandId(true), st->snapshot,
								 InvalidSnapshot, true, &tmfd, &lockmode,
								 &update_indexes, &only_summarizing);
		if (result != TM_Ok)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent change of an event of stream \"%s\"",
							text_to_cstring(stream_id)),
					 errhint("Retry the transaction.")));
		if (update_indexes)
			InsertIndexEntries(st, st->events_rri, slot, only_summarizing);
	}
	ExecClearTuple(slot);
	return true;
}

/*
 * Find a stored event by id with the storage's snapshot: its stream (a
 * copy), version and position.  Returns false when there is none.
 */
bool
es_storage_event_by_id(EsStorage *st, const pg_uuid_t *id, text **stream_id,
					   int64 *version, int64 *position)
{
	IndexScanDesc scan;
	ScanKeyData key;
	bool		found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(id));
	scan = es_index_beginscan(st->events, st->event_id_idx, st->snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, st->events_slot);
	if (found)
	{
		bool		isnull;

		*stream_id = DatumGetTextPCopy(slot_getattr(st->events_slot,
													Anum_es_events_stream_id,
													&isnull));
		*version = DatumGetInt64(slot_getattr(st->events_slot,
											  Anum_es_events_version, &isnull));
		*position = DatumGetInt64(slot_getattr(st->events_slot,
											   Anum_es_events_global_position,
											   &isnull));
	}
	index_endscan(scan);
	ExecClearTuple(st->events_slot);
	return found;
}

/* Release what es_storage_open took; the table locks are kept. */
void
es_storage_close(EsStorage *st)
{
	if (st->snapshot != NULL)
		UnregisterSnapshot(st->snapshot);
	ExecDropSingleTupleTableSlot(st->events_slot);
	ExecDropSingleTupleTableSlot(st->streams_slot);
	ExecCloseIndices(st->events_rri);
	ExecCloseIndices(st->streams_rri);
	FreeExecutorState(st->estate);
	table_close(st->events, NoLock);
	table_close(st->streams, NoLock);
}
